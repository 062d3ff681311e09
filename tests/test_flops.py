"""cljax.flops: XLA's FLOP count of a compiled function, and the measured matmul peak."""

import jax
import jax.numpy as jnp
import pytest

from cljax import flops


def test_a_matmul_counts_two_n_cubed():
  a = jnp.ones((64, 32))
  b = jnp.ones((32, 16))
  assert flops.flops(jnp.matmul, a, b) == 2 * 64 * 32 * 16
  assert flops.flops(jnp.matmul, a, jnp.ones((32, 48))) == 3 * flops.flops(jnp.matmul, a, b)


def test_a_scan_body_counts_once_so_steps_are_counted_on_a_one_step_function():
  """Why the benchmarks lower a one-step function: the count ignores the trip count."""

  def steps(x, n):
    return jax.lax.scan(lambda c, _: (c @ c, None), x, None, length=n)[0]

  x = jnp.ones((32, 32))
  one = flops.flops(steps, x, 1, static_argnums=1)
  assert one == 2 * 32**3
  assert flops.flops(steps, x, 10, static_argnums=1) < 2 * one  # not 10 × (plus a loop counter)


def test_peak_and_figures():
  peak = flops.matmul_peak(n=256, repeats=2)
  assert peak > 1e6
  figures = flops.figures('step', 1e6, 50.0, peak)
  assert figures['step_flop_per_s'] == 5e7
  assert figures['step_fraction_of_peak'] == pytest.approx(5e7 / peak)
