"""cljax.compilations counts the executables a process builds (results.json's `compilation`)."""

import jax
import numpy as np

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
