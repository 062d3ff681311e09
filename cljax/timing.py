"""Timing helpers the benchmarks share: compile ahead of time, then time one call of the executable
(`irl.timing` times the IRL host loop)."""

from __future__ import annotations

import time

import jax


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
