r"""The three SAC objectives as pure functions of explicit params (Haarnoja et al. 2018, "Soft
Actor-Critic Algorithms and Applications", arXiv 1812.05905).

Equation numbers are the paper's. Actions inside these functions live in the unit box (−1, 1)^|A|
(`irl.networks.to_unit_action`), and log π is the unit-box density (`irl.networks` docstring).

  critic       J_Q(θ_i) = E_D[½ (Q_θi(s, a) − y)²]                                          (eq. 5)
               y = r + γ (1 − terminated)(min_j Q_θ̄j(s', a') − α log π(a'|s')), a' ~ π(·|s')   (eq. 6)
  actor        J_π(φ) = E_{s~D, ε}[α log π(f_φ(ε; s)|s) − min_j Q_θj(s, f_φ(ε; s))]         (eqs. 7, 9)
  temperature  J(α) = E_{a~π}[−α log π(a|s) − α H̄],  H̄ = −|A| by default                      (eq. 18)

The critics are summed (one loss for all twins); the actor and the target use the minimum over the
critics, the clipped double-Q of the paper's section 6. Only true terminations stop bootstrapping;
time-limit truncations bootstrap from s' (Pardo et al., "Time Limits in Reinforcement Learning", ICML
2018), where Brax's SAC instead drops truncated transitions from the critic loss.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from irl.networks import ActorNetwork, CriticNetwork, sample_tanh_gaussian


def soft_bellman_target(
  reward: jax.Array,
  terminated: jax.Array,
  next_q: jax.Array,
  next_log_prob: jax.Array,
  alpha: jax.Array,
  discount: float,
) -> jax.Array:
  """The soft Q target of eq. 6, y = r + γ (1 − terminated)(min_j Q̄_j(s', a') − α log π(a'|s')).

  Args:
    reward, terminated: [B]; `terminated` is bool or {0, 1}.
    next_q: [num_critics, B], the target critics at (s', a') with a' ~ π(·|s').
    next_log_prob: [B], log π(a'|s').
    alpha: the temperature (a scalar).
    discount: γ.
  Returns: y [B]. The caller stops its gradient.
  """
  soft_value = (
    jnp.min(next_q, axis=0) - alpha * next_log_prob
  )  # a one-sample estimate of V(s'), eq. 3
  not_terminated = 1.0 - jnp.asarray(terminated, reward.dtype)
  return reward + discount * not_terminated * soft_value


def critic_loss(
  critic_params: Any,
  target_critic_params: Any,
  actor_params: Any,
  alpha: jax.Array,
  obs: jax.Array,
  unit_action: jax.Array,
  reward: jax.Array,
  next_obs: jax.Array,
  terminated: jax.Array,
  key: jax.Array,
  *,
  actor: ActorNetwork,
  critic: CriticNetwork,
  discount: float,
) -> tuple[jax.Array, dict]:
  """Σ_i J_Q(θ_i) (eq. 5) against the target of eq. 6, differentiable in `critic_params` only.

  The target uses the target critics θ̄, the current actor and a fresh sample a' (key `key`).
  Returns (loss, aux) with aux['q'] [num_critics, B] and aux['target'] [B].
  """
  next_mean, next_log_std = actor.apply(actor_params, next_obs)
  next_action, next_log_prob = sample_tanh_gaussian(key, next_mean, next_log_std)
  next_q = critic.apply(target_critic_params, next_obs, next_action)
  target = jax.lax.stop_gradient(
    soft_bellman_target(reward, terminated, next_q, next_log_prob, alpha, discount)
  )
  q = critic.apply(critic_params, obs, unit_action)
  loss = jnp.sum(jnp.mean(0.5 * (q - target) ** 2, axis=-1))
  return loss, {'q': q, 'target': target}


def actor_loss(
  actor_params: Any,
  critic_params: Any,
  alpha: jax.Array,
  obs: jax.Array,
  key: jax.Array,
  *,
  actor: ActorNetwork,
  critic: CriticNetwork,
) -> tuple[jax.Array, dict]:
  """J_π(φ) with the reparameterised sample ã = f_φ(ε; s) (eqs. 7-9), differentiable in
  `actor_params` (the critics are held fixed by the caller, which differentiates this argument only).

  Returns (loss, aux) with aux['log_prob'] [B], log π(ã|s), for the temperature loss.
  """
  mean, log_std = actor.apply(actor_params, obs)
  action, log_prob = sample_tanh_gaussian(key, mean, log_std)
  q = jnp.min(critic.apply(critic_params, obs, action), axis=0)
  loss = jnp.mean(alpha * log_prob - q)
  return loss, {'log_prob': log_prob}


def temperature_loss(log_alpha: jax.Array, log_prob: jax.Array, target_entropy: float) -> jax.Array:
  """J(α) = E[−α log π(a|s) − α H̄] (eq. 18), with α = exp(log_alpha) so that α stays positive.

  `log_prob` [B] are log π of actions sampled from the current policy; their gradient is stopped.
  d J / d log α = −α (E[log π] + H̄): when the policy's entropy −E[log π] is below the target H̄ the
  gradient is negative and descent raises α (more weight on entropy), and vice versa.
  """
  log_prob = jax.lax.stop_gradient(log_prob)
  return -jnp.exp(log_alpha) * jnp.mean(log_prob + target_entropy)
