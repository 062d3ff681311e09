"""The training loops: the schedule (random phase, update warm-up, update counts) and the buffer
contents against hand-derived values, SAC on probe environments with known values and optimal
actions, vmap over seeds equal to separate runs, no retracing, the host loop (over a host-side
wrapper of a JAX env, with exact resume) and a short Gymnasium run."""

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs import probes
from envs.core import step_autoreset
from irl import absorbing, loops, replay
from irl.replay import Transition
from irl.sac import agent as sac_agent

# Probe runs: γ = 0.5 and temperature 0 make the Q-values exact closed forms (envs/probes.py).
PROBE_SAC = sac_agent.SACConfig(
  hidden_sizes=(32, 32),
  batch_size=64,
  discount=0.5,
  learn_temperature=False,
  init_temperature=0.0,
  tau=0.05,
  actor_lr=1e-3,
  critic_lr=1e-3,
)
PROBE_LOOP = loops.LoopConfig(
  num_env_steps=4000,
  start_steps=1000,
  update_after=100,
  replay_capacity=4000,
  eval_every=2000,
  eval_episodes=8,
)


def _sac(env, config=PROBE_SAC):
  sac = sac_agent.make_sac(env.spec, config)
  return sac, sac_agent.as_agent(sac)


def _assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def _assert_true_next_obs(data: Transition, size: int, num_envs: int):
  """Row r = num_envs·i + j holds env j's transition at iteration i, so the next row of the same env
  starts where this one ended unless the episode ended (then it starts from a reset)."""
  obs, next_obs = np.asarray(data.obs[:size]), np.asarray(data.next_obs[:size])
  done = np.asarray(data.terminated[:size]) | np.asarray(data.truncated[:size])
  rows = np.arange(size - num_envs)
  continuing = rows[~done[rows]]
  np.testing.assert_array_equal(next_obs[continuing], obs[continuing + num_envs])
  return obs, next_obs, done


# ---------------------------------------------------------------------------------------------------
# The schedule, with a recording agent


def _recording_agent(action_value: float, traces: list, action_dim: int = 1) -> loops.Agent:
  """Acts with a constant; each update counts itself and reports the buffer size it saw and the
  mean expert reward. Every trace of `act` and `update` appends its name to `traces`."""

  def init(key):
    del key
    return {'updates': jnp.zeros((), jnp.int32), 'first_size': jnp.full((), -1, jnp.int32)}

  def act(state, obs, key, deterministic):
    traces.append('act')
    return jnp.full(obs.shape[:-1] + (action_dim,), action_value, jnp.float32)

  def update(state, buffer, key, expert_buffer):
    traces.append('update')
    first = jnp.where(state['first_size'] < 0, buffer.size, state['first_size'])
    expert = jnp.mean(expert_buffer.data.reward) if expert_buffer is not None else jnp.nan
    metrics = {'size': buffer.size.astype(jnp.float32), 'expert': jnp.float32(expert)}
    return {'updates': state['updates'] + 1, 'first_size': first}, metrics

  return loops.Agent(init=init, act=act, update=update)


def _expert_buffer():
  return replay.expert_buffer(
    Transition(
      obs=jnp.zeros((4, 1)),
      action=jnp.zeros((4, 1)),
      reward=jnp.array([1.0, 2.0, 4.0, 5.0]),
      next_obs=jnp.zeros((4, 1)),
      terminated=jnp.zeros(4, bool),
      truncated=jnp.zeros(4, bool),
    )
  )


SCHEDULE = loops.LoopConfig(
  num_env_steps=40,
  num_envs=2,
  start_steps=10,
  update_after=7,
  updates_per_step=2,
  replay_capacity=40,
  eval_every=20,
  eval_episodes=3,
)


def test_jax_loop_schedule_buffer_contents_and_no_retrace():
  env = probes.ConstantReward(terminal=True, max_episode_steps=3)
  traces = []
  agent = _recording_agent(0.7, traces)
  run = partial(loops.train_jax, env, agent, SCHEDULE, expert_buffer=_expert_buffer())
  carry, metrics = run(jax.random.key(0))
  # 20 iterations of 2 transitions; the buffer first holds >= 7 after iteration 3 (8 rows), so
  # iterations 3..19 update twice each.
  assert int(carry.agent_state['updates']) == 17 * 2
  assert int(carry.agent_state['first_size']) == 8
  np.testing.assert_array_equal(metrics['env_steps'], [20, 40])
  # Mean buffer size seen by the updates of each period: sizes 8, 10, ..., 20, then 22, ..., 40.
  np.testing.assert_allclose(metrics['size'], [14.0, 31.0])
  np.testing.assert_allclose(metrics['expert'], [3.0, 3.0])
  np.testing.assert_allclose(metrics['eval_return'], [3.0, 3.0])
  np.testing.assert_allclose(metrics['train_return'], [3.0, 3.0])

  data = carry.buffer.data
  assert int(carry.buffer.size) == 40
  actions = np.asarray(data.action[:, 0])
  assert np.all(actions[10:] == np.float32(0.7))  # policy actions after start_steps
  assert np.all(actions[:10] != np.float32(0.7)) and np.all(np.abs(actions[:10]) <= 1.0)
  obs, next_obs, done = _assert_true_next_obs(data, 40, 2)
  terminated = np.asarray(data.terminated)
  assert not np.any(np.asarray(data.truncated))
  np.testing.assert_array_equal(
    terminated, np.tile([False, False, False, False, True, True], 7)[:40]
  )
  np.testing.assert_allclose(next_obs[terminated, 0], 1.0)  # the true terminal observation ...
  np.testing.assert_allclose(obs[np.flatnonzero(terminated)[:-2] + 2, 0], 0.0)  # ... then a reset

  # act: once for acting, once for evaluating; update: once abstractly for the metric shapes and
  # once in the step. A new key hits the jit cache: nothing is traced again.
  assert traces.count('act') == 2 and traces.count('update') == 2
  traced = len(traces)
  run(jax.random.key(1))
  assert len(traces) == traced


def test_transform_fn_stores_absorbing_transitions():
  # DAC absorbing states through the loop: each termination adds an (s_a, ·, s_a) row.
  env = probes.ConstantReward(terminal=True, max_episode_steps=3)
  config = dataclasses.replace(SCHEDULE, replay_capacity=64)
  carry, _ = loops.train_jax(
    env, _recording_agent(0.7, []), config, jax.random.key(0), transform_fn=absorbing.to_absorbing
  )
  data, size = carry.buffer.data, int(carry.buffer.size)
  # 40 transitions; each env terminates at its iterations 2, 5, ..., 17: 12 absorbing rows.
  assert size == 52 and data.obs.shape == (64, 2)
  assert not np.any(np.asarray(data.terminated))
  from_absorbing = np.asarray(absorbing.is_absorbing(data.obs[:size]))
  into_absorbing = np.asarray(absorbing.is_absorbing(data.next_obs[:size]))
  assert from_absorbing.sum() == 12 and into_absorbing.sum() == 24
  np.testing.assert_array_equal(np.asarray(data.reward[:size])[from_absorbing], 0.0)
  # Order kept: iteration 2 writes env 0, its absorbing row, env 1, its absorbing row.
  np.testing.assert_array_equal(from_absorbing[4:8], [False, True, False, True])


def test_loop_config_errors_name_the_field():
  env = probes.ConstantReward()
  agent = _recording_agent(0.0, [])
  for kwargs, field in (
    ({'num_env_steps': 30, 'eval_every': 20}, 'num_env_steps'),
    ({'num_envs': 3, 'eval_every': 20, 'num_env_steps': 40}, 'eval_every'),
    ({'start_steps': -1}, 'start_steps'),
    ({'updates_per_step': 0}, 'updates_per_step'),
  ):
    with pytest.raises(ValueError, match=f'LoopConfig.{field}'):
      loops.train_jax(env, agent, loops.LoopConfig(**kwargs), jax.random.key(0))


def test_evaluate_scores_whole_episodes():
  fixed = lambda obs, key: jnp.full(obs.shape[:-1] + (1,), 0.2, jnp.float32)
  returns = jax.jit(
    partial(loops.evaluate, probes.ConstantReward(False, 5), fixed), static_argnums=1
  )(jax.random.key(0), 3)
  np.testing.assert_allclose(returns, [5.0, 5.0, 5.0])
  env = probes.ActionReward(action_dim=2)
  returns = loops.evaluate(env, lambda obs, key: env.optimal_action(obs), jax.random.key(0), 4)
  np.testing.assert_allclose(returns, np.zeros(4), atol=1e-7)


# ---------------------------------------------------------------------------------------------------
# SAC on probe environments


def _critic(sac, carry, obs, action):
  return np.asarray(
    sac.critic.apply(
      carry.agent_state.critic_params,
      jnp.asarray(obs, jnp.float32),
      jnp.asarray(action, jnp.float32),
    )
  )


def test_constant_reward_values_termination_versus_truncation():
  # Truncated every 5 steps but bootstrapped: Q = r / (1 − γ) = 2.
  env = probes.ConstantReward(terminal=False, max_episode_steps=5)
  sac, agent = _sac(env)
  carry, metrics = loops.train_jax(env, agent, PROBE_LOOP, jax.random.key(0))
  q = _critic(sac, carry, [[0.0], [0.0]], [[-0.9], [0.6]])
  np.testing.assert_allclose(q, 2.0, atol=0.05)
  np.testing.assert_allclose(metrics['eval_return'], [5.0, 5.0])
  truncated = np.asarray(carry.buffer.data.truncated)
  assert truncated.sum() == 4000 // 5 and not np.any(np.asarray(carry.buffer.data.terminated))

  # Terminated after 3 steps: Q(t) = (1 − γ^{3−t}) / (1 − γ) = 1.75, 1.5, 1 at t = 0, 1, 2.
  env = probes.ConstantReward(terminal=True, max_episode_steps=3)
  sac, agent = _sac(env)
  carry, _ = loops.train_jax(env, agent, PROBE_LOOP, jax.random.key(0))
  obs = np.array([[0.0], [1 / 3], [2 / 3]])
  q = _critic(sac, carry, obs, np.zeros((3, 1)))
  np.testing.assert_allclose(
    q, np.broadcast_to(env.q_value(jnp.asarray(obs), 0.5), q.shape), atol=0.05
  )
  np.testing.assert_allclose(env.q_value(jnp.asarray(obs), 0.5), [1.75, 1.5, 1.0], rtol=1e-6)


def test_observation_reward_value():
  env = probes.ObservationReward()
  sac, agent = _sac(env)
  carry, _ = loops.train_jax(env, agent, PROBE_LOOP, jax.random.key(0))
  q = _critic(sac, carry, [[1.0], [-1.0], [1.0]], [[0.3], [-0.8], [-1.0]])
  np.testing.assert_allclose(q, np.broadcast_to([1.0, -1.0, 1.0], q.shape), atol=0.05)


def test_action_reward_optimal_action_with_learned_temperature():
  # The paper's temperature (learned from α = 1, target entropy −1): the greedy action still
  # approaches the optimum x/2 as α falls.
  env = probes.ActionReward()
  sac, agent = _sac(
    env,
    sac_agent.SACConfig(
      hidden_sizes=(32, 32), batch_size=64, actor_lr=1e-3, critic_lr=1e-3, temperature_lr=1e-3
    ),
  )
  carry, metrics = loops.train_jax(env, agent, PROBE_LOOP, jax.random.key(0))
  x = jnp.linspace(-1.0, 1.0, 9)[:, None]
  greedy = sac.act(carry.agent_state, x, jax.random.key(0), deterministic=True)
  np.testing.assert_allclose(greedy, env.optimal_action(x), atol=0.08)
  assert metrics['alpha'][-1] < metrics['alpha'][0] < 1.0
  assert metrics['eval_return'][-1] > -0.01


def test_delayed_action_reward_credit_assignment():
  env = probes.DelayedActionReward()
  sac, agent = _sac(env)
  carry, _ = loops.train_jax(env, agent, PROBE_LOOP, jax.random.key(0))
  start = jnp.array([[1.0, 0.0]])
  np.testing.assert_allclose(sac.act(carry.agent_state, start, None, True), [[0.5]], atol=0.08)
  obs = jnp.array([[1.0, 0.0]] * 3 + [[0.0, -0.5], [0.0, 0.5], [0.0, 0.9]])
  actions = jnp.array([[-1.0], [0.0], [0.5], [0.0], [0.0], [0.0]])
  q = _critic(sac, carry, obs, actions)
  # First step: −γ(a₀ − ½)² = −1.125, −0.125, 0; second step: −(m − ½)² = −1, 0, −0.16.
  np.testing.assert_allclose(q, np.broadcast_to(env.q_value(obs, actions, 0.5), q.shape), atol=0.06)


# ---------------------------------------------------------------------------------------------------
# Seeds


def test_vmap_over_seeds_equals_separate_runs():
  # Short, so float differences between batched and unbatched kernels stay at rounding level (they
  # grow chaotically over thousands of updates).
  env = probes.ObservationReward()
  _, agent = _sac(env, sac_agent.SACConfig(hidden_sizes=(16, 16), batch_size=16))
  config = loops.LoopConfig(
    num_env_steps=300,
    start_steps=100,
    update_after=50,
    replay_capacity=300,
    eval_every=150,
    eval_episodes=4,
  )
  keys = jax.random.split(jax.random.key(7), 2)
  run = partial(loops.train_jax, env, agent, config)
  batched_carry, batched_metrics = jax.jit(jax.vmap(run))(keys)
  for i in range(2):
    carry, metrics = run(keys[i])
    _assert_trees_close(jax.tree.map(lambda x: x[i], batched_metrics), metrics)
    _assert_trees_close(jax.tree.map(lambda x: x[i], batched_carry.agent_state), carry.agent_state)
    _assert_trees_close(jax.tree.map(lambda x: x[i], batched_carry.buffer), carry.buffer)
  first, second = (
    jax.tree.map(lambda x: x[i], batched_carry.agent_state.actor_params) for i in (0, 1)
  )
  assert not np.allclose(jax.tree.leaves(first)[0], jax.tree.leaves(second)[0])


def test_jax_loop_in_chunks_equals_one_call():
  # What a script does to checkpoint the jitted loop: init_carry, then train_periods chunk by chunk.
  env = probes.ObservationReward()
  _, agent = _sac(env, sac_agent.SACConfig(hidden_sizes=(16, 16), batch_size=16))
  config = loops.LoopConfig(
    num_env_steps=300,
    start_steps=100,
    update_after=50,
    replay_capacity=300,
    eval_every=100,
    eval_episodes=4,
  )
  key = jax.random.key(3)
  whole_carry, whole_metrics = loops.train_jax(env, agent, config, key)
  carry = loops.init_carry(env, agent, config, key)
  carry, first = loops.train_periods(env, agent, config, carry, 0, num_periods=1)
  carry, rest = loops.train_periods(env, agent, config, carry, 1, num_periods=2)
  chunked = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), first, rest)
  np.testing.assert_array_equal(chunked['env_steps'], [100, 200, 300])
  _assert_trees_close(chunked, whole_metrics, rtol=0, atol=0)
  _assert_trees_close(carry.agent_state, whole_carry.agent_state, rtol=0, atol=0)
  _assert_trees_close(carry.buffer, whole_carry.buffer, rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------------
# The host loop


class HostWrapper:
  """A JAX env stepped eagerly from the host with NumPy in and out: the `envs.gym_adapter` contract
  (`reset(seed) -> obs [n, d]`, `step(action)` auto-resetting, with `obs` and `next_obs`)."""

  def __init__(self, env, num_envs: int):
    self.spec, self.num_envs = env.spec, num_envs
    self._reset = jax.jit(jax.vmap(env.reset))
    self._step = jax.jit(jax.vmap(partial(step_autoreset, env)))

  def reset(self, seed=None):
    self._key, reset_key = jax.random.split(jax.random.key(0 if seed is None else seed))
    self._state, obs = self._reset(jax.random.split(reset_key, self.num_envs))
    return np.asarray(obs)

  def step(self, action):
    self._key, reset_key = jax.random.split(self._key)
    out = self._step(self._state, jnp.asarray(action), jax.random.split(reset_key, self.num_envs))
    self._state = out.state
    return out._replace(
      state=None,
      **{
        k: np.asarray(getattr(out, k))
        for k in ('obs', 'next_obs', 'reward', 'terminated', 'truncated')
      },
    )


def test_host_loop_schedule_matches_the_jax_loop_and_traces_once():
  env = probes.ConstantReward(terminal=True, max_episode_steps=3)
  traces = []
  agent = _recording_agent(0.7, traces)
  progress = []
  carry, metrics = loops.train_host(
    HostWrapper(env, 2),
    agent,
    SCHEDULE,
    jax.random.key(0),
    expert_buffer=_expert_buffer(),
    eval_env=HostWrapper(env, 3),
    progress_fn=lambda step, m: progress.append((step, m)),
  )
  assert int(carry.agent_state['updates']) == 34 and int(carry.agent_state['first_size']) == 8
  assert [step for step, _ in progress] == [20, 40]
  np.testing.assert_allclose(metrics['size'], [14.0, 31.0])
  np.testing.assert_allclose(metrics['expert'], [3.0, 3.0])
  np.testing.assert_allclose(metrics['eval_return'], [3.0, 3.0])
  np.testing.assert_allclose(metrics['train_return'], [3.0, 3.0])
  actions = np.asarray(carry.buffer.data.action[:, 0])
  assert np.all(actions[10:] == np.float32(0.7)) and np.all(actions[:10] != np.float32(0.7))
  _, next_obs, _ = _assert_true_next_obs(carry.buffer.data, 40, 2)
  terminated = np.asarray(carry.buffer.data.terminated)
  np.testing.assert_allclose(next_obs[terminated, 0], 1.0)
  assert traces.count('act') == 2 and traces.count('update') == 2  # as in the jax loop


def test_host_loop_learns_the_truncation_value_and_resumes_exactly():
  env = probes.ConstantReward(terminal=False, max_episode_steps=5)
  sac, agent = _sac(env)
  config = loops.LoopConfig(
    num_env_steps=2000,
    start_steps=500,
    update_after=100,
    replay_capacity=2000,
    eval_every=1000,
    eval_episodes=2,
  )
  saved = {}

  def checkpoint_fn(step, carry):
    saved[step] = jax.tree.map(jnp.copy, carry)  # a copy: the carry is donated on the next step

  carry, metrics = loops.train_host(
    HostWrapper(env, 1),
    agent,
    config,
    jax.random.key(0),
    eval_env=HostWrapper(env, 2),
    checkpoint_fn=checkpoint_fn,
  )
  assert sorted(saved) == [1000, 2000] and int(saved[1000].env_steps) == 1000
  np.testing.assert_allclose(metrics['eval_return'], [5.0, 5.0])
  np.testing.assert_allclose(_critic(sac, carry, [[0.0]], [[0.3]]), 2.0, atol=0.1)
  assert int(carry.agent_state.step) == 2000 - 99

  # Resuming from the step-1000 carry repeats the uninterrupted run exactly: this env's episodes
  # are aligned with the period (1000 % 5 == 0) and the key stream continues from the carry.
  resumed, resumed_metrics = loops.train_host(
    HostWrapper(env, 1),
    agent,
    config,
    jax.random.key(123),
    eval_env=HostWrapper(env, 2),
    initial=saved[1000],
  )
  np.testing.assert_array_equal(resumed_metrics['env_steps'], [2000])
  _assert_trees_close(resumed.agent_state, carry.agent_state, rtol=0, atol=0)
  _assert_trees_close(resumed.buffer, carry.buffer, rtol=0, atol=0)


def test_host_loop_on_gymnasium_stores_true_terminal_observations(tmp_path, monkeypatch):
  pytest.importorskip('gymnasium')
  pytest.importorskip('mujoco')
  from envs.gym_adapter import make_gym

  monkeypatch.chdir(tmp_path)  # MuJoCo writes MUJOCO_LOG.TXT into the working directory
  env = make_gym('Hopper-v5', num_envs=2, seed=0)
  config = loops.LoopConfig(
    num_env_steps=400,
    num_envs=2,
    start_steps=200,
    update_after=100,
    replay_capacity=400,
    eval_every=200,
    eval_episodes=2,
  )
  carry, metrics = loops.train_host(
    env,
    _recording_agent(0.1, [], action_dim=3),
    config,
    jax.random.key(0),
    eval_env=make_gym('Hopper-v5', 2, seed=1),
  )
  data = carry.buffer.data
  obs, next_obs, done = _assert_true_next_obs(data, 400, 2)
  terminated = np.asarray(data.terminated)
  assert terminated.sum() >= 2  # random actions make Hopper fall within 200 steps
  # A terminal row's next_obs is the fallen state, not the reset observation that follows it.
  rows = np.flatnonzero(terminated[:-2])
  assert np.all(np.abs(next_obs[rows] - obs[rows + 2]).max(axis=1) > 1e-3)
  np.testing.assert_array_equal(np.asarray(data.action[200:]), np.float32(0.1))
  assert int(carry.agent_state['updates']) == (400 - 100) // 2 + 1
  # The deterministic policy is scored on one episode of each evaluation environment.
  assert np.all(np.isfinite(metrics['eval_return']))
  env.close()
