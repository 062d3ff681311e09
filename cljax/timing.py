"""Timing helpers the benchmarks share: compile ahead of time, then time one call of the executable
(`irl.timing` times the IRL host loop); a run's clock (`RunClock`) and its wall-clock by phase
(`Phases`)."""

from __future__ import annotations

import contextlib
import time

import jax

from cljax import compilations


def aot_compile(fn, *args):
  """(executable, compile seconds) of `jax.jit(fn)` for `args`."""
  start = time.perf_counter()
  compiled = jax.jit(fn).lower(*args).compile()
  return compiled, time.perf_counter() - start


def timed_call(compiled, *args):
  """(outputs, wall seconds) of one call of a compiled executable, waiting for its results."""
  start = time.perf_counter()
  out = jax.block_until_ready(compiled(*args))
  return out, time.perf_counter() - start


class RunClock:
  """A run's wall-clock across its restarts, for the time columns of `metrics.jsonl`.

  `elapsed()` is the seconds the run had taken before this process resumed it (`before`, from the
  checkpoint's metadata) plus the seconds since; `lap()` the seconds since the previous lap (or the
  start), for per-period rates."""

  def __init__(self, before: float = 0.0):
    self._start = self._last = time.perf_counter()
    self._before = float(before)

  def resumed(self, before: float) -> None:
    """The run had taken `before` seconds when it was killed; they count in `elapsed` from now on."""
    self._before = float(before)

  def elapsed(self) -> float:
    return self._before + time.perf_counter() - self._start

  def lap(self) -> float:
    now = time.perf_counter()
    seconds, self._last = now - self._last, now
    return seconds


class Phases:
  """A run's wall-clock by phase (issue 16's breakdown: imports, data, compilation, training,
  evaluation, checkpoints, report).

  `with phases('training'): ...` adds the block's seconds to its phase, less the seconds JAX spent
  tracing, lowering and compiling inside it (`cljax.compilations`, when counting), which go to
  'compilation': jit compiles lazily, on a function's first call, inside whatever phase calls it.
  Phases may nest; an inner phase's seconds are not counted again in the outer one."""

  def __init__(self):
    self.seconds: dict[str, float] = {}
    self._inner = [[0.0, 0.0]]  # per open phase: [wall, compile] seconds of the phases inside it

  def add(self, name: str, seconds: float) -> None:
    self.seconds[name] = self.seconds.get(name, 0.0) + seconds

  @contextlib.contextmanager
  def __call__(self, name: str):
    start, compiled = time.perf_counter(), _compile_seconds()
    self._inner.append([0.0, 0.0])
    try:
      yield
    finally:
      total, compiling = time.perf_counter() - start, _compile_seconds() - compiled
      inner_wall, inner_compile = self._inner.pop()
      own_compile = max(compiling - inner_compile, 0.0)
      self.add('compilation', own_compile)
      self.add(name, max(total - inner_wall - own_compile, 0.0))
      self._inner[-1][0] += total
      self._inner[-1][1] += compiling

  def summary(self, wall_s: float) -> dict:
    """The seconds per phase, `wall_s`, the seconds outside every phase (`other`), and
    `wall_over_training`: how many seconds of wall-clock each second of training costs."""
    out = {k: round(v, 3) for k, v in self.seconds.items()}
    out['other'] = round(max(wall_s - sum(self.seconds.values()), 0.0), 3)
    out['wall_s'] = round(wall_s, 3)
    training = self.seconds.get('training', 0.0)
    out['wall_over_training'] = round(wall_s / training, 3) if training else None
    return out


def _compile_seconds() -> float:
  stats = compilations.stats()
  return stats['seconds'] if stats else 0.0
