"""cljax.compilations counts the executables a process builds (results.json's `compilation`)."""

import jax
import numpy as np
import pytest

from cljax import compilations


def test_counts_one_executable_per_new_shape_and_none_for_a_cached_call():
  compilations.count()
  compilations.count()  # idempotent: one set of listeners, so each compile counts once

  def double(x):
    return 2 * x + 1

  f = jax.jit(double)
  start = compilations.stats()
  jax.block_until_ready(f(np.ones(3, np.float32)))
  after_first = compilations.stats()
  jax.block_until_ready(f(np.ones(3, np.float32)))  # the same shape: jit's cache, nothing built
  assert compilations.stats()['executables'] == after_first['executables']
  jax.block_until_ready(f(np.ones(4, np.float32)))  # a new shape: one more executable
  after_new_shape = compilations.stats()
  assert after_first['executables'] - start['executables'] >= 1
  assert after_new_shape['executables'] - after_first['executables'] == 1
  assert after_new_shape['seconds'] > start['seconds']
  assert after_new_shape['backend_s'] > start['backend_s']


def test_phases_move_compilation_out_and_count_nested_phases_once():
  """cljax.timing.Phases: a phase's first call of a jitted function compiles; those seconds go to
  'compilation', not to the phase; an inner phase's seconds are not counted in the outer one, and
  the phases plus 'other' add up to the wall-clock."""
  import time

  from cljax.timing import Phases

  compilations.count()
  phases = Phases()
  start = time.perf_counter()
  f = jax.jit(lambda x: jnp_sin_sum(x))
  with phases('training'):
    jax.block_until_ready(f(np.ones(7, np.float32)))  # compiles here
    with phases('checkpoints'):
      time.sleep(0.1)
    time.sleep(0.02)
  summary = phases.summary(time.perf_counter() - start)
  assert summary['compilation'] > 0
  assert 0.1 <= summary['checkpoints'] < 0.3
  assert 0.02 <= summary['training'] < 0.09  # neither the checkpoint's 0.1 s nor the compilation
  total = sum(v for k, v in summary.items() if k not in ('wall_s', 'wall_over_training'))
  assert abs(total - summary['wall_s']) < 0.01
  assert summary['wall_over_training'] == pytest.approx(
    summary['wall_s'] / summary['training'], rel=0.1
  )


def jnp_sin_sum(x):
  import jax.numpy as jnp

  return jnp.sum(jnp.sin(x) * jnp.arange(7.0))
