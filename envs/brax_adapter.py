"""Brax environments behind the JAX-native interface of `envs/core.py`.

  env = make_brax('hopper', max_episode_steps=1000)
  state, obs = env.reset(key)
  state, obs, reward, terminated, truncated, info = env.step(state, action)

Both functions are pure, so `jit`, `vmap` over seeds and `lax.scan` over steps apply directly, and
`envs.core.step_autoreset` resets finished episodes inside `jit`.

The adapter wraps Brax's *raw* environment (`brax.envs.get_environment`), whose `done` marks
termination only, and keeps its own step counter for the time limit instead of using Brax's
`EpisodeWrapper`: the two signals stay separate and `truncated` is `steps >= max_episode_steps` and
not terminated (the same exclusive convention as `EpisodeWrapper`'s `info['truncation']` and as
`envs/gym_adapter.py`). Brax's own auto-reset wrappers are not used: they overwrite the true next
observation with the reset one, which an off-policy replay buffer must not store.

Brax's environment classes differ from Gymnasium's MuJoCo tasks of the same name (different
physics pipelines, observation layouts and reset noise), so returns are not comparable between the
two adapters. Brax warns that its own environments are no longer actively maintained.
"""

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from envs.core import BoxSpec, EnvError, EnvSpec, check_action


@flax.struct.dataclass
class BraxEnvState:
  """`env_state`: Brax's `State` (physics state, observation, reward, done, metrics, info);
  `steps`: int32 steps taken in the current episode."""

  env_state: Any
  steps: jax.Array


def _import_brax_envs():
  try:
    from brax import envs as brax_envs  # deferred: Brax is optional
  except ImportError as err:
    raise ImportError(
      'envs.brax_adapter needs Brax: `pip install brax` (a dependency of cljax; '
      'it pulls mujoco-mjx)'
    ) from err
  return brax_envs


class BraxEnv:
  """A Brax environment as an `envs.core.Environment`: `spec`, pure `reset(key)` and
  `step(state, action)`. `info` is Brax's `metrics` dict of the step (e.g. reward terms)."""

  def __init__(self, name: str, env, max_episode_steps: int):
    self._env = env
    obs_shape = jax.eval_shape(env.reset, jax.random.key(0)).obs
    if not isinstance(obs_shape, jax.ShapeDtypeStruct) or len(obs_shape.shape) != 1:
      raise EnvError(f'{name}: only flat array observations are supported, got {obs_shape}')
    act_dim = int(env.action_size)
    sys = getattr(env, 'sys', None)
    if sys is not None and getattr(sys, 'actuator', None) is not None:
      ctrl_range = np.asarray(sys.actuator.ctrl_range, np.float32).reshape(act_dim, 2)
      low, high = ctrl_range[:, 0], ctrl_range[:, 1]
    else:
      # Brax's convention for environments without a MuJoCo system (e.g. 'fast').
      low, high = -np.ones(act_dim, np.float32), np.ones(act_dim, np.float32)
    inf = np.full(obs_shape.shape, np.inf, np.float32)
    self.spec = EnvSpec(
      name=name,
      observation=BoxSpec(tuple(obs_shape.shape), -inf, inf),
      action=BoxSpec((act_dim,), low, high),
      max_episode_steps=max_episode_steps,
    )

  def reset(self, key: jax.Array) -> tuple[BraxEnvState, jax.Array]:
    env_state = self._env.reset(key)
    return BraxEnvState(env_state, jnp.zeros((), jnp.int32)), env_state.obs

  def step(self, state: BraxEnvState, action: jax.Array):
    check_action(self.spec, action)
    env_state = self._env.step(state.env_state, action)
    steps = state.steps + 1
    terminated = jnp.asarray(env_state.done) > 0.5
    # A terminal state on the last allowed step is terminal: never bootstrap through it.
    truncated = jnp.logical_and(steps >= self.spec.max_episode_steps, jnp.logical_not(terminated))
    reward = jnp.asarray(env_state.reward, jnp.float32)
    return (
      BraxEnvState(env_state, steps),
      env_state.obs,
      reward,
      terminated,
      truncated,
      dict(env_state.metrics),
    )


def make_brax(name: str, max_episode_steps: int = 1000, **kwargs: Any) -> BraxEnv:
  """The Brax environment `name` (e.g. 'ant', 'halfcheetah', 'hopper', 'walker2d', 'fast') with a
  time limit of `max_episode_steps` (Brax's default episode length). `kwargs` go to
  `brax.envs.get_environment` (e.g. `backend='generalized'`, `terminate_when_unhealthy=False`).

  Raises EnvError for an unknown name (listing Brax's registry) or a non-positive time limit, and
  ImportError with an install hint when Brax is missing.
  """
  if not isinstance(max_episode_steps, (int, np.integer)) or max_episode_steps < 1:
    raise EnvError(f'max_episode_steps must be a positive int, got {max_episode_steps!r}')
  brax_envs = _import_brax_envs()
  # Brax exposes its registry only as a module-private dict; fall back to no list if it moves.
  registry = getattr(brax_envs, '_envs', {})
  if registry and name not in registry:
    raise EnvError(f'name must be one of {tuple(sorted(registry))}, got {name!r}')
  try:
    env = brax_envs.get_environment(name, **kwargs)
  except KeyError as err:
    raise EnvError(f'name {name!r} is not a registered Brax environment') from err
  return BraxEnv(name, env, int(max_episode_steps))
