"""The one environment interface.

A JAX-native environment is a pair of pure functions over an explicit state pytree, so a whole training
run can be one `jit(lax.scan(...))` and `vmap` over seeds:

  state, obs = env.reset(key)
  state, obs, reward, terminated, truncated, info = env.step(state, action)

`obs` returned by `step` is always the true next observation of the transition (never an
auto-reset observation); `terminated` marks a true terminal state (no bootstrapping), `truncated` a
time limit (bootstrap from `obs`). Resetting after an episode ends is the caller's job: `step_autoreset`
below does it inside `jit`. Host-side environments (Gymnasium) implement the same method names over
NumPy batches; see `envs/gym_adapter.py`.
"""

from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp


class Transition(NamedTuple):
  """One transition (or a batch of them along leading axes).

  `next_obs` is the true next observation of the step (this module's contract; for OPIRL it may be
  the absorbing state, `irl.absorbing`). `terminated` marks a true termination (no bootstrapping past it), `truncated` a
  time-limit cut, which still bootstraps.
  """

  obs: Any
  action: Any
  reward: Any
  next_obs: Any
  terminated: Any
  truncated: Any


class EnvError(ValueError):
  """A bad environment name, option or action. The message names the field and the allowed values."""


class BoxSpec(NamedTuple):
  """A box-shaped array space: `shape`, `dtype` and element-wise bounds (±inf where unbounded)."""

  shape: tuple[int, ...]
  low: Any
  high: Any
  dtype: Any = jnp.float32


class EnvSpec(NamedTuple):
  """What an agent needs to know about an environment, static under `jit`."""

  name: str
  observation: BoxSpec
  action: BoxSpec
  max_episode_steps: int


class Environment(Protocol):
  """A JAX-native environment (pure `reset` and `step`, jittable and vmappable)."""

  spec: EnvSpec

  def reset(self, key: jax.Array) -> tuple[Any, jax.Array]: ...

  def step(
    self, state: Any, action: jax.Array
  ) -> tuple[Any, jax.Array, jax.Array, jax.Array, jax.Array, dict]: ...


def check_action(spec: EnvSpec, action) -> None:
  """Raises EnvError for an action whose (static) shape is not the spec's."""
  shape = tuple(jnp.shape(action))
  if shape != tuple(spec.action.shape):
    raise EnvError(f'{spec.name}: action must have shape {tuple(spec.action.shape)}, got {shape}')


class AutoResetStep(NamedTuple):
  state: Any  # the state to act from next (reset if the episode ended)
  obs: jax.Array  # the observation to act from next
  next_obs: jax.Array  # the transition's true next observation (store this in a replay buffer)
  reward: jax.Array
  terminated: jax.Array
  truncated: jax.Array
  info: dict


def step_autoreset(env: Environment, state, action, key: jax.Array) -> AutoResetStep:
  """One step; when the episode ends (terminated or truncated) the next state comes from
  `env.reset(key)`. Pure and jittable; `key` is only used on reset."""
  next_state, next_obs, reward, terminated, truncated, info = env.step(state, action)
  reset_state, reset_obs = env.reset(key)
  done = jnp.logical_or(terminated, truncated)
  pick = lambda a, b: jnp.where(jnp.reshape(done, done.shape + (1,) * (a.ndim - done.ndim)), a, b)
  state = jax.tree.map(pick, reset_state, next_state)
  obs = pick(reset_obs, next_obs)
  return AutoResetStep(state, obs, next_obs, reward, terminated, truncated, info)
