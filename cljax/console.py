"""What the scripts print and how they start: people read the console, so libraries' INFO logs stay
off unless asked for, and bad input is one line.

  _CONFIG, _WORKDIR, _INIT_DISTRIBUTED = console.define_run_flags('Config file (configs/irl/*.py).')

  def main(argv):
    _INIT_DISTRIBUTED()                                   # before any JAX work
    with console.bad_input(ConfigError, WorkdirError):    # these become one line, status 2
      ...

  if __name__ == '__main__':
    console.run(main)                                     # logs at WARNING unless --verbosity
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time

from absl import app, flags, logging

from cljax import compilations

# When the script started, near enough: a script imports this module first (its flags come from
# here). The breakdowns count the seconds from here to `main`'s heavy imports (jax's import by the
# compilation cache, the config file, the libraries) as imports.
STARTED = time.perf_counter()

_COMPILATION_CACHE = flags.DEFINE_bool(
  'compilation_cache',
  True,
  'Keep compiled XLA programs on disk, so that a later run with the same shapes skips compilation '
  '($CLJAX_CACHE_DIR, default ~/.cache/cljax/jax; $JAX_COMPILATION_CACHE_DIR, when set, wins).',
)
# Programs that took less than this to compile are not written: the epoch, evaluation and update
# functions of the scripts take seconds (and are cached); the many tiny helpers would only add files.
CACHE_MIN_COMPILE_SECS = 0.2


def cache_dir() -> str:
  """Where the scripts keep JAX's compilation cache: $CLJAX_CACHE_DIR, else
  $XDG_CACHE_HOME/cljax/jax (~/.cache/cljax/jax)."""
  if os.environ.get('CLJAX_CACHE_DIR'):
    return os.environ['CLJAX_CACHE_DIR']
  base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
  return os.path.join(base, 'cljax', 'jax')


def use_compilation_cache() -> str | None:
  """Turns on JAX's persistent compilation cache (unless --compilation_cache=False) before the first
  compilation; returns its directory, or None when off. A directory the user gave JAX itself
  ($JAX_COMPILATION_CACHE_DIR) is kept, with its own thresholds."""
  import jax  # deferred: the launchers that import this module never compile

  if not _COMPILATION_CACHE.value:
    return None
  if jax.config.jax_compilation_cache_dir:
    return jax.config.jax_compilation_cache_dir
  path = cache_dir()
  os.makedirs(path, exist_ok=True)
  jax.config.update('jax_compilation_cache_dir', path)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', CACHE_MIN_COMPILE_SECS)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)
  return path


def quiet_logs() -> None:
  """Logs at WARNING (orbax's save chatter, absl's and jax's INFO lines) unless the user passed
  absl's `--verbosity` (`-v`); `app.run` itself turns INFO on. Progress and results are printed."""
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)


def define_run_flags(config_help: str, workdir_help: str = 'Directory for this run.'):
  """The flags of every training script: `--config` (a config file, locked after parsing),
  `--workdir` (both required) and the multi-process flags of `cljax.distributed`. Returns (config
  flag, workdir flag, the function that joins the processes' cluster: call it first in `main`)."""
  from ml_collections import config_flags  # deferred: the launchers need no configs

  from cljax import distributed  # deferred: numpy, which the launchers do not need

  config = config_flags.DEFINE_config_file('config', None, config_help, lock_config=True)
  workdir = flags.DEFINE_string('workdir', None, workdir_help)
  flags.mark_flags_as_required(['config', 'workdir'])
  return config, workdir, distributed.define_flags()


def overridden_fields(config_flag) -> set[str]:
  """The dotted config fields set on the command line (`--config.a.b=...`) of a `define_run_flags`
  config flag: `runs.check_or_write_config` lets a run made before a new field resume only when the
  field was left at its default."""
  from ml_collections import config_flags  # deferred: the launchers need no configs

  return set(config_flags.get_override_values(flags.FLAGS[config_flag.name]))


@contextlib.contextmanager
def bad_input(*errors: type[BaseException]):
  """Inside, an exception of the `errors` types (bad config values, data or work directory) becomes
  an `app.UsageError` with its message, which `run` prints as one line with exit status 2."""
  try:
    yield
  except errors as e:
    raise app.UsageError(str(e)) from None


def run(main) -> None:
  """absl's `app.run(main)`, with a bad flag, a config file that does not load, an unknown config
  field and the `app.UsageError`s that `main` raises for bad input each reported in one line (the
  script's name, then the reason) and exit status 2; no traceback, no usage text. A run none of
  whose checkpoints restores (`CheckpointError`) is reported the same way, with status 1, and a
  diverged run (`cljax.divergence.DivergenceError`) with status 3. Before `main`, JAX's persistent
  compilation cache is turned on (`use_compilation_cache`)."""
  # Deferred: jax and orbax, which the launchers (sweep.py, the results tables) never need.
  from cljax import divergence  # deferred: jax
  from cljax.checkpoint import CheckpointError  # deferred: orbax

  def main_in_one_line(argv):
    quiet_logs()  # library INFO logs only with --verbosity
    use_compilation_cache()  # before the first compilation
    compilations.count()  # results.json's `compilation`: executables built and their seconds
    try:
      return main(argv)
    except app.UsageError as e:  # bad input found in main (config values, data, workdir): one line
      _fail(argv, str(e))
    except CheckpointError as e:  # no checkpoint of the run restores: one line, status 1
      _fail(argv, str(e), status=1)
    except divergence.DivergenceError as e:  # non-finite losses or parameters: one line, status 3
      _fail(argv, str(e), status=divergence.EXIT_STATUS)

  app.run(main_in_one_line, flags_parser=_parse_flags)


def _root_cause(error: BaseException) -> BaseException:
  while error.__cause__ is not None or error.__context__ is not None:
    error = error.__cause__ or error.__context__
  return error


def _fail(argv, message: str, status: int = 2) -> None:
  print(f'{os.path.basename(argv[0])}: {message}', file=sys.stderr)
  sys.exit(status)


def _one_line(message: str) -> str:
  """A multi-line error (ml_collections quotes a whole traceback) as its first line's subject and
  its last line, which names the actual failure."""
  lines = [l.strip() for l in str(message).strip().splitlines() if l.strip()]
  if len(lines) <= 1:
    return lines[0] if lines else ''
  subject = lines[0].split(': Error whilst')[0].rstrip(':')
  return f'{subject}: {lines[-1]}'


def _parse_flags(argv):
  try:
    rest = flags.FLAGS(argv)
  except flags.Error as e:
    hint = ' (--helpshort lists the flags)' if 'Unknown command line flag' in str(e) else ''
    _fail(argv, f'{_one_line(e)}{hint}')
  except (AttributeError, KeyError) as e:  # ml_collections: an unknown --config.<field>
    message = str(e.args[0] if e.args else e)
    name = re.search(r'[A-Za-z_][\w.]*', message)
    hint = re.search(r'Did you mean "[^"]+"', message)
    _fail(
      argv,
      f'unknown config field {name.group(0) if name else message!r}'
      f'{"; " + hint.group(0) + "?" if hint else ""}',
    )
  if 'config' in flags.FLAGS and flags.FLAGS['config'].flag_type() != 'string':
    try:  # config files load lazily: a missing one surfaces here rather than mid-run
      flags.FLAGS.config.keys()
    except Exception as e:  # pylint: disable=broad-except  (whatever the config module raised)
      lines = str(_root_cause(e)).strip().splitlines()
      _fail(argv, f'--config does not load: {lines[-1].strip() if lines else type(e).__name__}')
  return rest
