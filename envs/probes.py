r"""Probe environments with known answers, for testing value learning and policy learning end to end
(the idea of Andy Jones' "Debugging RL, Without the Agonizing Pain", 2021, and rejax's probe tests).

Each isolates one piece of an off-policy learner; with temperature α = 0 the optimal Q-values are
exact closed forms, given by each class's `q_value` (and `optimal_action` where the action matters):

  ConstantReward(terminal=True)    r every step, obs = elapsed fraction t/H, terminated at step H:
                                   Q(t) = r (1 − γ^{H−t}) / (1 − γ), the discounted rest of the episode
                                   (H = 1: Q = r). Tests discounting and the stop at a termination.
  ConstantReward(terminal=False)   r every step, obs constant 0, truncated at step H, never terminated:
                                   bootstrapping through the time limit gives Q = r / (1 − γ) for any H.
                                   Tests that truncation is not treated as termination.
  ObservationReward                one step, obs ±1 at random, reward = obs: Q(s) = s. Tests that the
                                   critic uses the observation.
  ActionReward                     one step, obs x ~ U(−1, 1)^k, reward −‖a − x/2‖²: the optimal action
                                   is x/2, Q(s, a) = −‖a − x/2‖². Tests the actor and the action input.
  DelayedActionReward              two steps: the first action a₀ is remembered in the observation and
                                   scored only at the second step, reward −(m − ½)² then; Q(s₀, a₀) =
                                   −γ (a₀ − ½)², optimal a₀ = ½. Tests credit assignment through the
                                   bootstrap.

All are JAX-native (`envs.core` interface), frozen and hashable, with actions in [−1, 1]^k (actions are
clipped into the box).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from envs.core import BoxSpec, EnvError, EnvSpec, check_action


class ProbeState(NamedTuple):
  obs: jax.Array  # float32 [obs_dim], the current observation
  t: jax.Array  # int32 [], steps taken in this episode


def _check_positive_int(owner: str, name: str, value) -> None:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
    raise EnvError(f'{owner}: {name} must be a positive int, got {value!r}')


def _spec(
  name: str, obs_dim: int, obs_low: float, obs_high: float, action_dim: int, max_episode_steps: int
) -> EnvSpec:
  return EnvSpec(
    name=name,
    observation=BoxSpec(
      (obs_dim,),
      np.full(obs_dim, obs_low, np.float32),
      np.full(obs_dim, obs_high, np.float32),
      jnp.float32,
    ),
    action=BoxSpec(
      (action_dim,), -np.ones(action_dim, np.float32), np.ones(action_dim, np.float32), jnp.float32
    ),
    max_episode_steps=max_episode_steps,
  )


def _clip_action(spec: EnvSpec, action: jax.Array) -> jax.Array:
  check_action(spec, action)
  return jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)


@dataclasses.dataclass(frozen=True)
class ConstantReward:
  """Reward `reward` on every step, whatever the action (module docstring for both variants)."""

  terminal: bool = True
  max_episode_steps: int = 1
  reward: float = 1.0
  action_dim: int = 1

  def __post_init__(self):
    _check_positive_int('ConstantReward', 'max_episode_steps', self.max_episode_steps)
    _check_positive_int('ConstantReward', 'action_dim', self.action_dim)

  @property
  def spec(self) -> EnvSpec:
    return _spec('ConstantReward', 1, 0.0, 1.0, self.action_dim, self.max_episode_steps)

  def _obs(self, t: jax.Array) -> jax.Array:
    if self.terminal:
      return (t / self.max_episode_steps).astype(jnp.float32)[None]
    return jnp.zeros((1,), jnp.float32)

  def reset(self, key: jax.Array) -> tuple[ProbeState, jax.Array]:
    del key
    t = jnp.zeros((), jnp.int32)
    return ProbeState(self._obs(t), t), self._obs(t)

  def step(self, state: ProbeState, action: jax.Array):
    _clip_action(self.spec, action)
    t = state.t + 1
    end = t >= self.max_episode_steps
    terminated, truncated = (
      (end, jnp.zeros((), jnp.bool_)) if self.terminal else (jnp.zeros((), jnp.bool_), end)
    )
    obs = self._obs(t)
    return ProbeState(obs, t), obs, jnp.float32(self.reward), terminated, truncated, {}

  def q_value(self, obs: jax.Array, discount: float) -> jax.Array:
    """Q(s, ·) at observations [..., 1] for temperature 0 (any action)."""
    if not self.terminal:
      return jnp.full(jnp.shape(obs)[:-1], self.reward / (1.0 - discount), jnp.float32)
    remaining = self.max_episode_steps - jnp.round(obs[..., 0] * self.max_episode_steps)
    return self.reward * (1.0 - discount**remaining) / (1.0 - discount)


@dataclasses.dataclass(frozen=True)
class ObservationReward:
  """One step; the observation is +1 or −1 with equal probability and is the reward."""

  action_dim: int = 1

  def __post_init__(self):
    _check_positive_int('ObservationReward', 'action_dim', self.action_dim)

  @property
  def spec(self) -> EnvSpec:
    return _spec('ObservationReward', 1, -1.0, 1.0, self.action_dim, 1)

  def reset(self, key: jax.Array) -> tuple[ProbeState, jax.Array]:
    obs = jnp.where(jax.random.bernoulli(key), 1.0, -1.0).astype(jnp.float32)[None]
    return ProbeState(obs, jnp.zeros((), jnp.int32)), obs

  def step(self, state: ProbeState, action: jax.Array):
    _clip_action(self.spec, action)
    true = jnp.ones((), jnp.bool_)
    return (
      ProbeState(state.obs, state.t + 1),
      state.obs,
      state.obs[0],
      true,
      jnp.zeros((), jnp.bool_),
      {},
    )

  def q_value(self, obs: jax.Array, discount: float) -> jax.Array:
    del discount
    return obs[..., 0]


@dataclasses.dataclass(frozen=True)
class ActionReward:
  """One step from x ~ U(−1, 1)^k; reward −‖a − x/2‖² for the clipped action a."""

  action_dim: int = 1

  def __post_init__(self):
    _check_positive_int('ActionReward', 'action_dim', self.action_dim)

  @property
  def spec(self) -> EnvSpec:
    return _spec('ActionReward', self.action_dim, -1.0, 1.0, self.action_dim, 1)

  def reset(self, key: jax.Array) -> tuple[ProbeState, jax.Array]:
    obs = jax.random.uniform(key, (self.action_dim,), jnp.float32, -1.0, 1.0)
    return ProbeState(obs, jnp.zeros((), jnp.int32)), obs

  def step(self, state: ProbeState, action: jax.Array):
    action = _clip_action(self.spec, action)
    reward = -jnp.sum((action - self.optimal_action(state.obs)) ** 2)
    return (
      ProbeState(state.obs, state.t + 1),
      state.obs,
      reward,
      jnp.ones((), jnp.bool_),
      jnp.zeros((), jnp.bool_),
      {},
    )

  def optimal_action(self, obs: jax.Array) -> jax.Array:
    return 0.5 * obs

  def q_value(self, obs: jax.Array, action: jax.Array, discount: float) -> jax.Array:
    del discount
    return -jnp.sum((action - self.optimal_action(obs)) ** 2, axis=-1)


@dataclasses.dataclass(frozen=True)
class DelayedActionReward:
  """Two steps. Observation [first, memory]: [1, 0] at the start; after action a₀ it is [0, a₀]
  (clipped, first dimension) with reward 0; the second step pays −(a₀ − ½)² whatever its action and
  terminates."""

  target: float = 0.5

  @property
  def spec(self) -> EnvSpec:
    return _spec('DelayedActionReward', 2, -1.0, 1.0, 1, 2)

  def reset(self, key: jax.Array) -> tuple[ProbeState, jax.Array]:
    del key
    obs = jnp.array([1.0, 0.0], jnp.float32)
    return ProbeState(obs, jnp.zeros((), jnp.int32)), obs

  def step(self, state: ProbeState, action: jax.Array):
    action = _clip_action(self.spec, action)
    first = state.t == 0
    obs = jnp.where(first, jnp.stack([jnp.float32(0.0), action[0]]), state.obs)
    reward = jnp.where(first, 0.0, -((state.obs[1] - self.target) ** 2)).astype(jnp.float32)
    t = state.t + 1
    return ProbeState(obs, t), obs, reward, t >= 2, jnp.zeros((), jnp.bool_), {}

  def optimal_action(self, obs: jax.Array) -> jax.Array:
    """The optimal first action (the second one does not matter), shape [..., 1]."""
    return jnp.full(jnp.shape(obs)[:-1] + (1,), self.target, jnp.float32)

  def q_value(self, obs: jax.Array, action: jax.Array, discount: float) -> jax.Array:
    """Q(s, a) for temperature 0: −γ (a − ½)² at the first step, −(m − ½)² at the second."""
    first = obs[..., 0] > 0.5
    return jnp.where(
      first, -discount * (action[..., 0] - self.target) ** 2, -((obs[..., 1] - self.target) ** 2)
    )
