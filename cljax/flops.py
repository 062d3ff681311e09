"""Compute measured against the machine (issue 16): a function's FLOPs from XLA's cost analysis, and the
float32 matmul peak of this backend, measured here with a large jitted matmul.

XLA's cost analysis counts the body of a `lax.scan` / `while` loop once, whatever its trip count; so a
training step's FLOPs come from a function that runs exactly one step (e.g. an epoch over one
minibatch), and a rate is that times the measured steps per second."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp


def flops(fn, *args, **jit_kwargs) -> float:
  """FLOPs of one call of `jax.jit(fn)` on `args`, from XLA's cost analysis of the compiled executable
  (loop bodies counted once). Raises if the backend reports none."""
  return compiled_flops(jax.jit(fn, **jit_kwargs).lower(*args).compile())


def compiled_flops(compiled) -> float:
  """FLOPs of one call of an ahead-of-time compiled executable (`jax.jit(f).lower(...).compile()`)."""
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):  # older jax: one dict per device program
    cost = cost[0] if cost else {}
  value = (cost or {}).get('flops')
  if value is None or value <= 0:
    raise RuntimeError(f'XLA reported no FLOP count for this executable: {cost!r}')
  return float(value)


def matmul_peak(n: int = 2048, repeats: int = 5, dtype=jnp.float32) -> float:
  """The best FLOP/s of `repeats` calls of a jitted [n, n] @ [n, n] matmul (2·n³ FLOPs each), compiled
  and warmed up first: the machine's practical peak for dense float32 arithmetic."""
  a = jax.random.normal(jax.random.key(0), (n, n), dtype)
  b = jax.random.normal(jax.random.key(1), (n, n), dtype)
  matmul = jax.jit(jnp.matmul).lower(a, b).compile()
  jax.block_until_ready(matmul(a, b))
  best = float('inf')
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(matmul(a, b))
    best = min(best, time.perf_counter() - start)
  return 2.0 * n**3 / best


def figures(prefix: str, flops_per_call: float, calls_per_s: float, peak: float) -> dict:
  """{prefix}_flop_per_s (FLOPs per call × calls per second) and {prefix}_fraction_of_peak, for a
  benchmark's JSON line."""
  achieved = flops_per_call * calls_per_s
  return {
    f'{prefix}_flop_per_s': achieved,
    f'{prefix}_fraction_of_peak': achieved / peak,
  }
