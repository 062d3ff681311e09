r"""PointMaze-Left / PointMaze-Right: the shifting-maze reward-transfer pair of AIRL and OPIRL, in pure JAX.

A 2-D point mass with no gravity is pushed by a force towards a target above a horizontal barrier
(Fu et al., "Learning Robust Rewards with Adversarial Inverse RL", ICLR 2018, the shifting-maze transfer
task; OPIRL, Hoshino et al. ICRA 2022, the reward-transfer experiment; spec in `reference/irl.md`
Sec. 2.2). The reward is learned on Left (gap on the right) and reused on Right (gap on the left),
where the expert path changes side.

Geometry (metres; all walls are infinitely thin segments, the particle is a disc of radius r = 0.02):
  arena     the square [-0.05, 0.55]² of side 0.6, so the particle centre moves in [-0.03, 0.53]²;
  barrier   the segment y = 0.3, x ∈ [-0.1, 0.4] (Left; gap x ∈ (0.4, 0.55)) or
            x ∈ [0.2, 0.6] (Right; gap x ∈ (-0.05, 0.2)); each barrier runs into the side wall on its
            closed side, so the particle centre is kept out of the rectangle
            [x₀ - r, x₁ + r] × [0.3 - r, 0.3 + r];
  start     (0.3, 0) + U(-0.01, 0.01)² at rest;
  target    (x, 0.5) with x uniform on {0, 0.04, ..., 0.48}, drawn at every reset.

Dynamics, per physics step of dt = 0.01 (5 per environment step, so one step lasts 0.05 s), with mass
m = 0.1 (about MuJoCo's density-1000 sphere of radius 0.03), viscous damping c = 1 and force F = g·clip(a)
with actuator gain g = 1 (so the terminal speed per axis is g/c = 1 m/s and the time constant m/c = 0.1 s):

  v ← (v + dt·F/m) / (1 + dt·c/m)          semi-implicit Euler, damping implicit as in MuJoCo's Euler
  p ← p + dt·v                              integrator; velocity first, then position with the new v
  contact: clamp p into the arena and out of the barrier rectangle (the side it came from, judged by the
           position before the physics step), and zero the velocity component normal to that wall.

With constant F from (p₀, v₀) and β = 1/(1 + dt·c/m), v* = F/c (or, with c = 0, the uniform-acceleration
sums), a free particle follows v_k = v* + βᵏ(v₀ − v*) and p_n = p₀ + dt·Σ_{k=1..n} v_k exactly; the tests
check this closed form.

Departures from the MuJoCo model (AIRL's `point_mass_maze`, capsule walls): contacts here are hard,
inelastic and frictionless (no penetration, no bounce, no softness, the tangential velocity is kept),
and the barrier's rounded capsule ends are square. The particle cannot tunnel: its speed per axis stays
below max(|v₀|, g/c) = 1 m/s from rest, i.e. ≤ 0.01 m per physics step against a 0.04 m thick
exclusion band.

Reward (the AIRL/OPIRL point-maze reward), taken on the state before the step and the applied, clipped
action, so that it is exactly a function r(s, a) of the observation and the action:
  r(s, a) = −‖p − p_target‖ − 0.001‖clip(a)‖².
Episodes last `max_episode_steps` = 100 steps and are truncated, never terminated. Observation: particle xyz then target xyz (z = 0), 6 float32 values.

PointMaze-Goals-0 … PointMaze-Goals-5 (`GOAL_TASKS`; `envs.registry.make` builds them): the stream of continual inverse RL.
Each task keeps the dynamics and the reward above but draws its target from one third of the top row
(x in {0, 0.04, 0.08, 0.12}, {0.16, …, 0.32} or {0.36, …, 0.48}) and has its gap on one side; the
tasks alternate the gap side, so consecutive tasks differ in both the path through the barrier and
the region of the goals. The goal is in the observation, so one reward function of the observation
and the action is right for every task: what changes from task to task is where the states are.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from envs.core import BoxSpec, EnvError, EnvSpec, check_action

VARIANTS = ('left', 'right')

ARENA_LOW = -0.05  # inner faces of the walls: the arena is [ARENA_LOW, ARENA_HIGH]²
ARENA_HIGH = 0.55
PARTICLE_RADIUS = 0.02
BARRIER_Y = 0.3
BARRIER_X = {'left': (-0.1, 0.4), 'right': (0.2, 0.6)}
START = (0.3, 0.0)
START_NOISE = 0.01  # half-width of the uniform start-position noise
TARGET_Y = 0.5
TARGET_XS = tuple(0.04 * i for i in range(13))  # {0, 0.04, ..., 0.48}

# PointMaze-Goals-k: (variant, target xs) of task k (module docstring).
_THIRDS = (TARGET_XS[0:4], TARGET_XS[4:9], TARGET_XS[9:13])
GOAL_TASKS = (
  ('left', _THIRDS[0]),
  ('right', _THIRDS[2]),
  ('left', _THIRDS[1]),
  ('right', _THIRDS[0]),
  ('left', _THIRDS[2]),
  ('right', _THIRDS[1]),
)
GOALS_PREFIX = 'PointMaze-Goals-'

DT = 0.01
FRAME_SKIP = 5
MASS = 0.1
DAMPING = 1.0
GEAR = 1.0
CTRL_COST = 1e-3


class PointMazeState(NamedTuple):
  pos: jax.Array  # float32 [2], particle centre (x, y)
  vel: jax.Array  # float32 [2]
  target: jax.Array  # float32 [2]
  t: jax.Array  # int32 [], environment steps taken in this episode


def _observation(pos: jax.Array, target: jax.Array) -> jax.Array:
  zero = jnp.zeros(pos.shape[:-1] + (1,), pos.dtype)
  return jnp.concatenate([pos, zero, target, zero], axis=-1)


def _check_variant(variant: str) -> None:
  if variant not in VARIANTS:
    raise EnvError(f'PointMaze: variant must be one of {VARIANTS}, got {variant!r}')


def gap_center(variant: str) -> float:
  """x of the middle of the free channel through the barrier, for the particle centre."""
  _check_variant(variant)
  x0, x1 = BARRIER_X[variant]
  lo, hi = ARENA_LOW + PARTICLE_RADIUS, ARENA_HIGH - PARTICLE_RADIUS
  if variant == 'left':
    return 0.5 * (x1 + PARTICLE_RADIUS + hi)
  return 0.5 * (lo + x0 - PARTICLE_RADIUS)


@dataclasses.dataclass(frozen=True)
class PointMaze:
  """PointMaze-Left / PointMaze-Right (see the module docstring for the model).

  Frozen and hashable, so an instance can be closed over or passed as a static argument of `jit`.
  `mass`, `damping` and `gear` are exposed for tests and ablations; the defaults are the benchmark.
  """

  variant: str = 'left'
  max_episode_steps: int = 100
  mass: float = MASS
  damping: float = DAMPING
  gear: float = GEAR
  target_xs: tuple[float, ...] = TARGET_XS  # the target's x is drawn uniformly from these
  name: str | None = None  # the spec's name; None: PointMaze-Left / PointMaze-Right

  def __post_init__(self):
    _check_variant(self.variant)
    if not (isinstance(self.target_xs, tuple) and self.target_xs):
      raise EnvError(f'PointMaze: target_xs must be a non-empty tuple, got {self.target_xs!r}')
    if not (isinstance(self.max_episode_steps, int) and self.max_episode_steps > 0):
      raise EnvError(
        f'PointMaze: max_episode_steps must be a positive int, got {self.max_episode_steps!r}'
      )
    if not self.mass > 0 or self.damping < 0:
      raise EnvError(
        f'PointMaze: mass must be > 0 and damping >= 0, got mass={self.mass}, '
        f'damping={self.damping}'
      )

  @property
  def spec(self) -> EnvSpec:
    obs_high = np.full((6,), np.inf, np.float32)
    return EnvSpec(
      name=self.name or ('PointMaze-Left' if self.variant == 'left' else 'PointMaze-Right'),
      observation=BoxSpec((6,), -obs_high, obs_high, jnp.float32),
      action=BoxSpec((2,), -np.ones(2, np.float32), np.ones(2, np.float32), jnp.float32),
      max_episode_steps=self.max_episode_steps,
    )

  def reset(self, key: jax.Array) -> tuple[PointMazeState, jax.Array]:
    """Start at (0.3, 0) + U(-0.01, 0.01)² at rest; target x uniform on `target_xs`."""
    start_key, target_key = jax.random.split(key)
    pos = jnp.asarray(START, jnp.float32) + jax.random.uniform(
      start_key, (2,), jnp.float32, -START_NOISE, START_NOISE
    )
    target_x = jnp.asarray(self.target_xs, jnp.float32)[
      jax.random.randint(target_key, (), 0, len(self.target_xs))
    ]
    target = jnp.stack([target_x, jnp.float32(TARGET_Y)])
    state = PointMazeState(pos, jnp.zeros(2, jnp.float32), target, jnp.zeros((), jnp.int32))
    return state, _observation(pos, target)

  def uniform_state(self, key: jax.Array) -> tuple[PointMazeState, jax.Array]:
    """A state drawn for coverage distributions (EPIC in `irl.continual`): the particle uniform in the
    arena (a draw inside the barrier's exclusion band moves to the band's nearer face), its velocity
    uniform in [-1, 1]² (the terminal speed per axis), the target as `reset` draws it."""
    pos_key, vel_key, target_key = jax.random.split(key, 3)
    lo, hi = ARENA_LOW + PARTICLE_RADIUS, ARENA_HIGH - PARTICLE_RADIUS
    pos = jax.random.uniform(pos_key, (2,), jnp.float32, lo, hi)
    x0, x1 = BARRIER_X[self.variant]
    y_lo, y_hi = BARRIER_Y - PARTICLE_RADIUS, BARRIER_Y + PARTICLE_RADIUS
    in_band = (pos[0] > x0 - PARTICLE_RADIUS) & (pos[0] < x1 + PARTICLE_RADIUS)
    in_band = in_band & (pos[1] > y_lo) & (pos[1] < y_hi)
    y = jnp.where(in_band, jnp.where(pos[1] < BARRIER_Y, y_lo, y_hi), pos[1])
    pos = jnp.stack([pos[0], y])
    state, _ = self.reset(target_key)
    state = state._replace(pos=pos, vel=jax.random.uniform(vel_key, (2,), jnp.float32, -1.0, 1.0))
    return state, _observation(pos, state.target)

  def physics_step(
    self, pos: jax.Array, vel: jax.Array, force: jax.Array
  ) -> tuple[jax.Array, jax.Array]:
    """One dt = 0.01 step of the integrator and the contact rule (module docstring)."""
    vel = (vel + DT * force / self.mass) / (1.0 + DT * self.damping / self.mass)
    new_pos = pos + DT * vel

    # Arena walls: a clamped axis was moving outwards, so its velocity component is the normal one.
    lo, hi = ARENA_LOW + PARTICLE_RADIUS, ARENA_HIGH - PARTICLE_RADIUS
    clamped = jnp.clip(new_pos, lo, hi)
    vel = jnp.where(clamped != new_pos, 0.0, vel)
    new_pos = clamped

    # Barrier: which face was hit is decided by where the particle was before this physics step,
    # which lies outside the exclusion rectangle (it is an invariant of this rule).
    x0, x1 = BARRIER_X[self.variant]
    x_lo, x_hi = x0 - PARTICLE_RADIUS, x1 + PARTICLE_RADIUS
    y_lo, y_hi = BARRIER_Y - PARTICLE_RADIUS, BARRIER_Y + PARTICLE_RADIUS
    inside = (new_pos[0] > x_lo) & (new_pos[0] < x_hi) & (new_pos[1] > y_lo) & (new_pos[1] < y_hi)
    from_below, from_above = pos[1] <= y_lo, pos[1] >= y_hi
    hit_y = inside & (from_below | from_above)
    hit_x = inside & ~(from_below | from_above)
    y = jnp.where(hit_y, jnp.where(from_below, y_lo, y_hi), new_pos[1])
    x = jnp.where(hit_x, jnp.where(pos[0] <= x_lo, x_lo, x_hi), new_pos[0])
    vel = vel * jnp.stack([jnp.where(hit_x, 0.0, 1.0), jnp.where(hit_y, 0.0, 1.0)])
    return jnp.stack([x, y]).astype(jnp.float32), vel.astype(jnp.float32)

  def step(self, state: PointMazeState, action: jax.Array):
    """One environment step: `FRAME_SKIP` physics steps under the constant force g·clip(action, -1, 1).

    Returns (state, obs, reward, terminated, truncated, info): `reward` is r(s, a) on the state before
    the step (module docstring), `terminated` is always False, `truncated` is True from step
    `max_episode_steps` on, and `info['distance']` is the particle-target distance after the step.
    """
    check_action(self.spec, action)
    action = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
    reward = -jnp.linalg.norm(state.pos - state.target) - CTRL_COST * jnp.sum(action**2)
    force = self.gear * action

    def substep(carry, _):
      pos, vel = carry
      return self.physics_step(pos, vel, force), None

    (pos, vel), _ = jax.lax.scan(substep, (state.pos, state.vel), None, length=FRAME_SKIP)
    t = state.t + 1
    next_state = PointMazeState(pos, vel, state.target, t)
    terminated = jnp.zeros((), jnp.bool_)
    truncated = t >= self.max_episode_steps
    info = {'distance': jnp.linalg.norm(pos - state.target)}
    return next_state, _observation(pos, state.target), reward, terminated, truncated, info


def true_reward(obs: jax.Array, action: jax.Array, next_obs: jax.Array) -> jax.Array:
  """The environment's reward r(s, a) = −‖p − p_target‖ − 0.001‖clip(a)‖² as a function of the
  observation (module docstring) [...], for reward distances (`irl.epic`); `next_obs` is unused."""
  del next_obs
  action = jnp.clip(action, -1.0, 1.0)
  return -jnp.linalg.norm(obs[..., 0:2] - obs[..., 3:5], axis=-1) - CTRL_COST * jnp.sum(
    action**2, -1
  )


def scripted_expert(obs: jax.Array, variant: str, gain: float = 10.0) -> jax.Array:
  """A waypoint controller through the barrier's gap to the target; jittable, `variant` static.

  Below the barrier, head for (x_gap, 0.2) until within 0.02 of the gap's x, then for (x_gap, 0.4)
  straight up through it; above the barrier (y > 0.32), head for the target. The force is
  clip(gain · (waypoint − p), −1, 1): a proportional controller. Velocity is not observed; the plant's
  damping (time constant 0.1 s) supplies the derivative term of a PD controller, which with gain 10 is a
  damping ratio of c / (2 sqrt(gain·m)) = 0.5. Works on any leading batch shape of `obs`.
  """
  x_gap = gap_center(variant)
  pos, target = obs[..., 0:2], obs[..., 3:5]
  x, y = pos[..., 0], pos[..., 1]
  above = y > BARRIER_Y + PARTICLE_RADIUS
  aligned = jnp.abs(x - x_gap) < 0.02
  wp_y = jnp.where(aligned, BARRIER_Y + 0.1, BARRIER_Y - 0.1)
  approach = jnp.stack([jnp.full_like(x, x_gap), wp_y], axis=-1)
  waypoint = jnp.where(above[..., None], target, approach)
  return jnp.clip(gain * (waypoint - pos), -1.0, 1.0)
