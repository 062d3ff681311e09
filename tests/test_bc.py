"""Behaviour cloning: the MLE and MSE losses by hand, expert actions on the box bounds, learning a
linear expert to small error, one compilation for repeated offline runs, acting, config errors and
the loop-facing agent."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs.core import BoxSpec, EnvSpec
from irl import bc as bc_lib
from irl import networks, replay
from irl.replay import Transition

SPEC = EnvSpec('linear', BoxSpec((3,), -1.0, 1.0), BoxSpec((2,), -2.0, 2.0), 10)
TINY = bc_lib.BCConfig(hidden_sizes=(16, 16), batch_size=8)
W = np.array([[0.3, -0.2], [0.25, 0.35], [-0.3, 0.1]], np.float32)


def _expert(key, size):
  """A linear expert a = 2·(s W) in the box [−2, 2]² (|s W| <= 0.85 for s in [−1, 1]³)."""
  obs = jax.random.uniform(key, (size, 3), minval=-1.0, maxval=1.0)
  action = 2.0 * obs @ W
  return Transition(
    obs=obs,
    action=action,
    reward=jnp.zeros(size),
    next_obs=obs,
    terminated=jnp.zeros(size, bool),
    truncated=jnp.zeros(size, bool),
  )


def test_mle_loss_by_hand():
  learner = bc_lib.make_bc(SPEC, TINY)
  params = learner.init(jax.random.key(0)).params
  batch = _expert(jax.random.key(1), 5)
  unit = np.asarray(networks.to_unit_action(batch.action, learner.bounds), np.float64)
  loss, aux = bc_lib.bc_loss(
    params,
    batch.obs,
    jnp.asarray(unit, jnp.float32),
    actor=learner.actor,
    loss='mle',
    action_clip=1e-4,
  )
  mean, log_std = (np.asarray(x, np.float64) for x in learner.actor.apply(params, batch.obs))
  # log π(a|s) = Σ_i [log N(atanh a_i; μ_i, σ_i²) − log(1 − a_i²)]: the change of variables a = tanh u.
  u = np.arctanh(unit)
  log_normal = -0.5 * ((u - mean) / np.exp(log_std)) ** 2 - log_std - 0.5 * np.log(2 * np.pi)
  expected = -np.mean(np.sum(log_normal - np.log(1 - unit**2), axis=-1))
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  np.testing.assert_allclose(aux['mse'], np.mean((np.tanh(mean) - unit) ** 2), rtol=1e-5)


def test_mse_loss_by_hand():
  learner = bc_lib.make_bc(SPEC, bc_lib.BCConfig(hidden_sizes=(16, 16), loss='mse'))
  params = learner.init(jax.random.key(0)).params
  obs = jnp.array([[0.1, 0.2, 0.3], [-0.5, 0.0, 0.5]])
  unit = jnp.array([[0.5, -0.5], [1.0, 0.0]])
  loss, _ = bc_lib.bc_loss(params, obs, unit, actor=learner.actor, loss='mse', action_clip=1e-4)
  mode = np.tanh(np.asarray(learner.actor.apply(params, obs)[0], np.float64))
  np.testing.assert_allclose(loss, np.mean((mode - np.asarray(unit)) ** 2), rtol=1e-5)
  # The log-std head gets no gradient from the MSE loss.
  grads = jax.grad(
    lambda p: bc_lib.bc_loss(p, obs, unit, actor=learner.actor, loss='mse', action_clip=1e-4)[0]
  )(params)
  np.testing.assert_array_equal(np.asarray(grads['head']['kernel'])[:, 2:], 0.0)
  assert np.any(np.asarray(grads['head']['kernel'])[:, :2] != 0)


def test_actions_on_the_bounds_are_clipped_inside_for_the_mle():
  learner = bc_lib.make_bc(SPEC, TINY)
  params = learner.init(jax.random.key(0)).params
  obs = jnp.zeros((2, 3))
  on_bounds = jnp.array([[1.0, -1.0], [-1.0, 1.0]])
  inside = jnp.array([[1 - 1e-4, -1 + 1e-4], [-1 + 1e-4, 1 - 1e-4]])
  kwargs = dict(actor=learner.actor, loss='mle', action_clip=1e-4)
  loss, _ = bc_lib.bc_loss(params, obs, on_bounds, **kwargs)
  assert np.isfinite(float(loss))
  np.testing.assert_allclose(loss, bc_lib.bc_loss(params, obs, inside, **kwargs)[0], rtol=1e-6)
  grads = jax.grad(lambda p: bc_lib.bc_loss(p, obs, on_bounds, **kwargs)[0])(params)
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))


@pytest.mark.parametrize('loss', ['mle', 'mse'])
def test_bc_learns_a_linear_expert_and_compiles_once(loss):
  config = bc_lib.BCConfig(hidden_sizes=(32, 32), batch_size=64, loss=loss)
  learner = bc_lib.make_bc(SPEC, config)
  expert_buffer = replay.expert_buffer(_expert(jax.random.key(0), 512))
  test = _expert(jax.random.key(1), 256)
  before = learner.init(jax.random.key(2))
  state, metrics = bc_lib.train_offline(learner, expert_buffer, jax.random.key(2), 1500)
  assert metrics['bc_loss'].shape == (1500,) and int(state.step) == 1500
  error = lambda s: float(jnp.mean((learner.act(s, test.obs, None, True) - test.action) ** 2))
  # Actions span [−1.7, 1.7]; the untrained mode is off by ~1 per dimension.
  assert error(before) > 0.3 and error(state) < 0.01, (error(before), error(state))
  assert float(jnp.mean(metrics['bc_loss'][-100:])) < float(jnp.mean(metrics['bc_loss'][:100]))

  # Same key, same run; another key runs on the same compiled program.
  size = bc_lib._train_offline._cache_size()
  again, _ = bc_lib.train_offline(learner, expert_buffer, jax.random.key(2), 1500)
  other, _ = bc_lib.train_offline(learner, expert_buffer, jax.random.key(3), 1500)
  assert bc_lib._train_offline._cache_size() == size
  for x, y in zip(jax.tree.leaves(state), jax.tree.leaves(again)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  assert not np.array_equal(
    np.asarray(state.params['head']['kernel']), np.asarray(other.params['head']['kernel'])
  )


def test_train_offline_continues_from_a_state_and_vmaps_over_keys():
  learner = bc_lib.make_bc(SPEC, TINY)
  expert_buffer = replay.expert_buffer(_expert(jax.random.key(0), 32))
  state, _ = bc_lib.train_offline(learner, expert_buffer, jax.random.key(1), 3)
  resumed, _ = bc_lib.train_offline(learner, expert_buffer, jax.random.key(2), 2, state=state)
  assert int(resumed.step) == 5
  keys = jax.random.split(jax.random.key(4), 2)
  batched, _ = jax.vmap(lambda k: bc_lib.train_offline(learner, expert_buffer, k, 3))(keys)
  single, _ = bc_lib.train_offline(learner, expert_buffer, keys[1], 3)
  for x, y in zip(jax.tree.leaves(batched), jax.tree.leaves(single)):
    np.testing.assert_allclose(np.asarray(x)[1], np.asarray(y), rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match='num_steps'):
    bc_lib.train_offline(learner, expert_buffer, jax.random.key(0), 0)
  with pytest.raises(TypeError, match='ExpertBuffer'):
    bc_lib.train_offline(learner, _expert(jax.random.key(0), 8), jax.random.key(0), 1)


def test_act_and_the_agent_interface():
  learner = bc_lib.make_bc(SPEC, TINY)
  state = learner.init(jax.random.key(0))
  obs = jax.random.uniform(jax.random.key(1), (16, 3))
  mode = networks.to_env_action(jnp.tanh(learner.actor.apply(state.params, obs)[0]), learner.bounds)
  np.testing.assert_allclose(learner.act(state, obs, jax.random.key(2), True), mode, rtol=1e-6)
  sampled = learner.act(state.params, obs, jax.random.key(2))
  assert not np.allclose(sampled, mode) and np.all(np.abs(sampled) <= 2.0)
  mse = bc_lib.make_bc(SPEC, bc_lib.BCConfig(hidden_sizes=(16, 16), loss='mse'))
  np.testing.assert_allclose(mse.act(state, obs, jax.random.key(2)), mode, rtol=1e-6)

  agent = bc_lib.as_agent(learner)
  expert_buffer = replay.expert_buffer(_expert(jax.random.key(3), 32))
  rows = _expert(jax.random.key(4), 4)
  buffer = replay.add(replay.init(jax.tree.map(lambda x: x[0], rows), 8), rows)
  new_state, metrics = jax.jit(agent.update)(state, buffer, jax.random.key(5), expert_buffer)
  assert int(new_state.step) == 1 and np.isfinite(float(metrics['bc_loss']))
  with pytest.raises(ValueError, match='expert_buffer'):
    agent.update(state, buffer, jax.random.key(5), None)


@pytest.mark.parametrize(
  'field,value',
  [
    ('lr', 0.0),
    ('batch_size', 0),
    ('batch_size', 2.0),
    ('hidden_sizes', (0,)),
    ('loss', 'l1'),
    ('log_std_min', 5.0),
    ('action_clip', 0.0),
    ('action_clip', 1.0),
  ],
)
def test_config_errors_name_the_field(field, value):
  with pytest.raises(ValueError, match=f'BCConfig.{field}'):
    bc_lib.make_bc(SPEC, bc_lib.BCConfig(**{field: value}))
  with pytest.raises(TypeError, match='BCConfig'):
    bc_lib.make_bc(SPEC, {'lr': 1e-3})
