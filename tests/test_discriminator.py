"""The OPIRL / DAC discriminator: the AIRL logit and the GAIL reward transforms against hand-set
linear networks, the gradient penalty's analytic value on linear networks, what each reward input
sees, clipping and the log π switch, learning on separable data and chance on identical data,
no retracing, seeding and vmap over seeds."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from irl import discriminator as disc_lib
from irl.discriminator import DiscriminatorConfig, DiscriminatorParams
from irl.replay import Transition

OBS, ACT, B = 3, 2, 16
TINY = DiscriminatorConfig(reward_hidden=(16, 16), shaping_hidden=(16, 16))
LINEAR = DiscriminatorConfig(reward_hidden=(), shaping_hidden=())


def _batch(key, shift=0.0, size=B, obs_dim=OBS):
  obs_key, action_key, next_key = jax.random.split(key, 3)
  return Transition(
    obs=shift + jax.random.normal(obs_key, (size, obs_dim)),
    action=shift + jax.random.normal(action_key, (size, ACT)),
    reward=jnp.zeros(size),
    next_obs=shift + jax.random.normal(next_key, (size, obs_dim)),
    terminated=jnp.zeros(size, bool),
    truncated=jnp.zeros(size, bool),
  )


def _linear(w, b):
  return {
    'head': {'kernel': jnp.asarray(w, jnp.float32)[:, None], 'bias': jnp.asarray([b], jnp.float32)}
  }


def _linear_params(reward_in, seed=0, shaping=True):
  rng = np.random.default_rng(seed)
  w_r, b_r = rng.normal(size=reward_in), float(rng.normal())
  w_h, b_h = rng.normal(size=OBS), float(rng.normal())
  params = DiscriminatorParams(
    reward=_linear(w_r, b_r), shaping=_linear(w_h, b_h) if shaping else None
  )
  return params, (w_r, b_r, w_h, b_h)


def _f64(x):
  return np.asarray(x, np.float64)


def _assert_trees_close(a, b, **kw):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), **kw)


def _trees_differ(a, b):
  return any(
    not np.array_equal(np.asarray(x), np.asarray(y))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
  )


# ---------------------------------------------------------------------------------------------------
# Config and construction


@pytest.mark.parametrize(
  'overrides,field',
  [
    ({'kind': 'wgan'}, 'kind'),
    ({'reward_input': 'as'}, 'reward_input'),
    ({'reward_hidden': [64, 64]}, 'reward_hidden'),
    ({'shaping_hidden': (256, 0)}, 'shaping_hidden'),
    ({'gamma_d': 1.5}, 'gamma_d'),
    ({'learning_rate': 0.0}, 'learning_rate'),
    ({'gp_coeff': -1.0}, 'gp_coeff'),
    ({'gp_target': float('nan')}, 'gp_target'),
    ({'use_log_pi': 1}, 'use_log_pi'),
    ({'reward_clip_max': float('inf')}, 'reward_clip_max'),
    ({'policy_reward': 'shaped'}, 'policy_reward'),
    ({'reward_transform': 'log'}, 'reward_transform'),
    ({'kind': 'gail', 'use_log_pi': True}, 'use_log_pi'),
    ({'kind': 'gail', 'policy_reward': 'f'}, 'policy_reward'),
    ({'kind': 'airl', 'reward_transform': 'log_d'}, 'reward_transform'),
    ({'goal_relative': (0, 3)}, 'goal_relative'),
    ({'goal_relative': (0, 1, 2)}, 'goal_relative'),  # overlapping blocks
    ({'goal_relative': (0, 2, 0)}, 'goal_relative'),
    ({'goal_relative': (0, OBS - 1, 2)}, 'goal_relative'),  # past the observation
  ],
)
def test_config_errors_name_the_field(overrides, field):
  with pytest.raises(ValueError, match=f'DiscriminatorConfig.{field}'):
    disc_lib.make_discriminator(OBS, ACT, DiscriminatorConfig(**overrides))


def test_bad_sizes_and_batches_are_errors():
  with pytest.raises(ValueError, match='obs_dim'):
    disc_lib.make_discriminator(0, ACT)
  with pytest.raises(ValueError, match='act_dim'):
    disc_lib.make_discriminator(OBS, True)
  disc = disc_lib.make_discriminator(OBS, ACT, TINY)
  params = disc.init(jax.random.key(0)).params
  batch = _batch(jax.random.key(1))
  with pytest.raises(ValueError, match='action must have shape'):
    disc.reward(params, batch.obs, batch.action[:, :1], batch.next_obs)
  with pytest.raises(ValueError, match='obs must have shape'):
    disc.logits(params, batch.obs[:, :2], batch.action, batch.next_obs[:, :2])
  with pytest.raises(ValueError, match='same size'):
    disc.loss(params, batch, _batch(jax.random.key(2), size=B // 2), jax.random.key(3))


def test_init_shapes_and_seeding():
  airl = disc_lib.make_discriminator(OBS, ACT, DiscriminatorConfig())
  state = airl.init(jax.random.key(0))
  assert state.params.reward['head']['kernel'].shape == (64, 1)
  assert state.params.reward['hidden'][0]['kernel'].shape == (OBS + ACT, 64)
  assert state.shaping_params['hidden'][0]['kernel'].shape == (OBS, 256)
  assert state.reward_params is state.params.reward and int(state.step) == 0
  _assert_trees_close(state, airl.init(jax.random.key(0)), rtol=0, atol=0)
  assert _trees_differ(state.params, airl.init(jax.random.key(1)).params)
  gail = disc_lib.make_discriminator(OBS, ACT, DiscriminatorConfig(kind='gail', reward_input='ss'))
  gail_state = gail.init(jax.random.key(0))
  assert gail.shaping_net is None and gail_state.params.shaping is None
  assert gail_state.shaping_opt_state is None
  assert gail_state.params.reward['hidden'][0]['kernel'].shape == (2 * OBS, 64)


# ---------------------------------------------------------------------------------------------------
# Logits and rewards against hand-set linear networks


@pytest.mark.parametrize('reward_input', ['s', 'sa', 'ss'])
def test_airl_logit_is_r_plus_discounted_potential_difference(reward_input):
  config = dataclasses.replace(LINEAR, reward_input=reward_input, gamma_d=0.7)
  disc = disc_lib.make_discriminator(OBS, ACT, config)
  batch = _batch(jax.random.key(0))
  s, a, s_next = _f64(batch.obs), _f64(batch.action), _f64(batch.next_obs)
  x = {'s': s, 'sa': np.concatenate([s, a], -1), 'ss': np.concatenate([s, s_next], -1)}[
    reward_input
  ]
  params, (w_r, b_r, w_h, b_h) = _linear_params(x.shape[-1])
  r = x @ w_r + b_r
  f = r + 0.7 * (s_next @ w_h + b_h) - (s @ w_h + b_h)
  args = (
    jnp.asarray(s, jnp.float32),
    jnp.asarray(a, jnp.float32),
    jnp.asarray(s_next, jnp.float32),
  )
  np.testing.assert_allclose(disc.logits(params, *args), f, rtol=1e-5, atol=1e-5)
  # The default policy reward is r alone; 'f' is the shaped logit.
  np.testing.assert_allclose(disc.reward(params, *args), r, rtol=1e-5, atol=1e-5)
  shaped = disc_lib.make_discriminator(OBS, ACT, dataclasses.replace(config, policy_reward='f'))
  np.testing.assert_allclose(shaped.reward(params, *args), f, rtol=1e-5, atol=1e-5)


def test_log_pi_switch_subtracts_exactly_log_pi():
  batch = _batch(jax.random.key(0))
  plain = disc_lib.make_discriminator(OBS, ACT, TINY)
  posterior = disc_lib.make_discriminator(OBS, ACT, dataclasses.replace(TINY, use_log_pi=True))
  params = plain.init(jax.random.key(1)).params
  log_pi = jax.random.normal(jax.random.key(2), (B,))
  f = plain.logits(params, batch.obs, batch.action, batch.next_obs)
  f_posterior = posterior.logits(params, batch.obs, batch.action, batch.next_obs, log_pi)
  np.testing.assert_array_equal(f_posterior, f - log_pi)
  # Without the switch log_pi is ignored; with it, it is required; the policy reward never has it.
  np.testing.assert_array_equal(
    plain.logits(params, batch.obs, batch.action, batch.next_obs, log_pi), f
  )
  with pytest.raises(ValueError, match='use_log_pi'):
    posterior.logits(params, batch.obs, batch.action, batch.next_obs)
  np.testing.assert_array_equal(
    posterior.reward(params, batch.obs, batch.action, batch.next_obs),
    plain.reward(params, batch.obs, batch.action, batch.next_obs),
  )
  # The BCE uses the posterior logit, with log π a constant (no gradient into it).
  policy = _batch(jax.random.key(3), shift=1.0)
  policy_log_pi = jax.random.normal(jax.random.key(4), (B,))
  _, aux = posterior.loss(params, batch, policy, jax.random.key(5), log_pi, policy_log_pi)
  f_policy = plain.logits(params, policy.obs, policy.action, policy.next_obs)
  bce = np.mean(np.logaddexp(0, -(_f64(f) - _f64(log_pi)))) + np.mean(
    np.logaddexp(0, _f64(f_policy) - _f64(policy_log_pi))
  )
  np.testing.assert_allclose(aux['bce'], bce, rtol=1e-5)
  grad_log_pi = jax.grad(
    lambda lp: posterior.loss(params, batch, policy, jax.random.key(5), lp, policy_log_pi)[0]
  )(log_pi)
  np.testing.assert_array_equal(grad_log_pi, np.zeros(B))


@pytest.mark.parametrize('reward_input', ['s', 'sa', 'ss'])
def test_reward_inputs_see_only_their_inputs(reward_input):
  disc = disc_lib.make_discriminator(OBS, ACT, dataclasses.replace(TINY, reward_input=reward_input))
  params = disc.init(jax.random.key(0)).params
  batch, other = _batch(jax.random.key(1)), _batch(jax.random.key(2))
  r = disc.reward(params, batch.obs, batch.action, batch.next_obs)
  new_action = disc.reward(params, batch.obs, other.action, batch.next_obs)
  new_next = disc.reward(params, batch.obs, batch.action, other.next_obs)
  new_obs = disc.reward(params, other.obs, batch.action, batch.next_obs)
  assert np.array_equal(r, new_action) == (reward_input != 'sa')
  assert np.array_equal(r, new_next) == (reward_input != 'ss')
  assert not np.array_equal(r, new_obs)
  # h sees states only, so the shaped f ignores the action unless r sees it.
  f = disc.logits(params, batch.obs, batch.action, batch.next_obs)
  f_new_action = disc.logits(params, batch.obs, other.action, batch.next_obs)
  assert np.array_equal(f, f_new_action) == (reward_input != 'sa')
  assert not np.array_equal(f, disc.logits(params, batch.obs, batch.action, other.next_obs))


def test_reward_clipping():
  batch = _batch(jax.random.key(0))
  params, _ = _linear_params(OBS + ACT)
  free = disc_lib.make_discriminator(OBS, ACT, LINEAR)
  clipped = disc_lib.make_discriminator(OBS, ACT, dataclasses.replace(LINEAR, reward_clip_max=0.0))
  r = free.reward(params, batch.obs, batch.action, batch.next_obs)
  assert np.any(r > 0) and np.any(r < 0)
  np.testing.assert_array_equal(
    clipped.reward(params, batch.obs, batch.action, batch.next_obs), np.minimum(r, 0.0)
  )
  # Clipping is of the policy's reward only, not of the logit the classifier is trained on.
  np.testing.assert_array_equal(
    clipped.logits(params, batch.obs, batch.action, batch.next_obs),
    free.logits(params, batch.obs, batch.action, batch.next_obs),
  )
  gail = disc_lib.make_discriminator(
    OBS,
    ACT,
    dataclasses.replace(LINEAR, kind='gail', reward_transform='neg_log_1m_d', reward_clip_max=0.5),
  )
  gail_params = params._replace(shaping=None)
  softplus = np.logaddexp(
    0, _f64(gail.logits(gail_params, batch.obs, batch.action, batch.next_obs))
  )
  np.testing.assert_allclose(
    gail.reward(gail_params, batch.obs, batch.action, batch.next_obs),
    np.minimum(softplus, 0.5),
    rtol=1e-6,
  )


def test_gail_logit_and_reward_transforms_by_hand():
  batch = _batch(jax.random.key(0), size=64)
  params, (w, b, _, _) = _linear_params(OBS + ACT, shaping=False)
  params = params._replace(reward=_linear(3 * w, b))  # logits over a wide range
  z = np.concatenate([_f64(batch.obs), _f64(batch.action)], -1) @ (3 * w) + b
  d = 1 / (1 + np.exp(-z))
  rewards = {}
  for transform, expected in (('logit', z), ('log_d', np.log(d)), ('neg_log_1m_d', -np.log1p(-d))):
    disc = disc_lib.make_discriminator(
      OBS, ACT, DiscriminatorConfig(kind='gail', reward_hidden=(), reward_transform=transform)
    )
    np.testing.assert_allclose(
      disc.logits(params, batch.obs, batch.action, batch.next_obs), z, rtol=1e-5, atol=1e-5
    )
    rewards[transform] = disc.reward(params, batch.obs, batch.action, batch.next_obs)
    np.testing.assert_allclose(rewards[transform], expected, rtol=1e-5, atol=1e-5)
  assert np.all(rewards['log_d'] < 0) and np.all(rewards['neg_log_1m_d'] > 0)
  # log D − log(1 − D) is the logit.
  np.testing.assert_allclose(
    rewards['log_d'] + rewards['neg_log_1m_d'], rewards['logit'], rtol=1e-5, atol=1e-5
  )


# ---------------------------------------------------------------------------------------------------
# The loss: BCE conventions and the gradient penalty


@pytest.mark.parametrize('kind,gp_target', [('airl', 1.0), ('airl', 0.5), ('gail', 1.0)])
def test_gradient_penalty_is_analytic_on_linear_networks(kind, gp_target):
  # D(x) = wᵀx + b has input gradient w everywhere, so the penalty is (‖w‖ − target)² at any
  # interpolation; for AIRL r and h are penalised separately.
  config = dataclasses.replace(LINEAR, kind=kind, gp_target=gp_target, gp_coeff=10.0)
  disc = disc_lib.make_discriminator(OBS, ACT, config)
  params, (w_r, _, w_h, _) = _linear_params(OBS + ACT, shaping=kind == 'airl')
  expert, policy = _batch(jax.random.key(0), 1.0), _batch(jax.random.key(1), -1.0)
  loss, aux = disc.loss(params, expert, policy, jax.random.key(2))
  gp_reward = (np.linalg.norm(w_r) - gp_target) ** 2
  gp_shaping = (np.linalg.norm(w_h) - gp_target) ** 2 if kind == 'airl' else 0.0
  np.testing.assert_allclose(aux['gp_reward'], gp_reward, rtol=1e-5)
  np.testing.assert_allclose(aux['gp_shaping'], gp_shaping, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(aux['gp'], gp_reward + gp_shaping, rtol=1e-5)
  # BCE with expert = 1, policy = 0: mean over each batch, the two means summed.
  z_expert = _f64(disc.logits(params, expert.obs, expert.action, expert.next_obs))
  z_policy = _f64(disc.logits(params, policy.obs, policy.action, policy.next_obs))
  bce = np.mean(np.logaddexp(0, -z_expert)) + np.mean(np.logaddexp(0, z_policy))
  np.testing.assert_allclose(aux['bce'], bce, rtol=1e-5)
  np.testing.assert_allclose(loss, bce + 10.0 * (gp_reward + gp_shaping), rtol=1e-5)
  np.testing.assert_allclose(aux['expert_accuracy'], np.mean(z_expert > 0))
  np.testing.assert_allclose(aux['policy_accuracy'], np.mean(z_policy < 0))


def test_gradient_penalty_at_zero_weights_has_finite_gradients():
  disc = disc_lib.make_discriminator(OBS, ACT, LINEAR)
  zero = DiscriminatorParams(
    reward=_linear(np.zeros(OBS + ACT), 0.0), shaping=_linear(np.zeros(OBS), 0.0)
  )
  expert, policy = _batch(jax.random.key(0), 1.0), _batch(jax.random.key(1), -1.0)
  (loss, aux), grads = jax.value_and_grad(disc.loss, has_aux=True)(
    zero, expert, policy, jax.random.key(2)
  )
  # ‖0‖ = 0: the penalty is target² per network, the logits are 0 so the BCE is 2 log 2.
  np.testing.assert_allclose(aux['gp'], 2.0, rtol=1e-6)
  np.testing.assert_allclose(aux['bce'], 2 * math.log(2), rtol=1e-6)
  np.testing.assert_allclose(loss, 2 * math.log(2) + 20.0, rtol=1e-6)
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))


def test_gradient_penalty_on_identical_data_is_the_per_sample_gradient_norm():
  # With x_E = x_π every interpolation is x itself, whatever u: the penalty is the mean over
  # samples of (‖∇r(x)‖ − 1)² + (‖∇h(s)‖ − 1)², computed here sample by sample.
  disc = disc_lib.make_discriminator(OBS, ACT, TINY)
  params = disc.init(jax.random.key(0)).params
  batch = _batch(jax.random.key(1))
  x = jnp.concatenate([batch.obs, batch.action], -1)
  grad_r = jax.vmap(jax.grad(lambda xi: disc.reward_net.apply(params.reward, xi)[0]))(x)
  grad_h = jax.vmap(jax.grad(lambda si: disc.shaping_net.apply(params.shaping, si)[0]))(batch.obs)
  gp_reward = np.mean((np.linalg.norm(_f64(grad_r), axis=-1) - 1) ** 2)
  gp_shaping = np.mean((np.linalg.norm(_f64(grad_h), axis=-1) - 1) ** 2)
  for key in (2, 3):
    _, aux = disc.loss(params, batch, batch, jax.random.key(key))
    np.testing.assert_allclose(aux['gp_reward'], gp_reward, rtol=1e-5)
    np.testing.assert_allclose(aux['gp_shaping'], gp_shaping, rtol=1e-5)


def test_loss_shapes_and_signs():
  disc = disc_lib.make_discriminator(OBS, ACT, LINEAR)
  expert, policy = _batch(jax.random.key(0), 1.0), _batch(jax.random.key(1), -1.0)
  # Zero weights and a positive net bias c = b_r + (γ_d − 1)·b_h: every logit is c, so every expert
  # sample is right and every policy sample wrong; the BCE is softplus(−c) + softplus(c).
  params = DiscriminatorParams(
    reward=_linear(np.zeros(OBS + ACT), 2.0), shaping=_linear(np.zeros(OBS), 1.0)
  )
  c = 2.0 + (0.9 - 1.0) * 1.0
  loss, aux = disc.loss(params, expert, policy, jax.random.key(2))
  assert loss.shape == () and all(v.shape == () for v in aux.values())
  assert disc.logits(params, expert.obs, expert.action, expert.next_obs).shape == (B,)
  assert disc.reward(params, expert.obs, expert.action, expert.next_obs).shape == (B,)
  np.testing.assert_allclose(aux['bce'], np.logaddexp(0, -c) + np.logaddexp(0, c), rtol=1e-6)
  assert float(aux['expert_accuracy']) == 1.0 and float(aux['policy_accuracy']) == 0.0
  np.testing.assert_allclose([aux['expert_reward'], aux['reward']], [2.0, 2.0])
  # Raising the expert logits (or lowering the policy ones) lowers the BCE.
  flipped = params._replace(reward=_linear(np.zeros(OBS + ACT), -2.0))
  _, aux_flipped = disc.loss(flipped, expert, policy, jax.random.key(2))
  assert (
    float(aux_flipped['policy_accuracy']) == 1.0 and float(aux_flipped['expert_accuracy']) == 0.0
  )
  tilted = params._replace(
    reward=_linear(np.full(OBS + ACT, 0.5), 0.0)
  )  # expert at +1, policy at −1
  _, aux_tilted = disc.loss(tilted, expert, policy, jax.random.key(2))
  assert float(aux_tilted['bce']) < float(aux['bce'])


# ---------------------------------------------------------------------------------------------------
# Learning, tracing, vmap


def _train(disc, state, expert, policy, key, steps):
  def body(state, step_key):
    return disc.update(state, expert, policy, step_key)

  return jax.jit(lambda s, k: jax.lax.scan(body, s, jax.random.split(k, steps)))(state, key)


@pytest.mark.parametrize('kind', ['airl', 'gail'])
def test_loss_falls_on_separable_data(kind):
  disc = disc_lib.make_discriminator(
    OBS, ACT, dataclasses.replace(TINY, kind=kind, learning_rate=1e-2)
  )
  expert = _batch(jax.random.key(0), 1.0)._replace(obs=1.0 + 0.1 * _batch(jax.random.key(0)).obs)
  policy = _batch(jax.random.key(1), -1.0)._replace(obs=-1.0 + 0.1 * _batch(jax.random.key(1)).obs)
  state = disc.init(jax.random.key(2))
  state, metrics = _train(disc, state, expert, policy, jax.random.key(3), 300)
  assert int(state.step) == 300
  bce = np.asarray(metrics['bce'])
  assert bce[-1] < 0.5 * bce[0] and bce[-1] < 0.6
  assert (
    float(metrics['expert_accuracy'][-1]) == 1.0 and float(metrics['policy_accuracy'][-1]) == 1.0
  )
  # The expert now earns more reward than the policy.
  assert float(metrics['expert_reward'][-1]) > float(metrics['reward'][-1])


@pytest.mark.parametrize('gp_coeff,tolerance', [(10.0, 0.05), (0.0, 1e-4)])
def test_identical_data_stays_at_chance(gp_coeff, tolerance):
  disc = disc_lib.make_discriminator(
    OBS, ACT, dataclasses.replace(TINY, learning_rate=1e-2, gp_coeff=gp_coeff)
  )
  batch = _batch(jax.random.key(0))
  state, metrics = _train(disc, disc.init(jax.random.key(1)), batch, batch, jax.random.key(2), 200)
  # Every sample counts once as expert and once as policy: the two accuracies sum to 1 (mean
  # accuracy 0.5), less where a logit is exactly 0 (counted as neither), and
  # softplus(−z) + softplus(z) >= 2 log 2 with equality at z = 0, where training drives the logits.
  # The penalty wants slope 1, so with it the logits settle near, not at, 0.
  accuracy = np.asarray(metrics['expert_accuracy']) + np.asarray(metrics['policy_accuracy'])
  assert np.all(accuracy <= 1.0) and accuracy[0] == 1.0 and np.mean(accuracy) > 0.9
  bce = np.asarray(metrics['bce'])
  assert np.all(bce >= 2 * math.log(2) - 1e-6)
  assert bce[-1] < 2 * math.log(2) + tolerance and bce[-1] < bce[0]


def test_update_traces_once_and_steps_both_networks():
  disc = disc_lib.make_discriminator(OBS, ACT, TINY)
  traces = []

  def counted(*args):
    traces.append(1)
    return disc.update(*args)

  update = jax.jit(counted)
  state = start = disc.init(jax.random.key(0))
  for i in range(3):
    state, metrics = update(
      state,
      _batch(jax.random.key(10 + i), 1.0),
      _batch(jax.random.key(20 + i), -1.0),
      jax.random.key(i),
    )
  assert len(traces) == 1 and int(state.step) == 3
  assert _trees_differ(state.params.reward, start.params.reward)
  assert _trees_differ(state.params.shaping, start.params.shaping)
  assert np.isfinite(float(metrics['loss']))


def test_update_with_log_pi_and_reward_fn():
  disc = disc_lib.make_discriminator(OBS, ACT, dataclasses.replace(TINY, use_log_pi=True))
  state = disc.init(jax.random.key(0))
  expert, policy = _batch(jax.random.key(1), 1.0), _batch(jax.random.key(2), -1.0)
  with pytest.raises(ValueError, match='use_log_pi'):
    disc.update(state, expert, policy, jax.random.key(3))
  state, metrics = jax.jit(disc.update)(
    state, expert, policy, jax.random.key(3), jnp.zeros(B), jnp.ones(B)
  )
  assert int(state.step) == 1 and np.isfinite(float(metrics['loss']))
  reward_fn = disc.reward_fn(state)
  np.testing.assert_array_equal(
    reward_fn(policy.obs, policy.action, policy.next_obs),
    disc.reward(state.params, policy.obs, policy.action, policy.next_obs),
  )


@pytest.mark.parametrize('kind', ['airl', 'gail'])
def test_vmap_over_seeds_equals_a_loop(kind):
  disc = disc_lib.make_discriminator(
    OBS, ACT, dataclasses.replace(TINY, kind=kind, learning_rate=1e-3)
  )
  seeds = 3
  states = jax.vmap(disc.init)(jax.random.split(jax.random.key(0), seeds))
  expert = _batch(jax.random.key(1), 1.0)  # shared across seeds
  policies = jax.vmap(lambda k: _batch(k, -1.0))(jax.random.split(jax.random.key(2), seeds))
  keys = jax.random.split(jax.random.key(3), seeds)
  update = jax.jit(disc.update)
  batched, batched_metrics = jax.jit(jax.vmap(disc.update, in_axes=(0, None, 0, 0)))(
    states, expert, policies, keys
  )
  for i in range(seeds):
    pick = lambda tree: jax.tree.map(lambda x: x[i], tree)
    single, single_metrics = update(pick(states), expert, pick(policies), keys[i])
    _assert_trees_close(pick(batched), single, rtol=1e-5, atol=1e-6)
    _assert_trees_close(pick(batched_metrics), single_metrics, rtol=1e-5, atol=1e-6)


def test_true_terminations_drop_the_next_potential_in_logits_loss_and_shaped_reward():
  """AIRL without absorbing states: f = r + γ_d (1 − d) h(s') − h(s), so a terminal transition's
  logit and shaped reward do not depend on h(s_T) (policy-invariant shaping on terminating envs)."""
  config = dataclasses.replace(LINEAR, gamma_d=0.7, policy_reward='f')
  disc = disc_lib.make_discriminator(OBS, ACT, config)
  batch = _batch(jax.random.key(0))
  done = jnp.arange(B) % 2 == 0
  s, a, s_next = _f64(batch.obs), _f64(batch.action), _f64(batch.next_obs)
  params, (w_r, b_r, w_h, b_h) = _linear_params(OBS + ACT)
  f = (
    np.concatenate([s, a], -1) @ w_r
    + b_r
    + 0.7 * np.where(np.asarray(done), 0.0, s_next @ w_h + b_h)
    - (s @ w_h + b_h)
  )
  args = (batch.obs, batch.action, batch.next_obs)
  np.testing.assert_allclose(disc.logits(params, *args, terminated=done), f, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(disc.reward(params, *args, terminated=done), f, rtol=1e-5, atol=1e-5)
  # The loss reads each batch's `terminated`: moving s' of the terminal rows changes nothing there.
  moved = batch._replace(
    terminated=done, next_obs=jnp.where(done[:, None], batch.next_obs + 100.0, batch.next_obs)
  )
  loss_a, aux_a = disc.loss(params, batch._replace(terminated=done), batch, jax.random.key(1))
  loss_b, aux_b = disc.loss(params, moved, batch, jax.random.key(1))
  np.testing.assert_allclose(aux_a['bce'], aux_b['bce'], rtol=1e-6)
  # Without the mask it would have moved (the check above can fail).
  _, aux_c = disc.loss(
    params, moved._replace(terminated=jnp.zeros(B, bool)), batch, jax.random.key(1)
  )
  assert abs(float(aux_c['bce']) - float(aux_a['bce'])) > 1e-3


@pytest.mark.parametrize('kind', ['airl', 'gail'])
def test_goal_relative_features_see_only_position_minus_goal(kind):
  """With goal_relative=(0, 2, 2), moving the position and the goal together changes nothing; moving
  the goal alone does, as does any other observation entry; the networks are sized for obs_dim - 2."""
  config = dataclasses.replace(
    TINY,
    kind=kind,
    goal_relative=(0, 2, 2),
    reward_transform='logit',
    use_log_pi=False,
    policy_reward='r',
  )
  obs_dim = 5
  disc = disc_lib.make_discriminator(obs_dim, ACT, config)
  params = disc.init(jax.random.key(0)).params
  batch = _batch(jax.random.key(1), obs_dim=obs_dim)
  shift = jax.random.normal(jax.random.key(2), (B, 2))
  moved = jnp.concatenate([shift, shift, jnp.zeros((B, 1))], axis=-1)
  goal_only = jnp.concatenate([jnp.zeros((B, 2)), shift, jnp.zeros((B, 1))], axis=-1)
  other = jnp.zeros((B, obs_dim)).at[:, 4].set(1.0)
  logits = disc.logits(params, batch.obs, batch.action, batch.next_obs)
  np.testing.assert_allclose(
    disc.logits(params, batch.obs + moved, batch.action, batch.next_obs + moved),
    logits,
    rtol=1e-5,
    atol=1e-5,
  )
  for change in (goal_only, other):
    assert not np.allclose(
      disc.logits(params, batch.obs + change, batch.action, batch.next_obs + change),
      logits,
      atol=1e-3,
    )
  # r sees (p - g, the last entry, the action): 3 + ACT inputs.
  assert {leaf.shape[0] for leaf in jax.tree.leaves(params.reward) if leaf.ndim == 2} >= {3 + ACT}
  loss, _ = disc.loss(params, batch, _batch(jax.random.key(3), obs_dim=obs_dim), jax.random.key(4))
  assert np.isfinite(loss)
