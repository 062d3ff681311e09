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
