"""What the scripts print: people read the console, so libraries' INFO logs stay off unless asked for.

  def main(argv):
    console.quiet_logs()     # first thing in every script's main
"""

from __future__ import annotations


def quiet_logs() -> None:
  """Logs at WARNING (orbax's save chatter, absl's and jax's INFO lines) unless the user passed
  absl's `--verbosity` (`-v`); `app.run` itself turns INFO on. Progress and results are printed."""
  from absl import flags, logging
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
