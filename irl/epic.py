r"""EPIC: a distance between reward functions that ignores potential shaping and positive scale.

Gleave, Dennis, Legg, Russell, Leike, "Quantifying Differences in Reward Functions", ICLR 2021.

Each reward is first canonicalised (the paper's Definition 4.1), with S, S' ~ D_S and A ~ D_A
independent:

  C(R)(s, a, s') = R(s, a, s') + E[γ R(s', A, S') − R(s, A, S') − γ R(S, A, S')],

which removes any potential shaping γΦ(s') − Φ(s). The distance (Definition 4.3) is

  D(R_A, R_B) = sqrt((1 − ρ) / 2),   ρ = Pearson correlation of C(R_A) and C(R_B)

over a coverage distribution of transitions (s, a, s'). It lies in [0, 1], is 0 when the two rewards
differ by shaping and a positive scale only, 1 for R and −R, and is a pseudometric.

The expectations are Monte Carlo means over M sampled pairs (A_m, S'_m); the S'_m are a permutation
of the sampled S_m, so the shaping term cancels exactly, not only in expectation (the constant
γ(E Φ(S) − E Φ(S')) it would otherwise leave is zero, and a constant would not change ρ anyway).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

RewardFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]  # (obs, action, next_obs) -> [B]


class Coverage(NamedTuple):
  """What EPIC is measured on: the transitions whose canonical rewards are correlated
  (`obs`, `action`, `next_obs`, each [B, ·]) and the samples of D_S and D_A behind the expectations
  (`sample_obs` [M, d_s], `sample_action` [M, d_a])."""

  obs: jax.Array
  action: jax.Array
  next_obs: jax.Array
  sample_obs: jax.Array
  sample_action: jax.Array


def canonical_reward(
  reward_fn: RewardFn, coverage: Coverage, discount: float, key: jax.Array
) -> jax.Array:
  """C(R)(s, a, s') on `coverage`'s transitions [B] (module docstring), its expectations estimated
  on `coverage`'s M samples; `key` draws the permutation that makes the S'_m. Cost: (2B + 1)·M
  reward evaluations, done one transition at a time over the M samples (`lax.map`), so memory is
  O(M) activations whatever B is."""
  sample_obs, sample_action = coverage.sample_obs, coverage.sample_action
  sample_next = sample_obs[jax.random.permutation(key, sample_obs.shape[0])]

  def mean_from(obs):  # E_{A, S'}[R(obs, A, S')]
    tiled = jnp.broadcast_to(obs, sample_obs.shape)
    return jnp.mean(reward_fn(tiled, sample_action, sample_next))

  mean_from_batch = lambda obs: jax.lax.map(mean_from, obs)  # noqa: E731
  baseline = jnp.mean(reward_fn(sample_obs, sample_action, sample_next))  # E[R(S, A, S')]
  return (
    reward_fn(coverage.obs, coverage.action, coverage.next_obs)
    + discount * mean_from_batch(coverage.next_obs)
    - mean_from_batch(coverage.obs)
    - discount * baseline
  )


def pearson_distance(x: jax.Array, y: jax.Array) -> jax.Array:
  """sqrt((1 − ρ) / 2) for the Pearson correlation ρ of x and y [B]. A constant input has no
  correlation; it gives ρ = 0 (distance sqrt(1/2)), not NaN."""
  x, y = x - jnp.mean(x), y - jnp.mean(y)
  denominator = jnp.sqrt(jnp.sum(x * x) * jnp.sum(y * y))
  rho = jnp.where(
    denominator > 0, jnp.sum(x * y) / jnp.where(denominator > 0, denominator, 1.0), 0.0
  )
  return jnp.sqrt(jnp.clip((1.0 - rho) / 2.0, 0.0, 1.0))


def epic_distance(
  reward_a: RewardFn,
  reward_b: RewardFn,
  coverage: Coverage,
  discount: float,
  key: jax.Array,
) -> jax.Array:
  """D_EPIC(R_A, R_B) on `coverage` (module docstring): both rewards are canonicalised with the same
  samples and permutation (`key`), so a shaped, rescaled copy is at distance 0 up to float error."""
  if not 0.0 <= discount <= 1.0:
    raise ValueError(f'discount must be in [0, 1], got {discount}')
  return pearson_distance(
    canonical_reward(reward_a, coverage, discount, key),
    canonical_reward(reward_b, coverage, discount, key),
  )
