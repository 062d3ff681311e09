"""cljax.divergence: which values stop a run, and what the one line says."""

import jax.numpy as jnp
import numpy as np
import pytest

from cljax import divergence


def test_all_finite_looks_at_float_leaves_only():
  assert bool(divergence.all_finite({'w': jnp.ones(3), 'step': jnp.int32(5)}))
  assert not bool(divergence.all_finite({'w': jnp.array([1.0, jnp.inf])}))
  assert not bool(divergence.all_finite([jnp.zeros(2), jnp.array(jnp.nan)]))


def test_check_names_the_place_the_terms_and_the_seeds():
  ok = np.array([True, True])
  divergence.check('task 1, epoch 1', {'loss': np.array([0.5, 0.7])}, ok, [3, 4])
  with pytest.raises(
    divergence.DivergenceError, match=r'at task 2, epoch 7: non-finite loss terms loss \(seed 4\)'
  ):
    divergence.check(
      'task 2, epoch 7', {'loss': np.array([0.5, np.nan]), 'acc': np.ones(2)}, ok, [3, 4]
    )
  with pytest.raises(divergence.DivergenceError, match=r'non-finite parameters \(seeds 3, 4\)'):
    divergence.check('x', {'loss': np.ones(2)}, np.array([False, False]), [3, 4])


def test_rl_metrics_nan_means_not_computed_but_inf_and_bad_parameters_stop():
  ok = np.array([True])
  divergence.check(
    '100 environment steps', {'policy/actor_loss': np.array([np.nan])}, ok, [0], nan_is_missing=True
  )
  divergence.check('x', {'eval_return': np.array([np.inf])}, ok, [0], skip=('eval_return',))
  with pytest.raises(divergence.DivergenceError, match='loss terms discriminator/loss'):
    divergence.check('x', {'discriminator/loss': np.array([np.inf])}, ok, [0], nan_is_missing=True)
  with pytest.raises(divergence.DivergenceError, match='parameters and loss terms policy/q'):
    divergence.check(
      'x', {'policy/q': np.array([np.nan])}, np.array([False]), [0], nan_is_missing=True
    )
