"""Preemption-safe runs: on SIGTERM or SIGUSR1 a run finishes the step it is in, saves its
checkpoint as usual, and exits with `PREEMPTED_EXIT_CODE`, so that rerunning the same command (a
SLURM requeue) resumes it with nothing lost.

  with preemption.Guard() as guard:
    ...
    ckpt.save(step, state, meta)
    guard.check(step)          # raises Preempted after a signal; the caller exits with the code

  with preemption.exit_when_preempted() as guard:   # the scripts' form: exits with the code itself
    ...

SLURM sends SIGTERM on preemption and on `scancel`, and `#SBATCH --signal=B:USR1@<seconds>` sends
SIGUSR1 that long before the time limit; the sweep's batch script (`cljax/sweep.py`) forwards
both to the Python process and requeues the task when it exits with `PREEMPTED_EXIT_CODE`.
Signals arriving while a jitted step runs are handled when it returns (Python runs handlers between
bytecodes), so the checkpoint is always of a finished step.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from typing import Callable

import numpy as np

PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL: "try again later"
SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class Preempted(Exception):
  """Raised by `Guard.check` once a preemption signal has arrived."""

  def __init__(self, step, signum):
    super().__init__(
      f'preempted by {signal.Signals(signum).name} after step {step}; the checkpoint '
      f'of step {step} is saved, rerun the same command to resume'
    )
    self.step = step
    self.signum = signum


class Guard:
  """Records preemption signals while active (a context manager; restores the old handlers)."""

  def __init__(self, signals=SIGNALS):
    self._signals = tuple(signals)
    self._previous = {}
    self.signum = None

  def _handler(self, signum, frame):
    del frame
    self.signum = signum

  def __enter__(self) -> 'Guard':
    for s in self._signals:
      self._previous[s] = signal.signal(s, self._handler)
    return self

  def __exit__(self, *exc) -> None:
    for s, previous in self._previous.items():
      signal.signal(s, previous)

  @property
  def requested(self) -> bool:
    return self.signum is not None

  def check(self, step) -> None:
    """Call right after a checkpoint is saved: raises Preempted if a signal has arrived. With
    several processes (`jax.distributed`) they agree first, so that all stop at the same checkpoint
    even when the signal reaches them at different steps (one stopping alone would leave the others
    waiting in a collective forever)."""
    signum = self.signum
    import jax  # deferred: the sweep launcher (cljax.sweep) imports this module without jax

    if jax.process_count() > 1:
      from jax.experimental import multihost_utils  # deferred, as jax

      received = np.asarray(multihost_utils.process_allgather(np.asarray(signum or 0, np.int32)))
      signum = int(received.max()) or None
    if signum is not None:
      raise Preempted(step, signum)


@contextlib.contextmanager
def exit_when_preempted(cleanup: Callable[[], None] | None = None):
  """A `Guard` whose `Preempted` ends the process: runs `cleanup`, prints why and exits with
  `PREEMPTED_EXIT_CODE` (a `with` around it, e.g. a checkpointer's, still closes on the way out)."""
  try:
    with Guard() as guard:
      yield guard
  except Preempted as e:
    if cleanup is not None:
      cleanup()
    print(e, file=sys.stderr)
    sys.exit(PREEMPTED_EXIT_CODE)
