"""JAX-native environments: PointMaze physics against hand-derived cases, Pendulum against Pendulum-v1,
scripted experts, absorbing-state transform, registry."""

import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs import core, pendulum, pointmaze, registry
from envs.core import EnvError
from irl import absorbing
from irl.replay import Transition

R = pointmaze.PARTICLE_RADIUS
LO, HI = pointmaze.ARENA_LOW + R, pointmaze.ARENA_HIGH - R  # the particle centre's range


def maze_state(pos, vel=(0.0, 0.0), target=(0.2, 0.5), t=0):
  f32 = lambda x: jnp.asarray(x, jnp.float32)
  return pointmaze.PointMazeState(f32(pos), f32(vel), f32(target), jnp.asarray(t, jnp.int32))


def rollout(env, state, actions):
  """Steps `env` through `actions` [T, ...]; returns the final state and the stacked step outputs."""

  def body(state, action):
    state, obs, reward, terminated, truncated, _ = env.step(state, action)
    return state, (state, obs, reward, terminated, truncated)

  return jax.lax.scan(body, state, actions)


def constant(action, steps):
  return jnp.tile(jnp.asarray(action, jnp.float32), (steps, 1))


# ---------------------------------------------------------------------------------------------------
# PointMaze physics


def test_free_motion_without_damping_is_uniform_acceleration():
  # With c = 0 the integrator is v_k = v0 + k·dt·F/m, p_n = p0 + dt·Σ_{k=1..n} v_k.
  env = pointmaze.PointMaze('left', damping=0.0)
  p0, v0, a = np.array([0.25, 0.1]), np.array([0.1, -0.05]), np.array([0.5, -0.3])
  env_steps = 2
  final, _ = jax.jit(lambda s, acts: rollout(env, s, acts))(
    maze_state(p0, v0), constant(a, env_steps)
  )
  n, dt, accel = env_steps * pointmaze.FRAME_SKIP, pointmaze.DT, a * pointmaze.GEAR / pointmaze.MASS
  expected_v = v0 + n * dt * accel
  expected_p = p0 + n * dt * v0 + dt**2 * accel * n * (n + 1) / 2
  np.testing.assert_allclose(final.vel, expected_v, atol=1e-6)
  np.testing.assert_allclose(final.pos, expected_p, atol=1e-6)
  assert int(final.t) == env_steps


def test_damped_motion_matches_geometric_closed_form():
  # v_k = v* + β^k (v0 - v*), v* = F/c, β = 1/(1 + dt·c/m) (implicit damping).
  env = pointmaze.PointMaze('right')
  p0, v0, a = np.array([0.3, 0.0]), np.array([0.5, 0.0]), np.array([0.0, 0.4])
  env_steps = 3
  final, _ = rollout(env, maze_state(p0, v0), constant(a, env_steps))
  dt, m, c = pointmaze.DT, pointmaze.MASS, pointmaze.DAMPING
  beta, v_star = 1.0 / (1.0 + dt * c / m), a / c
  k = np.arange(1, env_steps * pointmaze.FRAME_SKIP + 1)[:, None]
  v = v_star + beta**k * (v0 - v_star)
  np.testing.assert_allclose(final.vel, v[-1], atol=1e-6)
  np.testing.assert_allclose(final.pos, p0 + dt * v.sum(0), atol=1e-6)
  # Unforced, the speed decays by exactly β^5 per environment step.
  coast, _ = rollout(env, maze_state(p0, v0), constant([0.0, 0.0], 1))
  np.testing.assert_allclose(coast.vel, v0 * beta**5, rtol=1e-6)


@pytest.mark.parametrize('variant, closed_x, gap_x', [('left', 0.1, 0.475), ('right', 0.45, 0.075)])
def test_barrier_blocks_and_gap_lets_through(variant, closed_x, gap_x):
  env = pointmaze.PointMaze(variant)
  run = jax.jit(lambda s, acts: rollout(env, s, acts)[0])
  up, down = constant([0.0, 1.0], 20), constant([0.0, -1.0], 20)
  # Pushed up into the barrier from below: stops with its edge on the wall, normal speed zero.
  below = run(maze_state([closed_x, 0.2]), up)
  np.testing.assert_array_equal(below.pos, np.float32([closed_x, pointmaze.BARRIER_Y - R]))
  np.testing.assert_array_equal(below.vel, [0.0, 0.0])
  # Pushed down onto it from above.
  above = run(maze_state([closed_x, 0.45]), down)
  np.testing.assert_array_equal(above.pos, np.float32([closed_x, pointmaze.BARRIER_Y + R]))
  # Through the gap it goes on to the top wall, in both directions.
  through = run(maze_state([gap_x, 0.2]), up)
  np.testing.assert_array_equal(through.pos, np.float32([gap_x, HI]))
  back = run(maze_state([gap_x, 0.45]), down)
  np.testing.assert_array_equal(back.pos, np.float32([gap_x, LO]))
  # Sideways inside the gap at barrier height: stopped by the barrier's end.
  x0, x1 = pointmaze.BARRIER_X[variant]
  toward_end = [-1.0, 0.0] if variant == 'left' else [1.0, 0.0]
  side = run(maze_state([gap_x, pointmaze.BARRIER_Y]), constant(toward_end, 20))
  end = x1 + R if variant == 'left' else x0 - R
  np.testing.assert_array_equal(side.pos, np.float32([end, pointmaze.BARRIER_Y]))
  np.testing.assert_array_equal(side.vel, [0.0, 0.0])


def test_the_other_variants_gap_is_closed():
  # Where Left has its gap, Right has barrier, and the other way round.
  up = constant([0.0, 1.0], 20)
  for variant, other in (('left', 'right'), ('right', 'left')):
    x_other_gap = pointmaze.gap_center(other)
    final, _ = rollout(pointmaze.PointMaze(variant), maze_state([x_other_gap, 0.2]), up)
    assert float(final.pos[1]) == pytest.approx(pointmaze.BARRIER_Y - R)


def test_arena_walls_clamp_and_keep_tangential_motion():
  env = pointmaze.PointMaze('left')
  run = jax.jit(lambda s, acts: rollout(env, s, acts)[0])
  for start, push, corner in (
    ([0.3, 0.45], [1, 1], [HI, HI]),
    ([0.3, 0.45], [-1, 1], [LO, HI]),
    ([0.3, 0.1], [1, -1], [HI, LO]),
    ([0.3, 0.1], [-1, -1], [LO, LO]),
  ):
    final = run(maze_state(start), constant(push, 30))
    np.testing.assert_array_equal(final.pos, np.float32(corner))
    np.testing.assert_array_equal(final.vel, [0.0, 0.0])
  # Against the right wall and pushed up along it: x clamped, y still moving at the free speed.
  slide = run(maze_state([HI, 0.35], [0.0, 0.0]), constant([1.0, 0.5], 1))
  free = run(maze_state([0.3, 0.35], [0.0, 0.0]), constant([0.0, 0.5], 1))
  assert float(slide.pos[0]) == pytest.approx(HI) and float(slide.vel[0]) == 0.0
  np.testing.assert_allclose(slide.pos[1], free.pos[1], atol=1e-7)
  np.testing.assert_allclose(slide.vel[1], free.vel[1], atol=1e-7)


def test_pointmaze_reward_obs_layout_and_action_clipping():
  env = pointmaze.PointMaze('left')
  state, obs = env.reset(jax.random.key(3))
  np.testing.assert_array_equal(obs, [state.pos[0], state.pos[1], 0.0, state.target[0], 0.5, 0.0])
  assert obs.shape == env.spec.observation.shape and obs.dtype == jnp.float32
  s = maze_state([0.1, 0.2], target=[0.4, 0.5])
  next_s, next_obs, reward, terminated, truncated, info = env.step(s, jnp.array([2.0, -3.0]))
  # r(s, a) on the state before the step, with the clipped action: −‖(−0.3, −0.3)‖ − 0.001·2.
  assert float(reward) == pytest.approx(-np.sqrt(0.18) - 0.002, abs=1e-6)
  clipped = env.step(s, jnp.array([1.0, -1.0]))
  np.testing.assert_array_equal(next_s.pos, clipped[0].pos)
  np.testing.assert_array_equal(next_obs[:2], next_s.pos)
  np.testing.assert_array_equal(next_obs[3:5], np.float32([0.4, 0.5]))
  assert float(info['distance']) == pytest.approx(float(jnp.linalg.norm(next_s.pos - s.target)))
  assert not bool(terminated) and not bool(truncated)


def test_reset_samples_targets_from_the_grid_and_starts_near_origin():
  env = pointmaze.PointMaze('right')
  states, _ = jax.vmap(env.reset)(jax.random.split(jax.random.key(0), 600))
  xs = np.round(np.asarray(states.target[:, 0]) / 0.04).astype(int)
  np.testing.assert_allclose(states.target[:, 0], xs * 0.04, atol=1e-7)
  assert set(xs.tolist()) == set(range(13))
  np.testing.assert_array_equal(states.target[:, 1], 0.5)
  assert np.all(np.abs(np.asarray(states.pos) - [0.3, 0.0]) <= pointmaze.START_NOISE)
  assert np.unique(np.asarray(states.pos[:, 0])).size > 500  # noisy starts
  np.testing.assert_array_equal(states.vel, 0.0)
  np.testing.assert_array_equal(states.t, 0)


@pytest.mark.parametrize(
  'env, steps',
  [
    (pointmaze.PointMaze('left'), 100),
    (pendulum.Pendulum(), 200),
    (pendulum.Pendulum(max_episode_steps=7), 7),
  ],
)
def test_time_limit_truncates_at_exactly_max_steps(env, steps):
  assert env.spec.max_episode_steps == steps
  state, _ = env.reset(jax.random.key(0))
  actions = jnp.zeros((steps + 2,) + env.spec.action.shape, jnp.float32)
  _, (states, _, _, terminated, truncated) = jax.jit(lambda s, a: rollout(env, s, a))(
    state, actions
  )
  assert not np.any(terminated)
  assert np.flatnonzero(~np.asarray(truncated)).tolist() == list(range(steps - 1))
  np.testing.assert_array_equal(states.t, np.arange(1, steps + 3))


@pytest.mark.parametrize(
  'env',
  [pointmaze.PointMaze('left'), pointmaze.PointMaze('right'), pendulum.Pendulum()],
  ids=['left', 'right', 'pendulum'],
)
def test_jit_equals_eager_and_vmap_equals_loop(env):
  keys = jax.random.split(jax.random.key(1), 3)
  action = jnp.full(env.spec.action.shape, 0.7, jnp.float32)

  def episode_start(key):
    state, obs = env.reset(key)
    state, obs2, reward, _, _, _ = env.step(state, action)
    return obs, obs2, reward, state

  batched = jax.jit(jax.vmap(episode_start))(keys)
  for i, key in enumerate(keys):
    eager = episode_start(key)
    jitted = jax.jit(episode_start)(key)
    for e, j, b in zip(jax.tree.leaves(eager), jax.tree.leaves(jitted), jax.tree.leaves(batched)):
      np.testing.assert_allclose(j, e, rtol=1e-6, atol=1e-7)
      np.testing.assert_allclose(b[i], e, rtol=1e-6, atol=1e-7)
  assert not np.allclose(batched[0][0], batched[0][1])  # different keys, different episodes


def test_wrong_action_shape_is_an_error():
  for env, bad in (
    (pointmaze.PointMaze('left'), (3,)),
    (pointmaze.PointMaze('left'), (1, 2)),
    (pendulum.Pendulum(), ()),
  ):
    state, _ = env.reset(jax.random.key(0))
    with pytest.raises(EnvError, match=r'action must have shape'):
      env.step(state, jnp.zeros(bad))


def test_constructor_errors():
  with pytest.raises(EnvError, match=r"variant must be one of \('left', 'right'\)"):
    pointmaze.PointMaze('up')
  with pytest.raises(EnvError, match='max_episode_steps must be a positive int'):
    pointmaze.PointMaze('left', max_episode_steps=0)
  with pytest.raises(EnvError, match='max_episode_steps must be a positive int'):
    pendulum.Pendulum(max_episode_steps=2.5)


# ---------------------------------------------------------------------------------------------------
# Scripted experts


def _expert_returns_maze(env_variant, expert_variant):
  env = pointmaze.PointMaze(env_variant)

  def episode(target_x):
    state = maze_state(pointmaze.START, target=jnp.stack([target_x, jnp.float32(0.5)]))
    obs = jnp.concatenate([state.pos, jnp.zeros(1), state.target, jnp.zeros(1)])

    def body(carry, _):
      state, obs = carry
      state, obs, reward, _, _, info = env.step(
        state, pointmaze.scripted_expert(obs, expert_variant)
      )
      return (state, obs), (reward, info['distance'])

    _, (rewards, distance) = jax.lax.scan(
      body, (state, obs), None, length=env.spec.max_episode_steps
    )
    return rewards.sum(), distance[-1]

  return jax.jit(jax.vmap(episode))(jnp.asarray(pointmaze.TARGET_XS, jnp.float32))


@pytest.mark.parametrize('variant', pointmaze.VARIANTS)
def test_pointmaze_expert_reaches_every_target(variant):
  returns, final_distance = _expert_returns_maze(variant, variant)
  assert np.all(final_distance < 1e-3), final_distance
  assert np.all(returns > -13.0), returns  # standing still at the start scores about −55
  # The other variant's route runs into this variant's barrier and never gets there.
  _, stuck = _expert_returns_maze(variant, 'right' if variant == 'left' else 'left')
  assert np.all(stuck > 0.15), stuck


def test_goal_tasks_draw_their_third_of_the_targets_and_their_expert_reaches_them():
  """PointMaze-Goals-k: the registry's task k has its own gap side and its own third of the top row,
  together the whole row; the scripted expert of its name (irl.experts.SCRIPTED) gets through its gap."""
  from irl import experts  # the experts module is above envs in the layers; a test may reach both

  seen = set()
  for k, name in enumerate(registry.GOAL_ENVS):
    env = registry.make(name, max_episode_steps=60)
    variant, target_xs = pointmaze.GOAL_TASKS[k]
    assert env.spec.name == name and env.variant == variant and env.spec.max_episode_steps == 60
    states, obs = jax.vmap(env.reset)(jax.random.split(jax.random.key(k), 200))
    drawn = set(np.round(np.asarray(states.target[:, 0]), 4).tolist())
    assert drawn == set(np.round(np.asarray(target_xs, np.float32), 4).tolist())
    assert not drawn & seen or k >= 3  # tasks 0-2 split the row, 3-5 split it again
    seen |= drawn
    policy = experts.load_policy('scripted', env.spec)[0]

    def body(carry, _):
      state, obs = carry
      state, obs, _, _, _, info = jax.vmap(env.step)(state, policy(obs))
      return (state, obs), info['distance']

    _, distance = jax.lax.scan(body, (states, obs), None, length=60)
    assert np.all(np.asarray(distance[-1]) < 0.01), (name, distance[-1])
  assert seen == set(np.round(np.asarray(pointmaze.TARGET_XS, np.float32), 4).tolist())
  assert [v for v, _ in pointmaze.GOAL_TASKS] == ['left', 'right'] * 3  # the gap alternates


def test_true_reward_is_the_step_reward_and_uniform_states_cover_the_free_arena():
  """envs.pointmaze.true_reward (EPIC's reference in irl.continual) is r(s, a) as `step` pays it, read
  from the observation; `uniform_state` draws anywhere outside the barrier's band."""
  env = registry.make('PointMaze-Goals-1')
  states, obs = jax.vmap(env.uniform_state)(jax.random.split(jax.random.key(0), 2000))
  actions = jax.random.uniform(jax.random.key(1), (2000, 2), minval=-1.5, maxval=1.5)
  _, next_obs, reward, _, _, _ = jax.vmap(env.step)(states, actions)
  np.testing.assert_allclose(pointmaze.true_reward(obs, actions, next_obs), reward, rtol=1e-5)
  pos = np.asarray(states.pos)
  assert np.all((pos >= LO) & (pos <= HI))
  x0, x1 = pointmaze.BARRIER_X[env.variant]
  in_band = (pos[:, 0] > x0 - R) & (pos[:, 0] < x1 + R) & (np.abs(pos[:, 1] - 0.3) < R - 1e-6)
  assert not np.any(in_band)
  assert pos[:, 1].min() < 0.05 and pos[:, 1].max() > 0.45 and np.abs(states.vel).max() > 0.9
  assert set(np.round(np.asarray(states.target[:, 0]), 4)) <= set(
    np.round(np.asarray(pointmaze.GOAL_TASKS[1][1], np.float32), 4)
  )


def test_pendulum_expert_swings_up():
  env = pendulum.Pendulum()

  def episode(state, obs):
    def body(carry, _):
      state, obs = carry
      state, obs, reward, _, _, _ = env.step(state, pendulum.scripted_expert(obs))
      return (state, obs), reward

    (state, _), rewards = jax.lax.scan(body, (state, obs), None, length=200)
    return rewards.sum(), pendulum.angle_normalize(state.theta)

  states, obs = jax.vmap(env.reset)(jax.random.split(jax.random.key(0), 64))
  # Append the hardest start: hanging at rest, where the pump has to pick a direction.
  states = jax.tree.map(
    lambda x, y: jnp.concatenate([x, y[None]]),
    states,
    pendulum.PendulumState(jnp.float32(np.pi), jnp.float32(0.0), jnp.int32(0)),
  )
  obs = jnp.concatenate([obs, jnp.float32([[-1.0, 0.0, 0.0]])])
  returns, final_angle = jax.jit(jax.vmap(episode))(states, obs)
  assert float(returns[:-1].mean()) > -200.0, returns.mean()
  assert np.all(np.abs(final_angle) < 0.01), final_angle


# ---------------------------------------------------------------------------------------------------
# Pendulum dynamics


def test_pendulum_hand_derived_steps():
  env = pendulum.Pendulum()
  state = lambda th, thd: pendulum.PendulumState(jnp.float32(th), jnp.float32(thd), jnp.int32(0))
  # Horizontal at rest, u = 1: θ̈ = 15·1 + 3·1 = 18, θ̇' = 0.9, θ' = π/2 + 0.045.
  s, obs, reward, _, _, _ = env.step(state(np.pi / 2, 0.0), jnp.array([1.0]))
  assert float(s.theta_dot) == pytest.approx(0.9, abs=1e-6)
  assert float(s.theta) == pytest.approx(np.pi / 2 + 0.045, abs=1e-6)
  np.testing.assert_allclose(
    obs, [np.cos(np.pi / 2 + 0.045), np.sin(np.pi / 2 + 0.045), 0.9], atol=1e-6
  )
  assert float(reward) == pytest.approx(-((np.pi / 2) ** 2 + 0.001), abs=1e-5)
  # Torque clipped to 2 (also in the cost) and speed clipped to 8.
  s, _, reward, _, _, _ = env.step(state(np.pi / 2, 7.9), jnp.array([5.0]))
  assert float(s.theta_dot) == 8.0
  assert float(reward) == pytest.approx(-((np.pi / 2) ** 2 + 0.1 * 7.9**2 + 0.004), abs=1e-4)
  # The cost wraps the angle: θ = 2π + 0.1 costs like θ = 0.1.
  _, _, reward, _, _, _ = env.step(state(2 * np.pi + 0.1, 0.0), jnp.array([0.0]))
  assert float(reward) == pytest.approx(-0.01, abs=1e-5)


def test_pendulum_reset_distribution():
  states, obs = jax.vmap(pendulum.Pendulum().reset)(jax.random.split(jax.random.key(0), 500))
  assert np.all(np.abs(states.theta) <= np.pi) and np.all(np.abs(states.theta_dot) <= 1.0)
  assert states.theta.min() < -2.5 and states.theta.max() > 2.5
  np.testing.assert_allclose(
    obs, np.stack([np.cos(states.theta), np.sin(states.theta), states.theta_dot], -1), atol=1e-6
  )


def test_pendulum_matches_gymnasium_step_by_step():
  gymnasium = pytest.importorskip('gymnasium')
  gym_env = gymnasium.make('Pendulum-v1')
  gym_env.reset(seed=0)
  env = pendulum.Pendulum()
  theta0, theta_dot0 = 2.5, -0.7
  gym_env.unwrapped.state = np.array([theta0, theta_dot0])
  state = pendulum.PendulumState(jnp.float32(theta0), jnp.float32(theta_dot0), jnp.int32(0))
  actions = np.random.default_rng(0).uniform(-2.5, 2.5, (200, 1)).astype(np.float32)
  ours = jax.jit(lambda s, a: rollout(env, s, a))(state, jnp.asarray(actions))[1]
  for t in range(200):
    gym_obs, gym_reward, gym_terminated, gym_truncated, _ = gym_env.step(actions[t])
    np.testing.assert_allclose(ours[1][t], gym_obs, atol=2e-4, err_msg=f'step {t}')
    assert float(ours[2][t]) == pytest.approx(gym_reward, abs=2e-3)
    assert bool(ours[3][t]) == gym_terminated and bool(ours[4][t]) == gym_truncated
  assert gym_truncated  # Gymnasium's TimeLimit(200) and ours end together


# ---------------------------------------------------------------------------------------------------
# step_autoreset inside lax.scan


@pytest.mark.parametrize(
  'env',
  [pendulum.Pendulum(max_episode_steps=5), pointmaze.PointMaze('left', max_episode_steps=5)],
  ids=['pendulum', 'maze'],
)
def test_scan_rollout_with_step_autoreset(env):
  keys = jax.random.split(jax.random.key(7), 13)
  traces = []

  @jax.jit
  def run(keys):
    state, obs = env.reset(keys[0])

    def body(carry, key):
      state, obs = carry
      traces.append(None)
      out = core.step_autoreset(env, state, jnp.full(env.spec.action.shape, 0.3), key)
      return (out.state, out.obs), (obs, out)

    return jax.lax.scan(body, (state, obs), keys[1:])[1]

  acted_from, out = run(keys)
  assert len(traces) == 1  # one trace of the step for the whole scan
  done = np.asarray(out.truncated)
  assert np.flatnonzero(done).tolist() == [4, 9] and not np.any(out.terminated)
  np.testing.assert_array_equal(out.state.t, [1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2])
  for i in (4, 9):
    # After the time limit the next observation is a fresh reset with that step's key ...
    np.testing.assert_array_equal(out.obs[i], env.reset(keys[1 + i])[1])
    np.testing.assert_array_equal(acted_from[i + 1], out.obs[i])
    # ... while next_obs is still the true last observation of the episode.
    assert not np.array_equal(out.next_obs[i], out.obs[i])
  np.testing.assert_array_equal(out.next_obs[:4], acted_from[1:5])


# ---------------------------------------------------------------------------------------------------
# Absorbing states


def _hand_batch():
  # Three transitions, 2-D observations, 1-D actions: ordinary, terminated, truncated.
  return Transition(
    obs=jnp.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]),
    action=jnp.array([[0.1], [0.2], [0.3]]),
    reward=jnp.array([1.0, 2.0, 3.0]),
    next_obs=jnp.array([[1.5, 2.5], [3.5, 4.5], [5.5, 6.5]]),
    terminated=jnp.array([False, True, False]),
    truncated=jnp.array([False, False, True]),
  )


def test_absorbing_transform_on_a_hand_made_batch():
  out, valid = jax.jit(absorbing.to_absorbing)(_hand_batch())
  s_a = [0.0, 0.0, 1.0]
  np.testing.assert_array_equal(valid, [True, False, True, True, True, False])
  np.testing.assert_array_equal(out.obs, [[1, 2, 0], s_a, [3, 4, 0], s_a, [5, 6, 0], s_a])
  np.testing.assert_array_equal(out.next_obs, [[1.5, 2.5, 0], s_a, s_a, s_a, [5.5, 6.5, 0], s_a])
  np.testing.assert_array_equal(out.action, np.float32([[0.1], [0.1], [0.2], [0.2], [0.3], [0.3]]))
  np.testing.assert_array_equal(out.reward, [1, 0, 2, 0, 3, 0])
  np.testing.assert_array_equal(out.terminated, [False] * 6)
  np.testing.assert_array_equal(out.truncated, [False, False, False, False, True, False])
  np.testing.assert_array_equal(
    absorbing.is_absorbing(out.obs), [False, True, False, True, False, True]
  )
  assert isinstance(out, Transition)
  # Eager gives the same.
  eager, eager_valid = absorbing.to_absorbing(_hand_batch())
  for a, b in zip(out, eager):
    np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(valid, eager_valid)

  # Several absorbing steps with a given (zero) action, then the valid rows packed first.
  out, valid = absorbing.to_absorbing(_hand_batch(), absorbing_action=jnp.zeros(1), num_absorbing=2)
  np.testing.assert_array_equal(valid, [1, 0, 0, 1, 1, 1, 1, 0, 0])
  np.testing.assert_array_equal(out.action[3:6, 0], np.float32([0.2, 0.0, 0.0]))
  packed, count = jax.jit(absorbing.compact)(out, valid)
  assert int(count) == 5
  np.testing.assert_array_equal(packed.obs[:5], [[1, 2, 0], [3, 4, 0], s_a, s_a, [5, 6, 0]])
  np.testing.assert_array_equal(packed.reward[:5], [1, 2, 0, 0, 3])


def test_absorbing_spec_and_indicator():
  spec = absorbing.absorbing_spec(pendulum.Pendulum().spec)
  assert spec.observation.shape == (4,) and spec.name == 'Pendulum'
  np.testing.assert_array_equal(spec.observation.low, [-1, -1, -8, 0])
  np.testing.assert_array_equal(spec.observation.high, [1, 1, 8, 1])
  assert spec.action.shape == (1,) and spec.max_episode_steps == 200
  np.testing.assert_array_equal(
    absorbing.add_indicator(jnp.ones((2, 3, 2))), np.tile([1, 1, 0], (2, 3, 1))
  )
  np.testing.assert_array_equal(absorbing.absorbing_state(3), [0, 0, 0, 1])


def test_absorbing_errors():
  with pytest.raises(EnvError, match='num_absorbing must be a positive int'):
    absorbing.to_absorbing(_hand_batch(), num_absorbing=0)
  with pytest.raises(EnvError, match=r'batch.obs and batch.next_obs must both have shape \[B, d\]'):
    absorbing.to_absorbing(_hand_batch()._replace(next_obs=jnp.zeros((3, 3))))
  with pytest.raises(EnvError, match='batch.reward must have the leading batch axis B = 3'):
    absorbing.to_absorbing(_hand_batch()._replace(reward=jnp.zeros(2)))


# ---------------------------------------------------------------------------------------------------
# Registry


def test_registry_builds_jax_envs():
  left = registry.make('PointMaze-Left')
  assert isinstance(left, pointmaze.PointMaze) and left.spec.name == 'PointMaze-Left'
  right = registry.make('PointMaze-Right', max_episode_steps=50)
  assert right.variant == 'right' and right.spec.max_episode_steps == 50
  assert registry.make('Pendulum').spec.name == 'Pendulum'
  assert registry.JAX_ENVS == ('PointMaze-Left', 'PointMaze-Right', 'Pendulum', *registry.GOAL_ENVS)
  assert registry.GOAL_ENVS == tuple(f'PointMaze-Goals-{k}' for k in range(6))
  from envs import gym_adapter  # importable without Gymnasium; its task list must match ours

  assert registry.GYM_ENVS == gym_adapter.GYM_ENVS
  assert all(registry.is_jax_env(n) for n in registry.JAX_ENVS + ('brax:ant',))
  assert not any(registry.is_jax_env(n) for n in registry.GYM_ENVS + ('Nope', 'brax'))
  # Instances are hashable (usable as static arguments of jit) and equal by value.
  assert (
    hash(registry.make('PointMaze-Left')) == hash(left) and registry.make('PointMaze-Left') == left
  )


def test_registry_errors():
  with pytest.raises(
    EnvError, match=r"name must be one of \('PointMaze-Left', .*'BigAnt'\).*brax:ant"
  ):
    registry.make('PointMaze-Up')
  with pytest.raises(EnvError, match=r'name must be one of'):
    registry.make('brax:')
  with pytest.raises(
    EnvError, match=r"PointMaze-Left: unknown keyword\(s\) \['variant'\]; allowed"
  ):
    registry.make('PointMaze-Left', variant='right')
  with pytest.raises(EnvError, match=r"Pendulum: unknown keyword\(s\) \['frame_skip'\]"):
    registry.make('Pendulum', frame_skip=2)


def test_registry_dispatches_lazily_to_the_adapters(monkeypatch):
  calls = []
  from envs import gym_adapter

  monkeypatch.setattr(
    gym_adapter, 'make_gym', lambda name, **kw: calls.append(('gym', name, kw)) or 'g'
  )
  fake_brax = types.ModuleType('envs.brax_adapter')
  fake_brax.make_brax = lambda name, **kw: calls.append(('brax', name, kw)) or 'b'
  monkeypatch.setitem(sys.modules, 'envs.brax_adapter', fake_brax)
  monkeypatch.setattr(envs, 'brax_adapter', fake_brax, raising=False)
  assert registry.make('Hopper-v5', num_envs=2) == 'g'
  assert registry.make('AmputatedAnt') == 'g'
  assert registry.make('brax:ant', backend='mjx') == 'b'
  assert calls == [
    ('gym', 'Hopper-v5', {'num_envs': 2}),
    ('gym', 'AmputatedAnt', {}),
    ('brax', 'ant', {'backend': 'mjx'}),
  ]
