"""OPIRL's AlgaeDICE learner: f and its weights by hand, the backup and the critic loss (value and
gradient) by hand on linear critics, the actor surrogate's gradient against autodiff of the true
objective, the Q-filter and BC term by hand, update periods and Polyak averaging, exploration noise,
the learned-reward override, tracing, seeds under vmap, and a probe environment that is learned."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs import pendulum, probes
from envs.core import BoxSpec, EnvSpec
from irl import algaedice as ad
from irl import loops, networks
from irl.networks import ActorNetwork, CriticNetwork
from irl.replay import Transition

SPEC = probes.ActionReward(2).spec  # obs [2], actions in [-1, 1]^2
TINY = ad.AlgaeDICEConfig(hidden_sizes=(8, 8), batch_size=8)
B = 8


def _batch(key, obs_dim=2, action_dim=2, terminated=None):
  obs_key, action_key, reward_key, next_key = jax.random.split(key, 4)
  return Transition(
    obs=jax.random.normal(obs_key, (B, obs_dim)),
    action=jax.random.uniform(action_key, (B, action_dim), minval=-1.0, maxval=1.0),
    reward=jax.random.normal(reward_key, (B,)),
    next_obs=jax.random.normal(next_key, (B, obs_dim)),
    terminated=jnp.zeros(B, bool) if terminated is None else terminated,
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


# Hand-set networks on 1-D states and actions: Q_i(s, a) = c_i s + d_i a + e_i, and an actor with
# mean k s and log σ = −30, so that a sample is tanh(k s) to float32 precision.
LINEAR_CRITIC = CriticNetwork(
  init=None,
  num_critics=2,
  apply=lambda p, obs, action: (
    p['c'][:, None] * obs[..., 0] + p['d'][:, None] * action[..., 0] + p['e'][:, None]
  ),
)
NEAR_DETERMINISTIC_ACTOR = ActorNetwork(
  init=None, apply=lambda p, obs: (p['k'] * obs, jnp.full_like(obs, -30.0))
)


def _linear(c, d, e):
  return {'c': jnp.array(c), 'd': jnp.array(d), 'e': jnp.array(e)}


# ---------------------------------------------------------------------------------------------------
# f, f′ and the one-sided weight


def test_f_and_its_weights_by_hand():
  x = jnp.array([-4.0, -1.0, 0.0, 0.25, 4.0])
  # p = 1.5: |x|^1.5 / 1.5 and sign(x)|x|^0.5.
  np.testing.assert_allclose(ad.f(x, 1.5), [8 / 1.5, 1 / 1.5, 0.0, 0.125 / 1.5, 8 / 1.5], rtol=1e-6)
  np.testing.assert_allclose(ad.f_prime(x, 1.5), [-2.0, -1.0, 0.0, 0.5, 2.0], rtol=1e-6)
  # The official weight is zero for negative residuals: the derivative of max(x, 0)^p / p.
  np.testing.assert_allclose(ad.f_prime_positive(x, 1.5), [0.0, 0.0, 0.0, 0.5, 2.0], rtol=1e-6)
  # p = 2: f = x²/2, f′ = x.
  np.testing.assert_allclose(ad.f(x, 2.0), x**2 / 2, rtol=1e-6)
  np.testing.assert_allclose(ad.f_prime(x, 2.0), x, rtol=1e-6)
  # f′ is f's derivative, and f_prime_positive that of f₊, away from 0.
  points = jnp.array([-3.0, -0.7, 0.4, 2.5])
  np.testing.assert_allclose(
    jax.vmap(jax.grad(lambda y: ad.f(y, 1.5)))(points), ad.f_prime(points, 1.5), rtol=1e-6
  )
  f_plus = lambda y: jnp.maximum(y, 0.0) ** 1.5 / 1.5
  np.testing.assert_allclose(
    jax.vmap(jax.grad(f_plus))(points), ad.f_prime_positive(points, 1.5), rtol=1e-6
  )
  assert ad.residual_weight_fn('exact') is ad.f_prime
  with pytest.raises(ValueError, match='residual_weight must be one of'):
    ad.residual_weight_fn('two-sided')


def test_target_mixing_and_backup_by_hand():
  online = jnp.array([[1.0, -2.0, 4.0], [3.0, 0.0, -1.0]])
  target = jnp.array([[2.0, 5.0, 0.0], [1.0, 6.0, 2.0]])
  mixed = ad.mixed_next_q(online, target, 0.05)
  # M_i = 0.05 Q_i + 0.95 min_j Q̄_j, min_j Q̄_j = [1, 5, 0].
  np.testing.assert_allclose(
    mixed, [[0.05 + 0.95, -0.1 + 4.75, 0.2], [0.15 + 0.95, 4.75, -0.05]], rtol=1e-6
  )
  np.testing.assert_allclose(ad.mixed_next_q(online, target, 1.0), online)
  backup = ad.algae_backup(
    jnp.array([1.0, 2.0, 3.0]),
    jnp.array([False, True, False]),
    mixed,
    jnp.array([0.5, -1.0, 2.0]),
    jnp.float32(0.2),
    0.9,
  )
  # y_i = r + γ (1 − d)(M_i − α log π); the terminated column is r alone.
  expected = [
    [1 + 0.9 * (1.0 - 0.1), 2.0, 3 + 0.9 * (0.2 - 0.4)],
    [1 + 0.9 * (1.1 - 0.1), 2.0, 3 + 0.9 * (-0.05 - 0.4)],
  ]
  np.testing.assert_allclose(backup, expected, rtol=1e-6)


# ---------------------------------------------------------------------------------------------------
# The critic loss


def test_critic_loss_and_its_gradient_by_hand_on_linear_critics():
  s = np.array([0.5, -1.0, 2.0, 0.3], np.float32)
  a = np.array([0.2, -0.4, 0.9, 0.0], np.float32)
  r = np.array([1.0, -2.0, 0.5, 3.0], np.float32)
  s_next = np.array([1.0, 0.2, -0.7, 0.4], np.float32)
  done = np.array([0.0, 0.0, 1.0, 0.0], np.float32)
  online = dict(c=[1.0, -0.5], d=[2.0, 1.0], e=[0.1, -0.2])
  target = dict(c=[0.8, -0.3], d=[1.5, 0.7], e=[0.0, 0.3])
  gamma, p, algae_alpha, w, k = 0.9, 1.5, 0.1, 0.05, 0.7
  loss, aux = ad.critic_loss(
    _linear(**online),
    _linear(**target),
    {'k': jnp.float32(k)},
    jnp.float32(0.0),
    ad.AlgaeBatch(s[:, None], a[:, None], r, s_next[:, None], done.astype(bool), s[:, None]),
    jax.random.key(0),
    actor=NEAR_DETERMINISTIC_ACTOR,
    critic=LINEAR_CRITIC,
    discount=gamma,
    f_exponent=p,
    algae_alpha=algae_alpha,
    target_mix=w,
  )

  q = lambda prm, i, obs, act: prm['c'][i] * obs + prm['d'][i] * act + prm['e'][i]
  a_next, a0 = np.tanh(k * s_next), np.tanh(k * s)
  min_target = np.minimum(q(target, 0, s_next, a_next), q(target, 1, s_next, a_next))
  expected_loss, grads = 0.0, {'c': [], 'd': [], 'e': []}
  for i in range(2):
    mixed = w * q(online, i, s_next, a_next) + (1 - w) * min_target
    residual = r + gamma * (1 - done) * mixed - q(online, i, s, a)
    np.testing.assert_allclose(aux['residual'][i], residual, rtol=1e-5, atol=1e-6)
    expected_loss += np.mean(np.abs(residual) ** p / p) + algae_alpha * (1 - gamma) * np.mean(
      q(online, i, s, a0)
    )
    # The online share w Q_i(s', a') of the backup carries gradient; the target's min does not.
    weight = np.sign(residual) * np.abs(residual) ** (p - 1)
    bootstrap = gamma * (1 - done) * w
    init_term = algae_alpha * (1 - gamma)
    grads['c'].append(np.mean(weight * (bootstrap * s_next - s)) + init_term * np.mean(s))
    grads['d'].append(np.mean(weight * (bootstrap * a_next - a)) + init_term * np.mean(a0))
    grads['e'].append(np.mean(weight * (bootstrap - 1)) + init_term)
  np.testing.assert_allclose(loss, expected_loss, rtol=1e-5)

  autodiff = jax.grad(
    lambda prm: ad.critic_loss(
      prm,
      _linear(**target),
      {'k': jnp.float32(k)},
      jnp.float32(0.0),
      ad.AlgaeBatch(s[:, None], a[:, None], r, s_next[:, None], done.astype(bool), s[:, None]),
      jax.random.key(0),
      actor=NEAR_DETERMINISTIC_ACTOR,
      critic=LINEAR_CRITIC,
      discount=gamma,
      f_exponent=p,
      algae_alpha=algae_alpha,
      target_mix=w,
    )[0]
  )(_linear(**online))
  for name in ('c', 'd', 'e'):
    np.testing.assert_allclose(autodiff[name], grads[name], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------------
# The actor


@pytest.mark.parametrize(
  'residual_weight,antiderivative',
  [
    ('exact', lambda x: ad.f(x, 1.5)),
    ('positive', lambda x: jnp.maximum(x, 0.0) ** 1.5 / 1.5),
  ],
)
def test_actor_surrogate_gradient_is_the_true_objective_gradient(residual_weight, antiderivative):
  algae = ad.make_algaedice(SPEC, TINY)
  state = algae.init(jax.random.key(0))
  target_params = algae.critic.init(jax.random.key(5))  # distinct from the online critics
  reward = 3.0 * jax.random.normal(jax.random.key(6), (B,))
  batch = _batch(jax.random.key(1))._replace(reward=reward)
  alpha, key, gamma, algae_alpha, w = jnp.float32(0.3), jax.random.key(2), 0.99, 0.5, 0.05
  args = (
    state.critic_params,
    target_params,
    alpha,
    ad.AlgaeBatch(
      batch.obs, batch.action, batch.reward, batch.next_obs, batch.terminated, batch.obs
    ),
    key,
  )
  kwargs = dict(
    actor=algae.actor,
    critic=algae.critic,
    discount=gamma,
    f_exponent=1.5,
    algae_alpha=algae_alpha,
    target_mix=w,
  )

  def true_objective(actor_params):
    # −(1/N) Σ_i E[G(δ_i) + α_algae (1 − γ) Q_i(s0, a0)] with the same samples as the surrogate.
    next_key, init_key = jax.random.split(key)
    a_next, log_prob = networks.sample_tanh_gaussian(
      next_key, *algae.actor.apply(actor_params, batch.next_obs)
    )
    a0, _ = networks.sample_tanh_gaussian(init_key, *algae.actor.apply(actor_params, batch.obs))
    mixed = ad.mixed_next_q(
      algae.critic.apply(state.critic_params, batch.next_obs, a_next),
      algae.critic.apply(target_params, batch.next_obs, a_next),
      w,
    )
    residual = ad.algae_backup(
      batch.reward, batch.terminated, mixed, log_prob, alpha, gamma
    ) - algae.critic.apply(state.critic_params, batch.obs, batch.action)
    init_q = algae.critic.apply(state.critic_params, batch.obs, a0)
    return -jnp.mean(
      jnp.mean(antiderivative(residual), axis=-1)
      + algae_alpha * (1 - gamma) * jnp.mean(init_q, axis=-1)
    ), residual

  (_, residual), true_grad = jax.value_and_grad(true_objective, has_aux=True)(state.actor_params)
  assert np.any(residual < 0) and np.any(residual > 0)  # both branches of the weight are exercised
  surrogate_grad = jax.grad(
    lambda prm: ad.algae_actor_loss(prm, *args, residual_weight=residual_weight, **kwargs)[0]
  )(state.actor_params)
  for x, y in zip(jax.tree.leaves(surrogate_grad), jax.tree.leaves(true_grad)):
    np.testing.assert_allclose(x, y, rtol=2e-4, atol=1e-6)
  assert max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(true_grad)) > 1e-3
  # The two weights give different gradients on this batch.
  other = 'positive' if residual_weight == 'exact' else 'exact'
  other_grad = jax.grad(
    lambda prm: ad.algae_actor_loss(prm, *args, residual_weight=other, **kwargs)[0]
  )(state.actor_params)
  assert _trees_differ(other_grad, surrogate_grad)


def test_q_filter_mask_by_hand():
  data_q = jnp.array([[1.0, 2.0, 3.0, 0.0], [3.0, -4.0, 3.0, 5.0]])
  policy_q = jnp.array([[2.0, 1.0, 3.0, 1.0], [1.0, 0.0, 3.0, 1.0]])
  # Means: data [2, −1, 3, 2.5] vs policy [1.5, 0.5, 3, 1]; minima: data [1, −4, 3, 0] vs
  # [1, 0, 3, 1]. Ties do not pass.
  mask = lambda data, kind: np.asarray(ad.q_filter_mask(data, policy_q, kind)).tolist()
  assert mask(data_q, 'mean') == [True, False, False, True]
  assert mask(data_q, 'min') == [False, False, False, False]
  assert mask(data_q + 2.0, 'min') == [True, False, True, True]
  with pytest.raises(ValueError, match='q_filter must be one of'):
    ad.q_filter_mask(data_q, policy_q, 'max')


def test_bc_loss_by_hand_pulls_only_filtered_rows():
  s = np.array([1.0, -1.0, 0.5, 2.0], np.float32)
  a = np.array([0.9, -0.2, 0.0, 0.3], np.float32)
  k = 0.4
  # Q_1 = Q_2 = 2 a − s: the filter passes where the replay action beats tanh(k s): a > tanh(k s).
  critic_params = _linear([-1.0, -1.0], [2.0, 2.0], [0.0, 0.0])
  loss_fn = lambda kk: ad.bc_loss(
    {'k': kk},
    critic_params,
    s[:, None],
    a[:, None],
    jax.random.key(0),
    actor=NEAR_DETERMINISTIC_ACTOR,
    critic=LINEAR_CRITIC,
  )
  (loss, aux), grad = jax.value_and_grad(loss_fn, has_aux=True)(jnp.float32(k))
  policy_action = np.tanh(k * s)
  mask = a > policy_action
  np.testing.assert_array_equal(aux['mask'], mask)
  assert 0 < mask.sum() < len(mask)
  np.testing.assert_allclose(
    loss, np.mean(np.where(mask, (policy_action - a) ** 2, 0.0)), rtol=1e-5
  )
  # d/dk: only the filtered rows, through ã = tanh(k s).
  expected = np.mean(np.where(mask, 2 * (policy_action - a) * (1 - policy_action**2) * s, 0.0))
  np.testing.assert_allclose(grad, expected, rtol=1e-5)


# ---------------------------------------------------------------------------------------------------
# The update


def test_periods_polyak_average_and_actor_loss_composition():
  config = dataclasses.replace(TINY, tau=0.1, actor_lr=1e-3)
  algae = ad.make_algaedice(SPEC, config)
  update = jax.jit(algae.update)
  s0 = algae.init(jax.random.key(0))
  batch = _batch(jax.random.key(1))
  s1, m1 = update(s0, batch, jax.random.key(2))
  s2, m2 = update(s1, batch, jax.random.key(3))
  s3, m3 = update(s2, batch, jax.random.key(4))
  assert [int(s.step) for s in (s1, s2, s3)] == [1, 2, 3]
  # Updates 1 and 3: only the critics move (the official count reaches 2, 4, ... on actor updates).
  for before, after, metrics in ((s0, s1, m1), (s2, s3, m3)):
    assert _trees_differ(before.critic_params, after.critic_params)
    _assert_trees_equal(before.actor_params, after.actor_params)
    _assert_trees_equal(before.target_critic_params, after.target_critic_params)
    assert float(before.log_alpha) == float(after.log_alpha)
    assert np.isnan(float(metrics['actor_loss'])) and np.isnan(float(metrics['bc_loss']))
    assert np.isfinite(float(metrics['critic_loss']))
  # Update 2: actor, temperature and targets move; θ̄₂ = τθ₂ + (1 − τ)θ̄₁ with the new critics θ₂.
  assert _trees_differ(s1.actor_params, s2.actor_params)
  assert float(s2.log_alpha) != float(s1.log_alpha)
  expected = jax.tree.map(lambda c, t: 0.1 * c + 0.9 * t, s2.critic_params, s1.target_critic_params)
  for x, y in zip(jax.tree.leaves(s2.target_critic_params), jax.tree.leaves(expected)):
    np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
  # L_π = c_actor J_π + c_bc BC, c_bc = 1/batch_size.
  assert algae.bc_coeff == 1 / 8
  np.testing.assert_allclose(
    m2['actor_loss'], 1e-3 * m2['algae_actor_loss'] + m2['bc_loss'] / 8, rtol=1e-5
  )
  assert 0.0 <= float(m2['bc_filter']) <= 1.0
  # Without BC the loss is J_π unscaled (as in the official code).
  plain = ad.make_algaedice(SPEC, dataclasses.replace(config, use_bc_reg=False))
  _, m = jax.jit(plain.update)(s1, batch, jax.random.key(3))
  np.testing.assert_allclose(m['actor_loss'], m['algae_actor_loss'], rtol=1e-6)
  assert 'bc_loss' not in m


def test_temperature_moves_towards_the_target_entropy():
  batch = _batch(jax.random.key(1))
  for target_entropy, direction in ((50.0, 1), (-50.0, -1)):
    algae = ad.make_algaedice(
      SPEC, dataclasses.replace(TINY, target_entropy=target_entropy, actor_update_period=1)
    )
    state = algae.init(jax.random.key(0))
    new_state, _ = algae.update(state, batch, jax.random.key(2))
    assert np.sign(float(new_state.log_alpha - state.log_alpha)) == direction
    # Keras' default Adam learning rate, 1e-3, as in the official code: the first step is ±lr.
    np.testing.assert_allclose(abs(float(new_state.log_alpha - state.log_alpha)), 1e-3, rtol=1e-3)


def test_reward_fn_and_truncation():
  algae = ad.make_algaedice(SPEC, TINY)
  update = jax.jit(algae.update, static_argnames='reward_fn')
  state = algae.init(jax.random.key(0))
  batch, key = _batch(jax.random.key(1)), jax.random.key(2)
  learned = lambda obs, action, next_obs: -jnp.sum(action**2, axis=-1) + next_obs[:, 0] - obs[:, 1]
  expected_reward = -jnp.sum(batch.action**2, axis=-1) + batch.next_obs[:, 0] - batch.obs[:, 1]
  with_fn, _ = update(state, batch, key, reward_fn=learned)
  with_batch, _ = update(state, batch._replace(reward=expected_reward), key)
  _assert_trees_equal(with_fn, with_batch)
  with pytest.raises(ValueError, match='reward_fn must return rewards of shape'):
    algae.update(state, batch, key, reward_fn=lambda o, a, n: jnp.zeros((B, 1)))
  # `truncated` does not change the update; `terminated` does.
  truncated, _ = update(state, batch._replace(truncated=jnp.ones(B, bool)), key)
  terminated, _ = update(state, batch._replace(terminated=jnp.ones(B, bool)), key)
  plain, _ = update(state, batch, key)
  _assert_trees_equal(plain, truncated)
  assert _trees_differ(plain.critic_params, terminated.critic_params)


def test_update_traces_once():
  algae = ad.make_algaedice(SPEC, TINY)
  traces = []

  def counted(state, batch, key):
    traces.append(1)
    return algae.update(state, batch, key)

  update = jax.jit(counted)
  state = algae.init(jax.random.key(0))
  for i in range(4):
    state, metrics = update(state, _batch(jax.random.key(10 + i)), jax.random.key(i))
  assert len(traces) == 1 and int(state.step) == 4
  assert all(np.isfinite(float(v)) for v in metrics.values())


def test_vmap_over_seeds_equals_a_loop():
  algae = ad.make_algaedice(SPEC, TINY)

  def run(key):
    init_key, key = jax.random.split(key)

    def body(state, step_key):
      batch_key, update_key = jax.random.split(step_key)
      return algae.update(state, _batch(batch_key), update_key)

    return jax.lax.scan(body, algae.init(init_key), jax.random.split(key, 4))

  keys = jax.random.split(jax.random.key(7), 2)
  batched_state, batched_metrics = jax.jit(jax.vmap(run))(keys)
  single = jax.jit(run)
  for i in range(2):
    state, metrics = single(keys[i])
    batched = jax.tree.map(lambda v: v[i], (batched_state, batched_metrics))
    for x, y in zip(jax.tree.leaves((state, metrics)), jax.tree.leaves(batched)):
      np.testing.assert_allclose(x, y, rtol=2e-5, atol=1e-6)
  assert _trees_differ(
    jax.tree.map(lambda v: v[0], batched_state.actor_params),
    jax.tree.map(lambda v: v[1], batched_state.actor_params),
  )


# ---------------------------------------------------------------------------------------------------
# Networks and acting


def test_defaults_are_opirls_and_init_is_seeded():
  config = ad.AlgaeDICEConfig()
  assert (config.actor_lr, config.critic_lr, config.temperature_lr) == (1e-5, 1e-3, 1e-3)
  assert (config.f_exponent, config.algae_alpha, config.target_mix) == (1.5, 0.01, 0.05)
  assert (config.actor_loss_scale, config.actor_update_period) == (1e-3, 2)
  assert (config.exploration_noise, config.log_std_min, config.log_std_max) == (0.1, -5.0, 2.0)
  algae = ad.make_algaedice(SPEC, dataclasses.replace(config, hidden_sizes=(8, 8)))
  assert algae.bc_coeff == 1 / 256 and algae.target_entropy == -2.0
  a, b, a_again = (algae.init(jax.random.key(s)) for s in (0, 1, 0))
  _assert_trees_equal(a, a_again)
  assert _trees_differ(a.actor_params, b.actor_params)
  assert _trees_differ(a.critic_params, b.critic_params)
  _assert_trees_equal(a.critic_params, a.target_critic_params)
  np.testing.assert_allclose(jnp.exp(a.log_alpha), 1.0)
  # Orthogonal kernels (columns orthonormal for a tall kernel) and tanh-squashed log-std in [−5, 2].
  kernel = np.asarray(a.actor_params['hidden'][1]['kernel'])
  np.testing.assert_allclose(kernel.T @ kernel, np.eye(8), atol=1e-5)
  far = 1e3 * jax.random.normal(jax.random.key(3), (64, 2))
  _, log_std = algae.actor.apply(a.actor_params, far)
  assert np.all(log_std >= -5.0) and np.all(log_std <= 2.0)
  assert np.any(log_std < -4.9) and np.any(log_std > 1.9)


def test_exploration_is_the_mode_plus_clipped_gaussian_noise():
  spec = pendulum.Pendulum().spec  # actions in [-2, 2]: unit-box noise 0.1 is 0.2 here
  algae = ad.make_algaedice(spec, dataclasses.replace(TINY, exploration_noise=0.1))
  params = algae.init(jax.random.key(0)).actor_params
  obs = 50.0 * jax.random.normal(jax.random.key(1), (32, 3))
  mean, _ = algae.actor.apply(params, obs)
  greedy = algae.act(params, obs, jax.random.key(2), deterministic=True)
  np.testing.assert_allclose(greedy, 2.0 * jnp.tanh(mean), rtol=1e-6)

  def with_mode(unit_mode):  # the head outputs a constant mean atanh(mode) and log-std 0
    head = {
      'kernel': jnp.zeros_like(params['head']['kernel']),
      'bias': jnp.array([np.arctanh(unit_mode), 0.0], jnp.float32),
    }
    return {**params, 'head': head}

  n = 20_000
  obs = jnp.zeros((n, 3))
  explored = np.asarray(algae.act(with_mode(0.5), obs, jax.random.key(3)))[:, 0]
  noise = explored - 1.0  # the mode 0.5 is 1.0 in [-2, 2]
  assert abs(noise.mean()) < 4 * 0.2 / np.sqrt(n)
  np.testing.assert_allclose(noise.std(), 0.2, rtol=0.03)
  # Near the bound the noise is clipped: mode 0.99 (1.98) is pushed to 2.0 with P(z > 0.1) = 0.46.
  explored = np.asarray(algae.act(with_mode(0.99), obs, jax.random.key(4)))[:, 0]
  assert explored.max() == 2.0 and explored.min() >= -2.0
  np.testing.assert_allclose(np.mean(explored == 2.0), 0.4602, atol=0.015)
  # With σ = 0 exploration is the mode.
  silent = ad.make_algaedice(spec, dataclasses.replace(TINY, exploration_noise=0.0))
  np.testing.assert_allclose(
    silent.act(params, obs[:4], jax.random.key(5)),
    silent.act(params, obs[:4], None, True),
    rtol=1e-6,
  )


def test_config_errors_name_the_field():
  for field, value in (
    ('tau', 0.0),
    ('discount', 1.5),
    ('batch_size', 0),
    ('actor_update_period', 0),
    ('f_exponent', 1.0),
    ('target_mix', 1.5),
    ('exploration_noise', -0.1),
    ('bc_coeff', -1.0),
    ('residual_weight', 'two-sided'),
    ('q_filter', 'max'),
    ('log_std_squash', 'sigmoid'),
    ('temperature_lr', 0.0),
  ):
    with pytest.raises(ValueError, match=f'AlgaeDICEConfig.{field}'):
      ad.make_algaedice(SPEC, ad.AlgaeDICEConfig(**{field: value}))
  image_spec = EnvSpec('image', BoxSpec((4, 4), -1.0, 1.0), SPEC.action, 10)
  with pytest.raises(ValueError, match='flat observations'):
    ad.make_algaedice(image_spec, TINY)


# ---------------------------------------------------------------------------------------------------
# Learning


def test_action_reward_probe_is_learned():
  # OPIRL's recipe (BC on, actor loss scaled by 1e-3, one-sided weight, mode + noise exploration)
  # with small networks and an actor learning rate of 1e-3 (1e-5 is far too slow for 2k steps).
  # One-step episodes: the backup is r alone and the actor learns from the Q-filtered BC and the
  # initial-state term. Return −E‖a − x/2‖²: 0 is optimal, the zero action scores −1/12. Measured
  # (seed 0, 3k steps): −0.009 after 500 steps, about −1e-4 at the end.
  env = probes.ActionReward(1)
  config = ad.AlgaeDICEConfig(hidden_sizes=(32, 32), batch_size=64, actor_lr=1e-3)
  agent = ad.as_agent(ad.make_algaedice(env.spec, config))
  loop_config = loops.LoopConfig(
    num_env_steps=2_000,
    start_steps=500,
    update_after=256,
    replay_capacity=2_000,
    eval_every=1_000,
    eval_episodes=64,
  )
  _, metrics = loops.train_jax(env, agent, loop_config, jax.random.key(0))
  eval_return = np.asarray(metrics['eval_return'])
  assert eval_return[-1] > -0.01, eval_return
  assert np.all(np.isfinite(np.asarray(metrics['critic_loss'])))
