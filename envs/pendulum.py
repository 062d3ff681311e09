r"""Pendulum: Gymnasium's Pendulum-v1 in pure JAX, with a scripted swing-up expert.

θ is the angle from upright (θ = 0 up, positive anticlockwise), θ̇ its rate, u the torque. One step of
dt = 0.05 (semi-implicit Euler, as Gymnasium's `PendulumEnv.step`), with g = 10, m = 1, l = 1:

  u  = clip(a, −2, 2)
  θ̇' = clip(θ̇ + (3g/(2l) sin θ + 3/(m l²) u) dt, −8, 8)
  θ' = θ + θ̇' dt                                        (θ is not wrapped; only the cost wraps it)
  r  = −(angle_normalize(θ)² + 0.1 θ̇² + 0.001 u²)      on the state before the step

with angle_normalize(x) = ((x + π) mod 2π) − π. The observation is [cos θ, sin θ, θ̇]; a reset draws
θ ~ U(−π, π), θ̇ ~ U(−1, 1). Episodes are truncated after `max_episode_steps` = 200 steps (Gymnasium's
TimeLimit) and never terminated. The arithmetic is float32 where Gymnasium's is float64.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from envs.core import BoxSpec, EnvError, EnvSpec, check_action

MAX_SPEED = 8.0
MAX_TORQUE = 2.0
DT = 0.05
MASS = 1.0
LENGTH = 1.0


class PendulumState(NamedTuple):
  theta: jax.Array  # float32 [], unwrapped angle from upright
  theta_dot: jax.Array  # float32 []
  t: jax.Array  # int32 [], environment steps taken in this episode


def angle_normalize(x: jax.Array) -> jax.Array:
  """Wraps an angle into [−π, π)."""
  return (x + jnp.pi) % (2 * jnp.pi) - jnp.pi


def _observation(theta: jax.Array, theta_dot: jax.Array) -> jax.Array:
  return jnp.stack([jnp.cos(theta), jnp.sin(theta), theta_dot], axis=-1).astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class Pendulum:
  """Pendulum-v1 (module docstring). Frozen and hashable, like `PointMaze`."""

  max_episode_steps: int = 200
  g: float = 10.0

  def __post_init__(self):
    if not (isinstance(self.max_episode_steps, int) and self.max_episode_steps > 0):
      raise EnvError(
        f'Pendulum: max_episode_steps must be a positive int, got {self.max_episode_steps!r}'
      )

  @property
  def spec(self) -> EnvSpec:
    obs_high = np.array([1.0, 1.0, MAX_SPEED], np.float32)
    return EnvSpec(
      name='Pendulum',
      observation=BoxSpec((3,), -obs_high, obs_high, jnp.float32),
      action=BoxSpec(
        (1,),
        np.full((1,), -MAX_TORQUE, np.float32),
        np.full((1,), MAX_TORQUE, np.float32),
        jnp.float32,
      ),
      max_episode_steps=self.max_episode_steps,
    )

  def reset(self, key: jax.Array) -> tuple[PendulumState, jax.Array]:
    theta_key, theta_dot_key = jax.random.split(key)
    theta = jax.random.uniform(theta_key, (), jnp.float32, -jnp.pi, jnp.pi)
    theta_dot = jax.random.uniform(theta_dot_key, (), jnp.float32, -1.0, 1.0)
    return PendulumState(theta, theta_dot, jnp.zeros((), jnp.int32)), _observation(theta, theta_dot)

  def step(self, state: PendulumState, action: jax.Array):
    """Returns (state, obs, reward, terminated, truncated, info); `terminated` is always False and
    `truncated` is True from step `max_episode_steps` on; `info` is empty."""
    check_action(self.spec, action)
    u = jnp.clip(jnp.asarray(action, jnp.float32)[0], -MAX_TORQUE, MAX_TORQUE)
    theta, theta_dot = state.theta, state.theta_dot
    reward = -(angle_normalize(theta) ** 2 + 0.1 * theta_dot**2 + 0.001 * u**2)
    theta_ddot = 3.0 * self.g / (2.0 * LENGTH) * jnp.sin(theta) + 3.0 / (MASS * LENGTH**2) * u
    new_theta_dot = jnp.clip(theta_dot + theta_ddot * DT, -MAX_SPEED, MAX_SPEED)
    new_theta = theta + new_theta_dot * DT
    t = state.t + 1
    next_state = PendulumState(new_theta, new_theta_dot, t)
    return (
      next_state,
      _observation(new_theta, new_theta_dot),
      reward,
      jnp.zeros((), jnp.bool_),
      t >= self.max_episode_steps,
      {},
    )


def scripted_expert(obs: jax.Array, g: float = 10.0) -> jax.Array:
  r"""Energy-pumping swing-up with a linear stabiliser near the top (Åström & Furuta, Automatica 2000).

  With θ̈ = k sin θ + b u (k = 3g/2, b = 3), E = ½θ̇² + k cos θ has dE/dt = b u θ̇, and the upright
  rest state has E* = k. Far from the top, u = 2·sign((E* − E) θ̇) pumps energy in (or out) at the
  torque limit, pushing in the positive direction when at rest. Near the top (|θ| < 0.5 rad with
  |θ̇| < 3), the PD law u = −(10 θ + 2 θ̇) places the linearised closed-loop poles of θ̈ = kθ + bu at
  s² + 6 s + 15 (damping ratio 0.77). Works on any leading batch shape of `obs`; returns shape [..., 1].
  """
  cos_t, sin_t, theta_dot = obs[..., 0], obs[..., 1], obs[..., 2]
  theta = jnp.arctan2(sin_t, cos_t)
  k = 1.5 * g
  energy_gap = k - (0.5 * theta_dot**2 + k * cos_t)
  direction = jnp.where(energy_gap * theta_dot >= 0, 1.0, -1.0)
  pump = MAX_TORQUE * jnp.where(jnp.abs(energy_gap) < 1e-3, 0.0, direction)
  stabilise = -(10.0 * theta + 2.0 * theta_dot)
  near_top = (jnp.abs(theta) < 0.5) & (jnp.abs(theta_dot) < 3.0)
  u = jnp.where(near_top, stabilise, pump)
  return jnp.clip(u, -MAX_TORQUE, MAX_TORQUE)[..., None].astype(jnp.float32)
