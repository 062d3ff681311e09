"""SAC: the tanh-Gaussian density against a numerical change of variables, the three losses on
hand-made inputs, termination vs truncation in the critic target, update periods and Polyak
averaging, learned-reward override, seeding, no retracing, and Pendulum learning (slow)."""

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from envs import pendulum
from envs.core import BoxSpec, EnvError, EnvSpec
from irl import loops, networks
from irl.replay import Transition
from irl.sac import agent as sac_agent
from irl.sac import losses

SPEC = pendulum.Pendulum().spec  # obs [3], actions in [-2, 2]
TINY = sac_agent.SACConfig(hidden_sizes=(16, 16), batch_size=8)
B = 8


def _batch(key, reward=None):
  obs_key, action_key, reward_key, next_key = jax.random.split(key, 4)
  return Transition(
    obs=jax.random.normal(obs_key, (B, 3)),
    action=jax.random.uniform(action_key, (B, 1), minval=-2.0, maxval=2.0),
    reward=jax.random.normal(reward_key, (B,)) if reward is None else reward,
    next_obs=jax.random.normal(next_key, (B, 3)),
    terminated=jnp.zeros(B, bool),
    truncated=jnp.zeros(B, bool),
  )


def _assert_trees_equal(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _trees_differ(a, b):
  return any(
    not np.array_equal(np.asarray(x), np.asarray(y))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
  )


# ---------------------------------------------------------------------------------------------------
# The tanh-Gaussian


def test_tanh_log_det_jacobian_is_autodiff_exact_and_finite_in_the_tails():
  # Against float64 log(1 − tanh²u) = −2 log cosh u, and against autodiff of tanh where float32's
  # 1 − tanh²u still has digits.
  u = np.linspace(-6.0, 6.0, 49)
  np.testing.assert_allclose(
    networks.tanh_log_det_jacobian(jnp.asarray(u, jnp.float32)[:, None]),
    -2 * np.log(np.cosh(u)),
    rtol=1e-6,
    atol=1e-5,
  )
  small = jnp.linspace(-2.0, 2.0, 17)
  autodiff = jnp.log(jax.vmap(jax.grad(jnp.tanh))(small))
  np.testing.assert_allclose(networks.tanh_log_det_jacobian(small[:, None]), autodiff, atol=2e-5)
  # Summed over the last axis.
  pair = jnp.array([[0.3, -1.2]])
  np.testing.assert_allclose(
    networks.tanh_log_det_jacobian(pair),
    jnp.log(1 - jnp.tanh(0.3) ** 2) + jnp.log(1 - jnp.tanh(-1.2) ** 2),
    rtol=1e-5,
  )
  # At |u| = 30 float32 rounds tanh(u) to ±1, so the naive form is log 0; the exact value is
  # log 4 - 2|u| - 2 log(1 + e^{-2|u|}) = log 4 - 60 to float32 precision.
  assert 1 - np.tanh(np.float32(30.0)) ** 2 == 0
  tails = networks.tanh_log_det_jacobian(jnp.array([[30.0], [-30.0]]))
  np.testing.assert_allclose(tails, [np.log(4) - 60] * 2, rtol=1e-6)


@pytest.mark.parametrize('mean,log_std', [(0.4, -0.3), (1.5, 0.5), (-0.2, -2.0)])
def test_tanh_gaussian_density_is_the_numerical_change_of_variables(mean, log_std):
  # a = tanh(u), u ~ N(mean, σ²), so P(A <= a) = Φ((atanh(a) − mean)/σ); its numerical derivative
  # is the density of a, which log π must match.
  sigma = np.exp(log_std)
  a = np.linspace(-0.98, 0.98, 25)
  h = 1e-5
  cdf = lambda x: stats.norm.cdf((np.arctanh(x) - mean) / sigma)
  numerical = (cdf(a + h) - cdf(a - h)) / (2 * h)
  u = jnp.asarray(np.arctanh(a), jnp.float32)[:, None]
  density = np.exp(
    networks.tanh_gaussian_log_prob(
      u, jnp.full((25, 1), mean, jnp.float32), jnp.full((25, 1), log_std, jnp.float32)
    )
  )
  np.testing.assert_allclose(density, numerical, rtol=2e-3, atol=1e-6)
  # And it is a density on (-1, 1): it integrates to one.
  grid = np.linspace(-1 + 1e-7, 1 - 1e-7, 400_001)
  log_p = networks.tanh_gaussian_log_prob(
    jnp.asarray(np.arctanh(grid), jnp.float32)[:, None], jnp.float32(mean), jnp.float32(log_std)
  )
  assert abs(np.trapezoid(np.exp(np.asarray(log_p, np.float64)), grid) - 1.0) < 2e-3


def test_sample_is_reparameterised_and_its_log_prob_consistent():
  key = jax.random.key(3)
  mean, log_std = jnp.array([[0.2, -0.5]]), jnp.array([[-1.0, 0.3]])
  action, log_prob = networks.sample_tanh_gaussian(key, mean, log_std)
  u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
  np.testing.assert_allclose(action, jnp.tanh(u), rtol=1e-6)
  np.testing.assert_allclose(log_prob, networks.tanh_gaussian_log_prob(u, mean, log_std), rtol=1e-6)
  # d a / d mean = 1 − tanh²(u), through the sample (the reparameterisation trick, eq. 8).
  grad = jax.grad(lambda m: networks.sample_tanh_gaussian(key, m, log_std)[0].sum())(mean)
  np.testing.assert_allclose(grad, 1 - jnp.tanh(u) ** 2, rtol=1e-5)


def test_action_scaling_round_trip_and_unbounded_spec_error():
  bounds = networks.action_bounds(SPEC)
  np.testing.assert_array_equal(
    networks.to_env_action(jnp.array([-1.0, 0.0, 1.0])[:, None], bounds), [[-2.0], [0.0], [2.0]]
  )
  x = jnp.array([[-1.7], [0.3], [1.99]])
  np.testing.assert_allclose(
    networks.to_env_action(networks.to_unit_action(x, bounds), bounds), x, rtol=1e-6
  )
  unbounded = SPEC._replace(action=BoxSpec((1,), -np.inf, np.inf))
  with pytest.raises(EnvError, match='spec.action.low/high'):
    sac_agent.make_sac(unbounded, TINY)


# ---------------------------------------------------------------------------------------------------
# Losses


def test_soft_bellman_target_by_hand():
  reward = jnp.array([1.0, 2.0, 3.0])
  terminated = jnp.array([False, True, False])
  next_q = jnp.array([[5.0, 1.0, 2.0], [4.0, 7.0, 0.0]])
  next_log_prob = jnp.array([0.5, -1.0, 2.0])
  target = losses.soft_bellman_target(
    reward, terminated, next_q, next_log_prob, jnp.float32(0.2), 0.9
  )
  # y = r + γ (1 − d)(min_j Q̄_j − α log π): 1 + 0.9 (4 − 0.1), 2 (terminated), 3 + 0.9 (0 − 0.4).
  np.testing.assert_allclose(target, [4.51, 2.0, 2.64], rtol=1e-6)


def test_critic_target_stops_at_termination_and_bootstraps_through_truncation():
  sac = sac_agent.make_sac(SPEC, TINY)
  state = sac.init(jax.random.key(0))
  batch = _batch(jax.random.key(1))
  unit_action = networks.to_unit_action(batch.action, sac.bounds)
  alpha = jnp.exp(state.log_alpha)
  args = (
    state.critic_params,
    state.target_critic_params,
    state.actor_params,
    alpha,
    batch.obs,
    unit_action,
    batch.reward,
    batch.next_obs,
  )
  kwargs = dict(actor=sac.actor, critic=sac.critic, discount=0.99)
  loss, aux = losses.critic_loss(*args, jnp.ones(B, bool), jax.random.key(2), **kwargs)
  np.testing.assert_allclose(aux['target'], batch.reward, rtol=1e-6)  # no bootstrap at all
  q = sac.critic.apply(state.critic_params, batch.obs, unit_action)
  np.testing.assert_allclose(
    loss, np.sum(np.mean(0.5 * (q - batch.reward) ** 2, axis=1)), rtol=1e-5
  )
  _, aux = losses.critic_loss(*args, jnp.zeros(B, bool), jax.random.key(2), **kwargs)
  assert np.all(np.abs(aux['target'] - batch.reward) > 1e-4)

  # Through a whole update: `truncated` is ignored (the state is identical), `terminated` is not.
  key = jax.random.key(4)
  plain, _ = sac.update(state, batch, key)
  truncated, _ = sac.update(state, batch._replace(truncated=jnp.ones(B, bool)), key)
  terminated, _ = sac.update(state, batch._replace(terminated=jnp.ones(B, bool)), key)
  _assert_trees_equal(plain, truncated)
  assert _trees_differ(plain.critic_params, terminated.critic_params)


def test_actor_loss_is_the_reparameterised_soft_objective_with_the_min_critic():
  sac = sac_agent.make_sac(SPEC, TINY)
  state = sac.init(jax.random.key(0))
  obs, key, alpha = (
    jax.random.normal(jax.random.key(1), (B, 3)),
    jax.random.key(2),
    jnp.float32(0.3),
  )
  loss, aux = losses.actor_loss(
    state.actor_params, state.critic_params, alpha, obs, key, actor=sac.actor, critic=sac.critic
  )
  mean, log_std = sac.actor.apply(state.actor_params, obs)
  u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
  log_prob = (
    stats.norm.logpdf(np.asarray(u), np.asarray(mean), np.exp(np.asarray(log_std)))[:, 0]
    - np.log(1 - np.tanh(np.asarray(u, np.float64)) ** 2)[:, 0]
  )
  q = sac.critic.apply(state.critic_params, obs, jnp.tanh(u))
  np.testing.assert_allclose(aux['log_prob'], log_prob, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(
    loss, np.mean(0.3 * log_prob - np.min(q, axis=0)), rtol=1e-4, atol=1e-5
  )


def test_temperature_gradient_sign_and_value():
  grad = jax.grad(losses.temperature_loss)
  log_alpha = jnp.log(0.5)
  # dJ/dlog α = −α (E log π + H̄). Entropy 1.5 below the target 1 ⇒ negative ⇒ descent raises α.
  low_entropy = grad(log_alpha, jnp.array([1.0, 2.0]), -1.0)
  np.testing.assert_allclose(low_entropy, -0.5 * (1.5 - 1.0), rtol=1e-6)
  high_entropy = grad(log_alpha, jnp.array([-2.0, -3.0]), -1.0)
  np.testing.assert_allclose(high_entropy, -0.5 * (-2.5 - 1.0), rtol=1e-6)
  # The same direction through a whole update with a learned temperature.
  batch, key = _batch(jax.random.key(1)), jax.random.key(2)
  for target_entropy, direction in ((50.0, 1), (-50.0, -1)):
    sac = sac_agent.make_sac(
      SPEC, sac_agent.SACConfig(hidden_sizes=(16, 16), target_entropy=target_entropy)
    )
    state = sac.init(jax.random.key(0))
    new_state, _ = sac.update(state, batch, key)
    assert np.sign(float(new_state.log_alpha - state.log_alpha)) == direction
  fixed = sac_agent.make_sac(
    SPEC, sac_agent.SACConfig(hidden_sizes=(16, 16), learn_temperature=False, init_temperature=0.2)
  )
  state = fixed.init(jax.random.key(0))
  assert float(fixed.update(state, batch, key)[0].log_alpha) == float(state.log_alpha)


# ---------------------------------------------------------------------------------------------------
# The update


def test_update_periods_and_polyak_average():
  config = sac_agent.SACConfig(
    hidden_sizes=(16, 16), tau=0.1, actor_update_period=2, target_update_period=2
  )
  sac = sac_agent.make_sac(SPEC, config)
  s0 = sac.init(jax.random.key(0))
  batch = _batch(jax.random.key(1))
  s1, m1 = sac.update(s0, batch, jax.random.key(2))
  s2, m2 = sac.update(s1, batch, jax.random.key(3))
  assert int(s1.step) == 1 and int(s2.step) == 2
  # Step 0: actor, temperature and target move; θ̄₁ = τθ₁ + (1 − τ)θ̄₀.
  assert _trees_differ(s0.actor_params, s1.actor_params) and float(s1.log_alpha) != float(
    s0.log_alpha
  )
  expected = jax.tree.map(lambda c, t: 0.1 * c + 0.9 * t, s1.critic_params, s0.target_critic_params)
  for x, y in zip(jax.tree.leaves(s1.target_critic_params), jax.tree.leaves(expected)):
    np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
  assert np.isfinite(float(m1['actor_loss']))
  # Step 1: only the critics move.
  _assert_trees_equal(s1.actor_params, s2.actor_params)
  _assert_trees_equal(s1.target_critic_params, s2.target_critic_params)
  assert float(s1.log_alpha) == float(s2.log_alpha)
  assert _trees_differ(s1.critic_params, s2.critic_params)
  assert np.isnan(float(m2['actor_loss'])) and np.isfinite(float(m2['critic_loss']))


def test_reward_fn_replaces_the_batch_reward():
  sac = sac_agent.make_sac(SPEC, TINY)
  state = sac.init(jax.random.key(0))
  batch, key = _batch(jax.random.key(1)), jax.random.key(2)
  # reward_fn sees environment-scale actions, like the buffer.
  learned = lambda obs, action, next_obs: -jnp.sum(action**2, axis=-1) + next_obs[:, 0] - obs[:, 1]
  expected_reward = -jnp.sum(batch.action**2, axis=-1) + batch.next_obs[:, 0] - batch.obs[:, 1]
  with_fn, metrics = sac.update(state, batch, key, reward_fn=learned)
  with_batch, _ = sac.update(state, batch._replace(reward=expected_reward), key)
  _assert_trees_equal(with_fn, with_batch)
  np.testing.assert_allclose(metrics['reward'], jnp.mean(expected_reward), rtol=1e-6)
  with pytest.raises(ValueError, match='reward_fn must return rewards of shape'):
    sac.update(state, batch, key, reward_fn=lambda o, a, n: jnp.zeros((B, 1)))


def test_update_traces_once():
  sac = sac_agent.make_sac(SPEC, TINY)
  traces = []

  def counted(state, batch, key):
    traces.append(1)
    return sac.update(state, batch, key)

  update = jax.jit(counted)
  state = sac.init(jax.random.key(0))
  for i in range(4):
    state, metrics = update(state, _batch(jax.random.key(10 + i)), jax.random.key(i))
  assert len(traces) == 1 and int(state.step) == 4
  assert all(np.isfinite(float(v)) for v in metrics.values())


def test_seeds_give_different_params_and_the_same_seed_the_same():
  sac = sac_agent.make_sac(SPEC, TINY)
  a, b, a_again = (sac.init(jax.random.key(s)) for s in (0, 1, 0))
  _assert_trees_equal(a, a_again)
  assert _trees_differ(a.actor_params, b.actor_params)
  assert _trees_differ(a.critic_params, b.critic_params)
  # The twin critics are initialised independently; the targets start as copies.
  first, second = (jax.tree.map(lambda x: x[i], a.critic_params) for i in (0, 1))
  assert _trees_differ(first, second)
  _assert_trees_equal(a.critic_params, a.target_critic_params)
  np.testing.assert_allclose(jnp.exp(a.log_alpha), TINY.init_temperature, rtol=1e-6)


def test_state_round_trips_through_a_checkpoint(tmp_path):
  from cljax.checkpoint import Checkpointer

  sac = sac_agent.make_sac(SPEC, TINY)
  state, _ = sac.update(sac.init(jax.random.key(0)), _batch(jax.random.key(1)), jax.random.key(2))
  with Checkpointer(str(tmp_path)) as checkpointer:
    checkpointer.save(1, state, {'env': SPEC.name})
    restored, meta = checkpointer.restore(1, jax.eval_shape(sac.init, jax.random.key(0)))
  assert isinstance(restored, sac_agent.SACState) and meta == {'env': SPEC.name}
  _assert_trees_equal(restored, state)


def test_act_is_in_bounds_and_deterministic_is_the_squashed_mean():
  sac = sac_agent.make_sac(SPEC, TINY)
  state = sac.init(jax.random.key(0))
  obs = 50.0 * jax.random.normal(jax.random.key(1), (64, 3))  # far outside the data, large |u|
  sampled = sac.act(state, obs, jax.random.key(2))
  assert sampled.shape == (64, 1) and np.all(np.abs(sampled) <= 2.0)
  greedy = sac.act(state.actor_params, obs, jax.random.key(2), deterministic=True)
  mean, _ = sac.actor.apply(state.actor_params, obs)
  np.testing.assert_allclose(greedy, 2.0 * jnp.tanh(mean), rtol=1e-6)
  _assert_trees_equal(sac.act(state, obs[0], jax.random.key(2), True), greedy[0])


def test_config_errors_name_the_field():
  for field, value in (
    ('tau', 0.0),
    ('discount', 1.5),
    ('batch_size', 0),
    ('actor_update_period', 0),
    ('critic_lr', -1.0),
  ):
    with pytest.raises(ValueError, match=f'SACConfig.{field}'):
      sac_agent.make_sac(SPEC, sac_agent.SACConfig(**{field: value}))
  with pytest.raises(ValueError, match='SACConfig.init_temperature'):
    sac_agent.make_sac(SPEC, sac_agent.SACConfig(init_temperature=0.0))
  image_spec = EnvSpec('image', BoxSpec((4, 4), -1.0, 1.0), SPEC.action, 10)
  with pytest.raises(ValueError, match='flat observations'):
    sac_agent.make_sac(image_spec, TINY)


# ---------------------------------------------------------------------------------------------------
# Learning


@pytest.mark.slow
def test_sac_swings_up_pendulum():
  # Paper defaults ((256, 256), batch 256, α learned from 1); 1,000 random steps, then one update per
  # step. Measured on a loaded 2-core CPU (seeds 0-2): about 45 s for 12k steps; the 10-episode
  # evaluation return passes -200 between 6k and 10k steps and is -117 to -156 at 12k, with dips
  # of a few hundred on the way; the untrained policy scores about -1500.
  env = pendulum.Pendulum()
  agent = sac_agent.as_agent(sac_agent.make_sac(env.spec, sac_agent.SACConfig()))
  config = loops.LoopConfig(
    num_env_steps=12_000,
    start_steps=1_000,
    update_after=1_000,
    replay_capacity=12_000,
    eval_every=2_000,
    eval_episodes=10,
  )
  start = time.time()
  _, metrics = loops.train_jax(env, agent, config, jax.random.key(0))
  eval_return = np.asarray(metrics['eval_return'])
  assert eval_return[0] < -900, eval_return
  assert max(eval_return[-2:]) >= -200, eval_return
  assert time.time() - start < 300
