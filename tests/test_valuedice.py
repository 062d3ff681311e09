"""ValueDICE: J^mix by hand with a hand-set linear ν and a deterministic policy, the log-E-exp term
at large magnitudes, the α = 0 and α = 1 special cases, the gradient penalty on a linear ν, the
actor's gradient sign on a 1-D toy, the direction of one update for each player, the orthogonal
regulariser, exploration, config errors, no retracing, vmap over seeds equal to a loop, and the
loop-facing agent."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs.core import BoxSpec, EnvSpec
from irl import networks, replay
from irl import valuedice as vd
from irl.networks import ActionBounds, ActorNetwork, Network
from irl.replay import Transition

# 1-D observations and actions on the unit box, so environment actions are the network's actions.
TOY = EnvSpec('toy', BoxSpec((1,), -np.inf, np.inf), BoxSpec((1,), -1.0, 1.0), 10)
UNIT = ActionBounds(jnp.array([-1.0]), jnp.array([1.0]))
SPEC = EnvSpec('small', BoxSpec((3,), -np.inf, np.inf), BoxSpec((2,), -2.0, 2.0), 10)
TINY = vd.ValueDICEConfig(hidden_sizes=(16, 16), batch_size=8)
B = 8


def _col(*values):
  return jnp.asarray(values, jnp.float32)[:, None]


def _transitions(obs, action, next_obs, terminated=None):
  n = obs.shape[0]
  return Transition(
    obs=obs,
    action=action,
    reward=jnp.zeros(n),
    next_obs=next_obs,
    terminated=jnp.zeros(n, bool) if terminated is None else terminated,
    truncated=jnp.zeros(n, bool),
  )


def _deterministic_actor():
  """A 'policy' whose action is tanh(params['m']) everywhere: log σ = −60, so u = μ to float32."""

  def apply(params, obs):
    mean = jnp.broadcast_to(params['m'], obs.shape[:-1] + (1,))
    return mean, jnp.full_like(mean, -60.0)

  return ActorNetwork(init=None, apply=apply)


def _linear_nu():
  """ν(s, a) = w·[s, a] + b, as a `Network` with params {'w': [D], 'b': []}."""
  return Network(init=None, apply=lambda p, x: (x @ p['w'] + p['b'])[..., None])


def _random_batch(key, size=B, spec=SPEC):
  obs_key, action_key, next_key = jax.random.split(key, 3)
  d, a = spec.observation.shape[0], spec.action.shape[0]
  return _transitions(
    jax.random.normal(obs_key, (size, d)),
    jax.random.uniform(action_key, (size, a), minval=-2.0, maxval=2.0),
    jax.random.normal(next_key, (size, d)),
  )


def _leaves_close(a, b, **kw):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), **kw)


# ---------------------------------------------------------------------------------------------------
# The objective


def test_objective_by_hand_with_a_linear_nu_and_a_deterministic_policy():
  # ν(s, a) = s + 2a, γ = 0.5, α = 0.25, and π(s) = 0.5 everywhere.
  expert = _transitions(_col(0.0, 1.0), _col(0.5, -0.5), _col(1.0, 0.0))
  replay_batch = _transitions(_col(2.0, 0.0), _col(0.0, 1.0), _col(0.0, 2.0))
  initial_obs = _col(0.0, 2.0)
  nu_params = {'w': jnp.array([1.0, 2.0]), 'b': jnp.float32(0.0)}
  actor_params = {'m': jnp.float32(math.atanh(0.5))}
  kwargs = dict(
    nu=_linear_nu(),
    actor=_deterministic_actor(),
    bounds=UNIT,
    discount=0.5,
    replay_regularization=0.25,
  )
  value, aux = vd.objective(
    nu_params, actor_params, expert, replay_batch, initial_obs, jax.random.key(0), **kwargs
  )
  # ν_E = [1, 0], ν'_E = s' + 1 = [2, 1], so ν − γν' = [0, −0.5]; ν_R = [2, 2], ν'_R = [1, 3], so
  # [1.5, 0.5]; ν0 = [1, 3].
  np.testing.assert_allclose(aux['expert_diff'], [0.0, -0.5], atol=1e-6)
  np.testing.assert_allclose(aux['replay_diff'], [1.5, 0.5], atol=1e-6)
  log_term = math.log(0.75 * (1 + math.exp(-0.5)) / 2 + 0.25 * (math.exp(1.5) + math.exp(0.5)) / 2)
  linear_term = 0.75 * 0.5 * 2.0 + 0.25 * 1.0
  np.testing.assert_allclose(value, log_term - linear_term, rtol=1e-6)
  np.testing.assert_allclose(aux['log_term'], log_term, rtol=1e-6)
  # The penalty inputs pair each state with the data action or the policy action.
  np.testing.assert_allclose(aux['expert_next_inputs'], [[1.0, 0.5], [0.0, 0.5]], atol=1e-6)
  np.testing.assert_allclose(aux['replay_inputs'], [[2.0, 0.0], [0.0, 1.0]])

  # A terminated expert row drops its γ ν' term: ν − γν' becomes ν = 1 there.
  terminated = expert._replace(terminated=jnp.array([True, False]))
  _, aux = vd.objective(
    nu_params, actor_params, terminated, replay_batch, initial_obs, jax.random.key(0), **kwargs
  )
  np.testing.assert_allclose(aux['expert_diff'], [1.0, -0.5], atol=1e-6)


def test_environment_actions_are_mapped_to_the_unit_box_for_nu():
  spec = EnvSpec('wide', BoxSpec((1,), -np.inf, np.inf), BoxSpec((1,), 0.0, 4.0), 10)
  bounds = networks.action_bounds(spec)
  expert = _transitions(_col(0.0), _col(3.0), _col(0.0))  # 3 in [0, 4] is 0.5 in [−1, 1]
  _, aux = vd.objective(
    {'w': jnp.array([0.0, 1.0]), 'b': jnp.float32(0.0)},
    {'m': jnp.float32(0.0)},
    expert,
    expert,
    _col(0.0),
    jax.random.key(0),
    nu=_linear_nu(),
    actor=_deterministic_actor(),
    bounds=bounds,
    discount=0.5,
    replay_regularization=0.0,
  )
  np.testing.assert_allclose(aux['expert_diff'], [0.5], atol=1e-6)


def test_log_expectation_term_is_stable_for_large_values():
  zeros = jnp.zeros(2)
  for offset in (1000.0, -1000.0):
    nu = jnp.array([offset, offset + 1.0])
    value, aux = vd.mixture_objective(
      nu, zeros, nu, zeros, zeros, discount=0.9, replay_regularization=0.5
    )
    # log mean(e^c, e^{c+1}) = c + log((1 + e)/2), where the naive form overflows or underflows.
    expected = offset + math.log((1 + math.e) / 2)
    with np.errstate(over='ignore', divide='ignore'):
      assert not np.isfinite(np.log(np.mean(np.exp(np.asarray(nu)))))
    np.testing.assert_allclose(aux['log_term'], expected, rtol=1e-6)
    np.testing.assert_allclose(value, expected - 0.5 * (offset + 0.5), rtol=1e-5)
    grads = jax.grad(
      lambda n: vd.mixture_objective(
        n, zeros, n, zeros, zeros, discount=0.9, replay_regularization=0.5
      )[0]
    )(nu)
    assert np.all(np.isfinite(grads))


def test_replay_regularization_zero_and_one_are_the_special_cases():
  keys = jax.random.split(jax.random.key(1), 5)
  args = [jax.random.normal(k, (4,)) for k in keys]
  nu_e, nu_e_next, nu_r, nu_r_next, nu_0 = args
  gamma = 0.9
  objective = lambda alpha: (
    lambda *a: vd.mixture_objective(*a, discount=gamma, replay_regularization=alpha)[0]
  )

  # α = 0: J_DICE = log E_E[e^{ν − γν'}] − (1 − γ) E[ν0], blind to the replay batch.
  d_e = nu_e - gamma * nu_e_next
  np.testing.assert_allclose(
    objective(0.0)(*args), np.log(np.mean(np.exp(d_e))) - (1 - gamma) * np.mean(nu_0), rtol=1e-5
  )
  grads = jax.grad(objective(0.0), argnums=(0, 1, 2, 3, 4))(*args)
  assert np.all(grads[2] == 0) and np.all(grads[3] == 0)
  assert np.all(grads[0] != 0) and np.all(grads[4] != 0)

  # α = 1: log E_R[e^{ν − γν'}] − E_R[ν − γν'], blind to the expert batch and initial states.
  d_r = nu_r - gamma * nu_r_next
  np.testing.assert_allclose(
    objective(1.0)(*args), np.log(np.mean(np.exp(d_r))) - np.mean(d_r), rtol=1e-5
  )
  grads = jax.grad(objective(1.0), argnums=(0, 1, 2, 3, 4))(*args)
  assert np.all(grads[0] == 0) and np.all(grads[1] == 0) and np.all(grads[4] == 0)
  assert np.all(grads[2] != 0)


def test_gradient_penalty_is_analytic_for_a_linear_nu():
  # ∇_x (w·x) = w at every x, so GP = (‖w‖ − 1)² and dGP/dw = 2(‖w‖ − 1) w/‖w‖.
  w = jnp.array([0.3, -1.2, 2.0])
  points = jax.random.normal(jax.random.key(2), (6, 3))
  apply = lambda p, x: x @ p
  norm = float(np.linalg.norm(np.asarray(w)))
  np.testing.assert_allclose(vd.gradient_penalty(apply, w, points), (norm - 1) ** 2, rtol=1e-6)
  np.testing.assert_allclose(
    jax.grad(vd.gradient_penalty, argnums=1)(apply, w, points),
    2 * (norm - 1) * np.asarray(w) / norm,
    rtol=1e-5,
  )
  # A unit-norm w is not penalised; the stabiliser keeps a zero gradient finite.
  assert float(vd.gradient_penalty(apply, w / norm, points)) < 1e-12
  zero_grad = jax.grad(vd.gradient_penalty, argnums=1)(apply, jnp.zeros(3), points)
  assert np.all(np.isfinite(zero_grad))


def test_interpolation_shares_one_weight_per_row_between_current_and_next_pairs():
  e, r = jnp.zeros((5, 2)), jnp.ones((5, 2))
  points = vd.interpolate(e, r, 2 * e, 3 * r, jax.random.key(3))
  assert points.shape == (10, 2)
  u = 1.0 - points[:5, 0]  # u·0 + (1 − u)·1
  assert np.all((u >= 0) & (u <= 1)) and np.ptp(np.asarray(u)) > 0
  np.testing.assert_allclose(points[5:, 0], 3 * (1 - u), rtol=1e-6)  # u·0 + (1 − u)·3
  with pytest.raises(ValueError, match='same shape'):
    vd.interpolate(e, r[:4], e, r[:4], jax.random.key(0))


def test_actor_gradient_points_towards_the_expert_action():
  # 1-D toy, α = 0: ν(s, a) = (a − 0.5)² is smallest at the expert's action 0.5. J^mix decreases in
  # ν(s, π(s)), so the actor (maximising J) must move tanh(m) towards 0.5 from either side.
  expert = _transitions(_col(0.0, 1.0, -1.0), _col(0.5, 0.5, 0.5), _col(1.0, -1.0, 0.0))
  nu = Network(init=None, apply=lambda p, x: ((x[..., 1] - p) ** 2)[..., None])
  value = lambda m: vd.objective(
    0.5,
    {'m': m},
    expert,
    expert,
    expert.obs,
    jax.random.key(0),
    nu=nu,
    actor=_deterministic_actor(),
    bounds=UNIT,
    discount=0.9,
    replay_regularization=0.0,
  )[0]
  assert float(jax.grad(value)(jnp.float32(math.atanh(-0.3)))) > 0
  assert float(jax.grad(value)(jnp.float32(math.atanh(0.9)))) < 0
  assert abs(float(jax.grad(value)(jnp.float32(math.atanh(0.5))))) < 1e-5
  assert float(value(jnp.float32(math.atanh(0.5)))) > float(value(jnp.float32(math.atanh(-0.3))))


def test_one_update_ascends_the_objective_for_the_actor_and_descends_it_for_nu():
  config = vd.ValueDICEConfig(
    hidden_sizes=(16, 16), batch_size=B, actor_lr=1e-4, nu_lr=1e-4, actor_orthogonal_reg=0.0
  )
  learner = vd.make_valuedice(SPEC, config)
  state = learner.init(jax.random.key(0))
  expert, replay_batch = _random_batch(jax.random.key(1)), _random_batch(jax.random.key(2))
  key = jax.random.key(3)
  new_state, metrics = learner.update(state, expert, replay_batch, expert.obs, key)
  objective_key, penalty_key = jax.random.split(key)

  def value(nu_params, actor_params):
    return vd.objective(
      nu_params,
      actor_params,
      expert,
      replay_batch,
      expert.obs,
      objective_key,
      nu=learner.nu,
      actor=learner.actor,
      bounds=learner.bounds,
      discount=0.99,
      replay_regularization=0.1,
    )

  before, aux = value(state.nu_params, state.actor_params)
  np.testing.assert_allclose(metrics['objective'], before, rtol=1e-6)
  assert float(value(state.nu_params, new_state.actor_params)[0]) > float(before)
  points = vd.interpolate(
    aux['expert_inputs'],
    aux['replay_inputs'],
    aux['expert_next_inputs'],
    aux['replay_next_inputs'],
    penalty_key,
  )
  nu_loss = lambda p: (
    value(p, state.actor_params)[0]
    + 10.0 * vd.gradient_penalty(lambda q, x: learner.nu.apply(q, x)[..., 0], p, points)
  )
  np.testing.assert_allclose(metrics['nu_loss'], nu_loss(state.nu_params), rtol=1e-5)
  assert float(nu_loss(new_state.nu_params)) < float(nu_loss(state.nu_params))
  assert int(new_state.step) == 1


def test_orthogonal_regularization_by_hand():
  # WᵀW = [[10, 14], [14, 20]]: the off-diagonal squares sum to 2·14² = 392; biases do not count.
  params = {
    'hidden': {0: {'kernel': jnp.array([[1.0, 2.0], [3.0, 4.0]]), 'bias': jnp.ones(2)}},
    'head': {'kernel': jnp.eye(2), 'bias': jnp.ones(2)},
  }
  np.testing.assert_allclose(vd.orthogonal_regularization(params), 392.0, rtol=1e-6)
  learner = vd.make_valuedice(SPEC, TINY)
  # Orthogonal initialisation: the square hidden kernel has orthonormal columns.
  kernel = learner.init(jax.random.key(0)).actor_params['hidden'][1]['kernel']
  np.testing.assert_allclose(kernel.T @ kernel, np.eye(16), atol=1e-5)


# ---------------------------------------------------------------------------------------------------
# Acting, config, compilation, seeds


def test_act_is_the_mode_plus_clipped_gaussian_noise():
  learner = vd.make_valuedice(SPEC, TINY)
  state = learner.init(jax.random.key(0))
  obs = jax.random.normal(jax.random.key(1), (64, 3))
  mean, _ = learner.actor.apply(state.actor_params, obs)
  mode = jnp.tanh(mean)
  np.testing.assert_allclose(
    learner.act(state, obs, jax.random.key(2), True),
    networks.to_env_action(mode, learner.bounds),
    rtol=1e-6,
  )
  key = jax.random.key(3)
  noisy = jnp.clip(mode + 0.1 * jax.random.normal(key, mode.shape), -1.0, 1.0)
  np.testing.assert_allclose(
    learner.act(state.actor_params, obs, key),
    networks.to_env_action(noisy, learner.bounds),
    rtol=1e-6,
    atol=1e-6,
  )
  wide = vd.make_valuedice(SPEC, vd.ValueDICEConfig(hidden_sizes=(16, 16), exploration_noise=5.0))
  action = wide.act(state, obs, key)
  assert np.all((action >= -2.0) & (action <= 2.0)) and np.any(np.abs(action) == 2.0)


@pytest.mark.parametrize(
  'field,value',
  [
    ('actor_lr', 0.0),
    ('nu_lr', -1.0),
    ('discount', 1.0),
    ('replay_regularization', 1.5),
    ('nu_grad_penalty', -1.0),
    ('actor_orthogonal_reg', -1e-4),
    ('exploration_noise', -0.1),
    ('batch_size', 0),
    ('batch_size', True),
    ('hidden_sizes', (16, 0)),
    ('hidden_sizes', [16]),
    ('log_std_min', 3.0),
    ('orthogonal_init', 1),
  ],
)
def test_config_errors_name_the_field(field, value):
  config = vd.ValueDICEConfig(**{field: value})
  with pytest.raises(ValueError, match=f'ValueDICEConfig.{field}'):
    vd.make_valuedice(SPEC, config)


def test_bad_spec_and_config_type():
  with pytest.raises(TypeError, match='ValueDICEConfig'):
    vd.make_valuedice(SPEC, {'actor_lr': 1e-5})
  image = SPEC._replace(observation=BoxSpec((2, 2), -np.inf, np.inf))
  with pytest.raises(ValueError, match='flat observations'):
    vd.make_valuedice(image, TINY)
  learner = vd.make_valuedice(SPEC, TINY)
  state = learner.init(jax.random.key(0))
  batch = _random_batch(jax.random.key(1))
  with pytest.raises(ValueError, match='same shape'):
    learner.update(
      state, batch, _random_batch(jax.random.key(2), size=4), batch.obs, jax.random.key(3)
    )


def test_update_traces_once_and_seeds_behave():
  learner = vd.make_valuedice(SPEC, TINY)
  traces = []

  def counted(*args):
    traces.append(1)
    return learner.update(*args)

  update = jax.jit(counted)
  state = learner.init(jax.random.key(0))
  for i in range(3):
    expert = _random_batch(jax.random.key(10 + i))
    replay_batch = _random_batch(jax.random.key(20 + i))
    state, metrics = update(state, expert, replay_batch, expert.obs, jax.random.key(i))
  assert len(traces) == 1 and int(state.step) == 3
  assert all(np.isfinite(float(v)) for v in metrics.values())
  _leaves_close(learner.init(jax.random.key(5)), learner.init(jax.random.key(5)), rtol=0, atol=0)
  assert not np.allclose(
    learner.init(jax.random.key(5)).nu_params['head']['kernel'],
    learner.init(jax.random.key(6)).nu_params['head']['kernel'],
  )


def test_vmap_over_seeds_equals_a_loop():
  learner = vd.make_valuedice(SPEC, TINY)

  def run(key):
    init_key, data_key, update_key = jax.random.split(key, 3)
    expert = _random_batch(data_key)

    def step(state, k):
      replay_key, step_key = jax.random.split(k)
      return learner.update(state, expert, _random_batch(replay_key), expert.obs, step_key)

    return jax.lax.scan(step, learner.init(init_key), jax.random.split(update_key, 2))

  keys = jax.random.split(jax.random.key(7), 2)
  batched = jax.jit(jax.vmap(run))(keys)
  single = jax.jit(run)
  for i in range(2):
    _leaves_close(jax.tree.map(lambda x: x[i], batched), single(keys[i]), rtol=2e-5, atol=2e-6)


def test_valuedice_imitates_a_linear_expert_on_a_contextual_toy():
  # s, s' ~ U(−1, 1) independently of the action, expert action 0.5·s, replay actions uniform: the
  # state marginals match for any policy, so minimising KL(d^π ‖ d^E) means π(s) → 0.5·s.
  config = vd.ValueDICEConfig(hidden_sizes=(32, 32), batch_size=64, actor_lr=1e-4, discount=0.9)
  learner = vd.make_valuedice(TOY, config)
  grid = jnp.linspace(-1.0, 1.0, 21)[:, None]

  def toy_batch(key, expert):
    obs_key, action_key, next_key = jax.random.split(key, 3)
    obs = jax.random.uniform(obs_key, (64, 1), minval=-1.0, maxval=1.0)
    action = (
      0.5 * obs if expert else jax.random.uniform(action_key, (64, 1), minval=-1.0, maxval=1.0)
    )
    return _transitions(obs, action, jax.random.uniform(next_key, (64, 1), minval=-1.0, maxval=1.0))

  def run(key):
    init_key, expert_key, replay_key, update_key = jax.random.split(key, 4)
    expert, replay_batch = toy_batch(expert_key, True), toy_batch(replay_key, False)
    state = learner.init(init_key)
    error = lambda s: jnp.mean((learner.act(s, grid, key, True) - 0.5 * grid) ** 2)
    step = lambda s, k: learner.update(s, expert, replay_batch, expert.obs, k)
    final, _ = jax.lax.scan(step, state, jax.random.split(update_key, 2000))
    return error(state), error(final)

  before, after = jax.jit(jax.vmap(run))(jax.random.split(jax.random.key(0), 2))
  assert np.all(before > 0.05) and np.all(after < 0.02), (before, after)


# ---------------------------------------------------------------------------------------------------
# The loop-facing agent


def test_agent_samples_its_batches_from_the_buffers():
  learner = vd.make_valuedice(SPEC, TINY)
  rows = _random_batch(jax.random.key(1), size=20)
  buffer = replay.add(replay.init(jax.tree.map(lambda x: x[0], rows), 32), rows)
  expert_buffer = replay.expert_buffer(_random_batch(jax.random.key(2), size=12))
  agent = vd.as_agent(learner)
  state = agent.init(jax.random.key(0))
  update = jax.jit(agent.update)
  new_state, metrics = update(state, buffer, jax.random.key(3), expert_buffer)
  assert int(new_state.step) == 1 and np.isfinite(float(metrics['objective']))
  with pytest.raises(ValueError, match='expert_buffer'):
    agent.update(state, buffer, jax.random.key(3), None)

  # Fixed initial states: the (1 − γ) term then sees only those rows.
  starts = vd.initial_observations(
    np.arange(12, dtype=np.float32).reshape(6, 2), np.array([0, 0, 0, 1, 1, 2])
  )
  np.testing.assert_array_equal(starts, [[0, 1], [6, 7], [10, 11]])
  initial_obs = np.full((3, 3), 7.0, np.float32)
  fixed = jax.jit(vd.as_agent(learner, initial_obs=initial_obs).update)
  _, fixed_metrics = fixed(state, buffer, jax.random.key(3), expert_buffer)
  assert np.isfinite(float(fixed_metrics['nu_initial']))
  assert float(fixed_metrics['nu_initial']) != float(metrics['nu_initial'])
  np.testing.assert_allclose(fixed_metrics['nu_expert'], metrics['nu_expert'], rtol=1e-6)
  with pytest.raises(ValueError, match='initial_obs'):
    vd.as_agent(learner, initial_obs=np.zeros(3))
  with pytest.raises(ValueError, match='leading axis'):
    vd.initial_observations(np.zeros((3, 2)), np.zeros(2))
