r"""Two off-policy training loops over one agent interface: a whole run in one `jit` for JAX-native
environments, and a thin Python loop for host-side (Gymnasium) environments.

An `Agent` is three pure functions (SAC: `irl.sac.agent.as_agent`; OPIRL plugs in its own, whose
`update` also trains a discriminator on the expert buffer):

  state = agent.init(key)
  action = agent.act(state, obs [n, d], key, deterministic)           # actions in the env's box
  state, metrics = agent.update(state, replay_buffer, key, expert_buffer)

`update` draws its own batches from the buffers, so each agent chooses its batch sizes and how many
independent samples it needs; `expert_buffer` is whatever the loop was given (`None` for plain RL).
Metrics are float scalars; a NaN marks "not computed on this update" (e.g. SAC's actor entries
between actor updates) and is left out of averages.

Both loops share the schedule (`LoopConfig`), counted in environment transitions over all `num_envs`
environments: one iteration steps every environment once (n transitions); iteration i acts uniformly
at random while i·n < `start_steps`, else with `agent.act(..., deterministic=False)`; it writes the n
transitions (the true next observation, `terminated` and `truncated` as the environment reports
them) into the replay buffer, and then, once (i + 1)·n >= `update_after`, makes `updates_per_step`
agent updates. Every `eval_every` transitions the deterministic policy is scored on `eval_episodes`
fresh episodes of the true reward. An optional `transform_fn(transitions) -> (rows, valid)` maps the
n transitions of a step to the rows that are stored, with a validity mask (`irl.replay.add`): with
`transform_fn=irl.absorbing.to_absorbing` the buffer holds DAC absorbing-state rows (the agent then
learns on indicator-augmented observations and must append the indicator itself when acting).

  carry, metrics = train_jax(env, agent, config, key)                               # one seed
  carry, metrics = jax.jit(jax.vmap(partial(train_jax, env, agent, config)))(keys)  # many seeds
  carry, metrics = train_host(gym_env, agent, config, key, eval_env=..., progress_fn=...)

`metrics` has one entry per evaluation period: `env_steps`, `eval_return` (mean over the evaluation
episodes), `train_return` (mean return of the training episodes that ended in the period, NaN if
none) and the period mean of each agent metric.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from envs.core import EnvError, EnvSpec, step_autoreset
from irl import hparams, replay
from irl.replay import ExpertBuffer, ReplayBuffer, Transition


class Agent(NamedTuple):
  """The loop-facing interface of an off-policy learner (module docstring). Hashable (its fields are
  functions), so it can be a static argument of `jit`."""

  init: Callable[[jax.Array], Any]
  act: Callable[[Any, jax.Array, jax.Array, bool], jax.Array]
  update: Callable[[Any, ReplayBuffer, jax.Array, ExpertBuffer | None], tuple[Any, dict]]


@dataclasses.dataclass(frozen=True)
class LoopConfig:
  """The data-collection schedule, in environment transitions over all `num_envs` environments.

  `num_env_steps` must be a multiple of `eval_every`, and `eval_every` of `num_envs`. Batches are
  drawn with replacement, so updates may start as soon as the buffer holds a row, but
  `update_after` at least the agent's batch size is the usual warm-up. The defaults follow common
  SAC practice (Spinning Up: 10k random steps, updates from 1k); OPIRL uses 2,000 random steps and
  updates from 1,000.
  """

  num_env_steps: int = 1_000_000
  num_envs: int = 1
  start_steps: int = 10_000
  update_after: int = 1_000
  updates_per_step: int = 1
  replay_capacity: int = 1_000_000
  eval_every: int = 10_000
  eval_episodes: int = 10

  def validate(self) -> None:
    """Raises ValueError naming the first bad field and its allowed values."""
    hparams.check_positive_ints(
      'LoopConfig',
      self,
      (
        'num_env_steps',
        'num_envs',
        'updates_per_step',
        'replay_capacity',
        'eval_every',
        'eval_episodes',
        'update_after',
      ),
    )
    if not (hparams.is_int(self.start_steps) and self.start_steps >= 0):
      raise ValueError(f'LoopConfig.start_steps must be an int >= 0, got {self.start_steps!r}')
    if self.eval_every % self.num_envs:
      raise ValueError(
        f'LoopConfig.eval_every must be a multiple of num_envs ({self.num_envs}), '
        f'got {self.eval_every}'
      )
    if self.num_env_steps % self.eval_every:
      raise ValueError(
        f'LoopConfig.num_env_steps must be a multiple of eval_every '
        f'({self.eval_every}), got {self.num_env_steps}'
      )
    if self.replay_capacity < self.num_envs:
      raise ValueError(
        f'LoopConfig.replay_capacity must be >= num_envs ({self.num_envs}), got '
        f'{self.replay_capacity}'
      )


def random_action(spec: EnvSpec, key: jax.Array, num: int) -> jax.Array:
  """Uniform actions [num, |A|] in the spec's (finite) box."""
  low = np.broadcast_to(np.asarray(spec.action.low, np.float32), spec.action.shape)
  high = np.broadcast_to(np.asarray(spec.action.high, np.float32), spec.action.shape)
  if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
    raise EnvError(
      f'{spec.name}: uniform random actions need finite spec.action.low/high, got '
      f'low={low.tolist()}, high={high.tolist()}'
    )
  return jax.random.uniform(key, (num,) + tuple(spec.action.shape), jnp.float32, low, high)


TransformFn = Callable[[Transition], tuple[Transition, jax.Array]]


def _rows(transitions: Transition, transform_fn: TransformFn | None):
  """The rows to store for one vectorised step, and their validity mask (None: all valid)."""
  if transform_fn is None:
    return transitions, None
  return transform_fn(transitions)


def _empty_buffer(
  obs: jax.Array, spec: EnvSpec, capacity: int, transform_fn: TransformFn | None
) -> ReplayBuffer:
  """A replay buffer shaped like the stored rows of a step from observations `obs` [n, d]."""
  n = obs.shape[0]
  transitions = Transition(
    obs=jnp.asarray(obs, jnp.float32),
    action=jnp.zeros((n,) + tuple(spec.action.shape), jnp.float32),
    reward=jnp.zeros(n, jnp.float32),
    next_obs=jnp.asarray(obs, jnp.float32),
    terminated=jnp.zeros(n, jnp.bool_),
    truncated=jnp.zeros(n, jnp.bool_),
  )
  rows, _ = _rows(transitions, transform_fn)
  return replay.init(jax.tree.map(lambda x: x[0], rows), capacity)


def _zeros(shapes):
  return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


def _sum_count(metrics: dict) -> dict:
  """Per metric (sum over non-NaN entries, number of them) along the leading axis."""
  return {
    k: (
      jnp.sum(jnp.where(jnp.isnan(v), 0.0, v), axis=0),
      jnp.sum(~jnp.isnan(v), axis=0, dtype=jnp.int32),
    )
    for k, v in metrics.items()
  }


def _mean(sum_count: dict) -> dict:
  return {k: jnp.where(c > 0, s / jnp.maximum(c, 1), jnp.nan) for k, (s, c) in sum_count.items()}


def _updates(
  agent: Agent, num_updates: int, agent_state, buffer: ReplayBuffer, key: jax.Array, expert_buffer
) -> tuple[Any, dict]:
  """`num_updates` agent updates in a scan; returns the state and per-metric (sum, count)."""

  def body(state, update_key):
    return agent.update(state, buffer, update_key, expert_buffer)

  agent_state, metrics = jax.lax.scan(body, agent_state, jax.random.split(key, num_updates))
  return agent_state, _sum_count(metrics)


def evaluate(
  env, policy_fn: Callable[[jax.Array, jax.Array], jax.Array], key: jax.Array, num_episodes: int
) -> jax.Array:
  """Undiscounted returns [num_episodes] of `policy_fn(obs [num_episodes, d], key) -> actions` on
  fresh episodes of a JAX-native `env`, each up to its end (terminated or truncated at the env's
  `spec.max_episode_steps`). Pure and jittable; works for any policy (a scripted expert too)."""
  reset_key, policy_key = jax.random.split(key)
  state, obs = jax.vmap(env.reset)(jax.random.split(reset_key, num_episodes))

  def body(carry, step_key):
    state, obs, total, alive = carry
    action = policy_fn(obs, step_key)
    state, obs, reward, terminated, truncated, _ = jax.vmap(env.step)(state, action)
    total = total + jnp.where(alive, reward, 0.0)
    alive = alive & ~(terminated | truncated)
    return (state, obs, total, alive), None

  init = (state, obs, jnp.zeros(num_episodes, jnp.float32), jnp.ones(num_episodes, jnp.bool_))
  steps = env.spec.max_episode_steps
  (_, _, total, _), _ = jax.lax.scan(body, init, jax.random.split(policy_key, steps))
  return total


# ---------------------------------------------------------------------------------------------------
# The whole run in one jit


@flax.struct.dataclass
class TrainCarry:
  """The state of a `train_jax` run between environment steps."""

  agent_state: Any
  buffer: ReplayBuffer
  env_state: Any
  obs: jax.Array  # [num_envs, d], where each environment acts from next
  episode_return: jax.Array  # [num_envs], undiscounted return of each running episode so far
  key: jax.Array


@functools.partial(jax.jit, static_argnums=(0, 1, 2), static_argnames=('transform_fn',))
def init_carry(
  env, agent: Agent, config: LoopConfig, key: jax.Array, transform_fn: TransformFn | None = None
) -> TrainCarry:
  """The `TrainCarry` a `train_jax` run starts from (agent initialised, environments reset, empty
  buffer); a function of `key` only."""
  config.validate()
  init_key, reset_key, key = jax.random.split(key, 3)
  agent_state = agent.init(init_key)
  env_state, obs = jax.vmap(env.reset)(jax.random.split(reset_key, config.num_envs))
  buffer = _empty_buffer(obs, env.spec, config.replay_capacity, transform_fn)
  return TrainCarry(
    agent_state=agent_state,
    buffer=buffer,
    env_state=env_state,
    obs=obs,
    episode_return=jnp.zeros(config.num_envs, jnp.float32),
    key=key,
  )


@functools.partial(
  jax.jit,
  static_argnums=(0, 1, 2),
  static_argnames=('num_periods', 'transform_fn', 'state_constraint'),
)
def train_periods(
  env,
  agent: Agent,
  config: LoopConfig,
  carry: TrainCarry,
  first_period: jax.Array,
  *,
  num_periods: int,
  expert_buffer: ExpertBuffer | None = None,
  transform_fn: TransformFn | None = None,
  state_constraint: Callable[[Any], Any] | None = None,
) -> tuple[TrainCarry, dict]:
  """Evaluation periods `first_period, ..., first_period + num_periods - 1` of a `train_jax` run,
  continuing from `carry` (the carry after period `first_period - 1`, or `init_carry`'s).
  `state_constraint` (e.g. `cljax.mesh.constrain_state`) is applied to the agent state after
  every environment step's updates.

  Running a run's periods in several calls gives exactly the numbers of one call: the schedule
  depends only on the period index and everything random comes from `carry.key`. This is how a
  script checkpoints (the carry is a pytree: buffer, agent and environment states) and resumes a run
  of the jitted loop. `first_period` is traced (no recompilation per chunk); `num_periods` is static.
  """
  config.validate()
  n = config.num_envs
  spec = env.spec
  iterations_per_period = config.eval_every // n
  update_shapes = jax.eval_shape(
    functools.partial(_updates, agent, config.updates_per_step),
    carry.agent_state,
    carry.buffer,
    jax.random.key(0),
    expert_buffer,
  )[1]

  def env_step(carry: TrainCarry, iteration: jax.Array):
    key, act_key, random_key, reset_key, update_key = jax.random.split(carry.key, 5)
    policy_action = agent.act(carry.agent_state, carry.obs, act_key, False)
    uniform_action = random_action(spec, random_key, n)
    action = jnp.where(
      iteration * n < config.start_steps, uniform_action, policy_action.astype(jnp.float32)
    )
    out = jax.vmap(functools.partial(step_autoreset, env))(
      carry.env_state, action, jax.random.split(reset_key, n)
    )
    buffer = replay.add(
      carry.buffer,
      *_rows(
        Transition(
          obs=carry.obs,
          action=action,
          reward=out.reward,
          next_obs=out.next_obs,
          terminated=out.terminated,
          truncated=out.truncated,
        ),
        transform_fn,
      ),
    )
    agent_state, update_metrics = jax.lax.cond(
      (iteration + 1) * n >= config.update_after,
      lambda s: _updates(agent, config.updates_per_step, s, buffer, update_key, expert_buffer),
      lambda s: (s, _zeros(update_shapes)),
      carry.agent_state,
    )
    if state_constraint is not None:
      agent_state = state_constraint(agent_state)
    episode_return = carry.episode_return + out.reward
    done = out.terminated | out.truncated
    finished = (jnp.sum(jnp.where(done, episode_return, 0.0)), jnp.sum(done, dtype=jnp.int32))
    carry = TrainCarry(
      agent_state=agent_state,
      buffer=buffer,
      env_state=out.state,
      obs=out.obs,
      episode_return=jnp.where(done, 0.0, episode_return),
      key=key,
    )
    return carry, (update_metrics, finished)

  def period(carry: TrainCarry, period_index: jax.Array):
    iterations = period_index * iterations_per_period + jnp.arange(iterations_per_period)
    carry, (update_metrics, finished) = jax.lax.scan(env_step, carry, iterations)
    key, eval_key = jax.random.split(carry.key)
    carry = carry.replace(key=key)
    agent_state = carry.agent_state
    returns = evaluate(
      env, lambda o, k: agent.act(agent_state, o, k, True), eval_key, config.eval_episodes
    )
    metrics = _mean(jax.tree.map(lambda x: jnp.sum(x, axis=0), update_metrics))
    finished_sum, finished_count = jnp.sum(finished[0]), jnp.sum(finished[1])
    metrics['train_return'] = jnp.where(
      finished_count > 0, finished_sum / jnp.maximum(finished_count, 1), jnp.nan
    )
    metrics['eval_return'] = jnp.mean(returns)
    return carry, metrics

  periods = jnp.asarray(first_period, jnp.int32) + jnp.arange(num_periods, dtype=jnp.int32)
  carry, metrics = jax.lax.scan(period, carry, periods)
  metrics['env_steps'] = (periods + 1) * config.eval_every
  return carry, metrics


@functools.partial(jax.jit, static_argnums=(0, 1, 2), static_argnames=('transform_fn',))
def train_jax(
  env,
  agent: Agent,
  config: LoopConfig,
  key: jax.Array,
  expert_buffer: ExpertBuffer | None = None,
  transform_fn: TransformFn | None = None,
) -> tuple[TrainCarry, dict]:
  """A whole off-policy run on the JAX-native `env` as one jitted function of `key` (module
  docstring for the schedule): an outer `lax.scan` over evaluation periods, an inner one over
  vectorised environment steps with `envs.core.step_autoreset`, updates under a `lax.cond` on the
  iteration index, so under `vmap` over seeds nothing is computed before `update_after`.
  `init_carry` + `train_periods` run the same thing in chunks (for checkpoints).

  `env`, `agent`, `config` and `transform_fn` are static (hashable); `expert_buffer` passes through
  to `agent.update` unchanged (one buffer for all seeds under `vmap`: close over it with `partial`).
  Returns (final `TrainCarry`, metrics with a leading axis of num_env_steps / eval_every).
  """
  config.validate()
  carry = init_carry(env, agent, config, key, transform_fn=transform_fn)
  return train_periods(
    env,
    agent,
    config,
    carry,
    0,
    num_periods=config.num_env_steps // config.eval_every,
    expert_buffer=expert_buffer,
    transform_fn=transform_fn,
  )


# ---------------------------------------------------------------------------------------------------
# The host loop


@flax.struct.dataclass
class HostCarry:
  """What a `train_host` run carries between periods (and what `checkpoint_fn` receives): host
  environments are not part of it, so a resumed run starts fresh episodes."""

  agent_state: Any
  buffer: ReplayBuffer
  key: jax.Array
  env_steps: jax.Array  # int32 scalar, transitions collected so far


def train_host(
  env,
  agent: Agent,
  config: LoopConfig,
  key: jax.Array,
  *,
  expert_buffer: ExpertBuffer | None = None,
  transform_fn: TransformFn | None = None,
  eval_env=None,
  progress_fn: Callable[[int, dict], None] | None = None,
  checkpoint_fn: Callable[[int, HostCarry], None] | None = None,
  initial: HostCarry | None = None,
) -> tuple[HostCarry, dict]:
  """The `train_jax` schedule as a Python loop over a host-side vectorised `env`.

  `env` has `spec`, `num_envs == config.num_envs`, `reset(seed) -> obs [n, d]` and
  `step(action [n, |A|])` returning `obs` (to act from), `next_obs` (the true next observation, which
  goes into the buffer), `reward`, `terminated`, `truncated` as NumPy batches, auto-resetting
  (`envs.gym_adapter.GymEnv`). The agent's functions run jitted (each traces once); the replay buffer
  and the agent state are donated to the jitted `add` and update, so they are updated in place.

  `expert_buffer` and `transform_fn` are as in `train_jax`. Every `eval_every` transitions: when
  `eval_env` (another host env) is given, one episode on each of its environments with the
  deterministic policy (`eval_return`, the mean); then `progress_fn(env_steps, metrics)` with that
  period's metrics (floats), then `checkpoint_fn(env_steps, carry)`, which must be done with the
  carry's arrays when it returns (they are donated next step; `cljax.checkpoint.Checkpointer`
  saves synchronously). `initial` resumes from such a carry, with fresh episodes. The environments
  are seeded from `key` (`env.reset(seed)`), so a run is a function of `key` and the environments'
  own determinism. Returns (final carry, metrics with one array entry per period of this call).
  """
  config.validate()
  n = config.num_envs
  if getattr(env, 'num_envs', n) != n:
    raise ValueError(f'env.num_envs ({env.num_envs}) must equal LoopConfig.num_envs ({n})')
  spec = env.spec

  def explore(agent_state, obs, key, random_phase):
    act_key, random_key = jax.random.split(key)
    policy_action = agent.act(agent_state, obs, act_key, False).astype(jnp.float32)
    return jnp.where(random_phase, random_action(spec, random_key, obs.shape[0]), policy_action)

  def learn(agent_state, buffer, key, expert_buffer, accumulated):
    agent_state, sum_count = _updates(
      agent, config.updates_per_step, agent_state, buffer, key, expert_buffer
    )
    accumulated = jax.tree.map(jnp.add, accumulated, sum_count)
    return agent_state, accumulated

  explore_fn = jax.jit(explore)
  greedy_fn = jax.jit(lambda state, obs, key: agent.act(state, obs, key, True))
  add_fn = jax.jit(
    lambda buffer, transitions: replay.add(buffer, *_rows(transitions, transform_fn)),
    donate_argnums=0,
  )
  learn_fn = jax.jit(learn, donate_argnums=(0, 4))

  if initial is None:
    key, init_key, seed_key = jax.random.split(key, 3)
    agent_state = jax.jit(agent.init)(init_key)
    obs = env.reset(seed=_seed(seed_key))
    buffer = _empty_buffer(obs, spec, config.replay_capacity, transform_fn)
    start = 0
  else:
    agent_state, buffer, key = initial.agent_state, initial.buffer, initial.key
    start = int(initial.env_steps)
    if start % config.eval_every:
      raise ValueError(
        f'initial.env_steps ({start}) must be a multiple of eval_every ({config.eval_every})'
      )
    # Seeded without advancing the key stream, so the rest of the run draws what it would have.
    obs = env.reset(seed=_seed(jax.random.fold_in(key, start)))

  metric_shapes = jax.eval_shape(
    functools.partial(_updates, agent, config.updates_per_step),
    agent_state,
    buffer,
    jax.random.key(0),
    expert_buffer,
  )[1]
  zero_metrics = lambda: _zeros(metric_shapes)
  accumulated = zero_metrics()
  episode_return = np.zeros(n, np.float64)
  finished_sum, finished_count = 0.0, 0
  history: dict[str, list] = {}

  for env_steps in range(start, config.num_env_steps, n):
    key, explore_key, learn_key = jax.random.split(key, 3)
    action = np.asarray(explore_fn(agent_state, obs, explore_key, env_steps < config.start_steps))
    out = env.step(action)
    buffer = add_fn(
      buffer,
      Transition(
        obs=np.asarray(obs, np.float32),
        action=action,
        reward=np.asarray(out.reward, np.float32),
        next_obs=np.asarray(out.next_obs, np.float32),
        terminated=np.asarray(out.terminated, bool),
        truncated=np.asarray(out.truncated, bool),
      ),
    )
    episode_return += out.reward
    done = np.asarray(out.terminated) | np.asarray(out.truncated)
    finished_sum += float(np.sum(episode_return[done]))
    finished_count += int(np.sum(done))
    episode_return[done] = 0.0
    obs = out.obs
    if env_steps + n >= config.update_after:
      agent_state, accumulated = learn_fn(
        agent_state, buffer, learn_key, expert_buffer, accumulated
      )

    if (env_steps + n) % config.eval_every == 0:
      metrics = {k: float(v) for k, v in _mean(accumulated).items()}
      metrics['train_return'] = finished_sum / finished_count if finished_count else float('nan')
      if eval_env is not None:
        key, eval_key = jax.random.split(key)
        metrics['eval_return'] = float(
          np.mean(evaluate_host(eval_env, greedy_fn, agent_state, eval_key))
        )
      metrics['env_steps'] = env_steps + n
      for k, v in metrics.items():
        history.setdefault(k, []).append(v)
      if progress_fn is not None:
        progress_fn(env_steps + n, metrics)
      accumulated = zero_metrics()
      finished_sum, finished_count = 0.0, 0
      if checkpoint_fn is not None:
        checkpoint_fn(
          env_steps + n, HostCarry(agent_state, buffer, key, jnp.asarray(env_steps + n, jnp.int32))
        )

  carry = HostCarry(
    agent_state=agent_state,
    buffer=buffer,
    key=key,
    env_steps=jnp.asarray(config.num_env_steps, jnp.int32),
  )
  return carry, {k: np.asarray(v) for k, v in history.items()}


def abstract_host_carry(
  spec: EnvSpec, agent: Agent, config: LoopConfig, transform_fn: TransformFn | None = None
) -> HostCarry:
  """The shapes and dtypes of a `train_host` carry (a restore target for checkpoints)."""
  obs = jnp.zeros((config.num_envs,) + tuple(spec.observation.shape), jnp.float32)
  return jax.eval_shape(
    lambda key: HostCarry(
      agent.init(key),
      _empty_buffer(obs, spec, config.replay_capacity, transform_fn),
      key,
      jnp.zeros((), jnp.int32),
    ),
    jax.random.key(0),
  )


def _seed(key: jax.Array) -> int:
  return int(jax.random.randint(key, (), 0, 2**31 - 1))


def evaluate_host(env, greedy_fn, agent_state, key: jax.Array) -> np.ndarray:
  """Undiscounted return of one episode on each of a host env's environments (the first episode
  each runs; the later ones, auto-reset, are ignored), with the deterministic policy."""
  seed_key, key = jax.random.split(key)
  obs = env.reset(seed=_seed(seed_key))
  total = np.zeros(obs.shape[0], np.float64)
  alive = np.ones(obs.shape[0], bool)
  for _ in range(env.spec.max_episode_steps):
    key, act_key = jax.random.split(key)
    out = env.step(np.asarray(greedy_fn(agent_state, obs, act_key)))
    total += np.where(alive, out.reward, 0.0)
    alive &= ~(np.asarray(out.terminated) | np.asarray(out.truncated))
    obs = out.obs
    if not alive.any():
      break
  return total
