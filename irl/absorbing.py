r"""Absorbing states for episodes that end in a true termination (DAC; Kostrikov et al., ICLR 2019).

An adversarial reward learner sees no transition out of a terminal state, so the implicit reward of
terminating is zero whatever it learns: a biased signal that favours or punishes short episodes. DAC
makes termination a state instead. Every observation gets one extra indicator dimension, 0 for real
states; the absorbing state s_a is all-zero features with indicator 1. A transition that truly
terminates, (s, a, r, s', terminated=True), becomes

    (s, a, r, s_a, terminated=False)    followed by    (s_a, a, 0, s_a, terminated=False)

(`num_absorbing` copies of the second), so a learner bootstraps everywhere and the value of the
absorbing state carries the termination (OPIRL/ValueDICE: "masks are always 1"; `reference/irl.md`
Sec. 1.2d). Time-limit truncations and ordinary transitions only get the 0 indicator: truncation is not a
property of the MDP (Pardo et al., ICML 2018). The extra transitions' env reward is 0, the reward of a
state that never ends, so ground-truth returns are unchanged.

Static shapes (for `jit`): `to_absorbing` maps a batch of B transitions to (1 + num_absorbing)·B rows
with a validity mask; the rows of transition i are i·(1 + n), the transition itself (always valid),
then its n extra absorbing transitions (valid iff it terminated), so time order is kept. `compact`
moves the valid rows first and returns their number, for writers that can only append a prefix.

Departure from OPIRL's code: OPIRL appends random-action absorbing transitions to agent data
(up to 10 per episode) and one zero-action transition to expert data; here the extra action is the
terminal transition's action unless `absorbing_action` is given (pass zeros for the expert convention
or sampled actions for the agent convention).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from envs.core import BoxSpec, EnvError, EnvSpec, Transition

__all__ = [
  'absorbing_spec',
  'add_indicator',
  'absorbing_state',
  'is_absorbing',
  'to_absorbing',
  'compact',
]


def absorbing_spec(spec: EnvSpec) -> EnvSpec:
  """The spec of observations with the indicator appended: bounds [0, 1] on the new last dimension.

  The name and everything else are unchanged (it is the same environment).
  """
  obs = spec.observation
  if len(obs.shape) != 1:
    raise EnvError(
      f'{spec.name}: absorbing states need a flat observation (one axis), got shape {obs.shape}'
    )
  bound = lambda x, indicator: np.append(
    np.broadcast_to(np.asarray(x, np.float32), obs.shape), np.float32(indicator)
  )
  low, high = bound(obs.low, 0.0), bound(obs.high, 1.0)
  return spec._replace(observation=BoxSpec((obs.shape[0] + 1,), low, high, obs.dtype))


def add_indicator(obs: jax.Array) -> jax.Array:
  """Real observations (any leading shape, features on the last axis) with indicator 0 appended."""
  obs = jnp.asarray(obs)
  return jnp.concatenate([obs, jnp.zeros(obs.shape[:-1] + (1,), obs.dtype)], axis=-1)


def absorbing_state(obs_dim: int, dtype=jnp.float32) -> jax.Array:
  """s_a for observations of `obs_dim` real features: `obs_dim` zeros then indicator 1."""
  return jnp.zeros((obs_dim + 1,), dtype).at[-1].set(1)


def is_absorbing(obs_with_indicator: jax.Array) -> jax.Array:
  """Whether each observation (indicator appended, any leading shape) is the absorbing state."""
  return jnp.asarray(obs_with_indicator)[..., -1] > 0.5


def to_absorbing(
  batch: Transition, absorbing_action: jax.Array | None = None, num_absorbing: int = 1
) -> tuple[Transition, jax.Array]:
  """One batch of transitions (leading axis B, flat observations) in absorbing form.

  Args:
    batch: a `Transition` whose fields all have the leading axis B; `obs` and `next_obs` are [B, d].
    absorbing_action: the action of the extra absorbing transitions, broadcast to
      [B, num_absorbing] + action shape; `None` reuses each terminal transition's own action.
    num_absorbing: static number of (s_a, ·, s_a) transitions after each termination (DAC: 1).

  Returns:
    (transitions, valid): a `Transition` of (1 + num_absorbing)·B rows, observations [.., d + 1], with
    `terminated` all False, and a bool mask [(1 + num_absorbing)·B] of the rows to keep (module
    docstring for the layout). Invalid rows hold well-formed absorbing transitions and must be dropped.
  """
  if isinstance(num_absorbing, bool) or not isinstance(num_absorbing, int) or num_absorbing < 1:
    raise EnvError(f'num_absorbing must be a positive int, got {num_absorbing!r}')
  obs, next_obs = jnp.asarray(batch.obs), jnp.asarray(batch.next_obs)
  if obs.ndim != 2 or next_obs.shape != obs.shape:
    raise EnvError(
      f'batch.obs and batch.next_obs must both have shape [B, d], got {obs.shape} and '
      f'{next_obs.shape}'
    )
  action, reward = jnp.asarray(batch.action), jnp.asarray(batch.reward)
  terminated = jnp.asarray(batch.terminated, jnp.bool_)
  truncated = jnp.asarray(batch.truncated, jnp.bool_)
  batch_size, obs_dim = obs.shape
  for field, x in (
    ('action', action),
    ('reward', reward),
    ('terminated', terminated),
    ('truncated', truncated),
  ):
    if x.ndim < 1 or x.shape[0] != batch_size:
      raise EnvError(
        f'batch.{field} must have the leading batch axis B = {batch_size}, got shape {x.shape}'
      )

  n = num_absorbing
  s_a = absorbing_state(obs_dim, obs.dtype)
  first = Transition(
    obs=add_indicator(obs),
    action=action,
    reward=reward,
    next_obs=jnp.where(terminated[:, None], s_a, add_indicator(next_obs)),
    terminated=jnp.zeros_like(terminated),
    truncated=truncated,
  )
  if absorbing_action is None:
    extra_action = jnp.broadcast_to(action[:, None], (batch_size, n) + action.shape[1:])
  else:
    extra_action = jnp.broadcast_to(
      jnp.asarray(absorbing_action, action.dtype), (batch_size, n) + action.shape[1:]
    )
  extra = Transition(
    obs=jnp.broadcast_to(s_a, (batch_size, n, obs_dim + 1)),
    action=extra_action,
    reward=jnp.zeros((batch_size, n) + reward.shape[1:], reward.dtype),
    next_obs=jnp.broadcast_to(s_a, (batch_size, n, obs_dim + 1)),
    terminated=jnp.zeros((batch_size, n) + terminated.shape[1:], jnp.bool_),
    truncated=jnp.zeros((batch_size, n) + truncated.shape[1:], jnp.bool_),
  )

  # Row i·(1 + n) is transition i, rows i·(1 + n) + 1 ... + n its absorbing continuation.
  interleave = lambda x, y: jnp.concatenate([x[:, None], y], axis=1).reshape((-1,) + x.shape[1:])
  transitions = jax.tree.map(interleave, first, extra)
  valid = jnp.concatenate(
    [jnp.ones((batch_size, 1), jnp.bool_), jnp.broadcast_to(terminated[:, None], (batch_size, n))],
    axis=1,
  ).reshape(-1)
  return transitions, valid


def compact(transitions: Transition, valid: jax.Array) -> tuple[Transition, jax.Array]:
  """Moves the valid rows first, keeping their order, and returns (transitions, number valid).

  The row count stays static; rows from the returned count on are the invalid ones (in order).
  """
  valid = jnp.asarray(valid, jnp.bool_)
  order = jnp.argsort(~valid, stable=True)
  return jax.tree.map(lambda x: x[order], transitions), jnp.sum(valid, dtype=jnp.int32)
