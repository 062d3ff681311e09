r"""OPIRL's policy learner: an AlgaeDICE actor-critic with SAC's entropy and a Q-filtered BC term.

AlgaeDICE (Nachum, Dai, Kostrikov, Chow, Li and Schuurmans 2019, "AlgaeDICE: Policy Gradient from
Arbitrary Experience", arXiv 1912.02074) writes policy optimisation with an f-divergence regulariser
between d^π and the data distribution d^D as a saddle point over π and a dual Q-function (Fenchel
duality); in the form of its reference implementation (google-research `algae_dice`, which OPIRL
forks), for discount γ < 1,

  max_π min_Q  E_{(s,a)~d^D}[f((B^π Q − Q)(s, a))] + α_algae (1 − γ) E_{s0, a0~π}[Q(s0, a0)]

with a convex f: the minimisation over Q estimates the correction of d^D towards d^π, and the same
objective, maximised over π, is a policy gradient from off-policy data without importance weights.
(The paper's equation numbers were not at hand; the formulas below are the official code's.)
OPIRL (Hoshino, Ota, Kanezaki and Yokota, ICRA 2022, arXiv 2109.04307) uses the AlgaeDICE learner of
its official code (github.com/sff1019/opirl, `src/algos/opirl_policy.py`; notes:
/work/shared/reference/irl.md sections 1.2(b), 1.2(c), 1.4), whose objectives are, per batch
(s, a, r, s', d) from the replay buffer, with N critics Q_i (twins; online θ, target θ̄):

  f(x)   = |x|^p / p,  p = `f_exponent` = 1.5
  M_i    = w Q_i(s', a') + (1 − w) min_j Q̄_j(s', a'),  a' ~ π(·|s'),  w = `target_mix` = 0.05
  y_i    = r + γ (1 − d)(M_i − α log π(a'|s'))            the soft backup B^π Q_i, differentiable
                                                           in θ through w Q_i (the official code
                                                           forms M_i inside the critic's tape)
  δ_i    = y_i − Q_i(s, a)                                 the Bellman residual
  critic L_Q(θ) = Σ_i E[f(δ_i) + α_algae (1 − γ) Q_i(s0, a0)],  a0 ~ π(·|s0),  s0 = s
  actor  J_π(φ) = −(1/N) Σ_i E[sg(g(δ_i)) δ_i + α_algae (1 − γ) Q_i(s0, a0)]   (a', a0 reparam.)
         L_π(φ) = c_actor J_π(φ) + c_bc E[1{Q̄(s, a) > Q̄(s, ã)} ‖ã − a‖²] / |A|,   ã ~ π(·|s)
  temperature   J(α) = E[α (−log π(a'|s') − H̄)],  H̄ = −|A|         (SAC, arXiv 1812.05905, eq. 18)

where s0 are the batch's own states (OPIRL's `use_init_states` is off in every script), Q̄ in the
filter is the mean of the twins (the official code compares the sums), c_actor =
`actor_loss_scale` = 1e-3 and c_bc = `bc_coeff` = 1/batch_size; without the BC term (`use_bc_reg`
off) the official loss is J_π unscaled, and so is ours. The surrogate J_π holds the weight g(δ)
fixed; with g = f′ its gradient is that of −E[f(δ) + ...], the objective the critic minimises
(AlgaeDICE's saddle point). The official code's weight is one-sided, g(x) = max(x, 0)^{p−1},
which is f₊′ for f₊(x) = max(x, 0)^p / p: its actor maximises E[f₊(δ)], pushing the backup up only
where it exceeds Q, while its critic minimises the two-sided f. That is the default here
(`residual_weight='positive'`); `residual_weight='exact'` uses g = f′ = sign(x)|x|^{p−1}.

One `update` is one critic step, then on every `actor_update_period`-th update (the 2nd, 4th, ... as
in the official code, whose condition reads the critic optimiser's step count after its step) one
actor step, one temperature step (with log π(a'|s') of the pre-step actor) and a Polyak step of the
target critics θ̄ ← τθ + (1 − τ)θ̄, all with the critics just updated.

Acting (OPIRL's exploration, irl.md section 1.2(c)): `act(..., deterministic=False)` is the
policy's mode tanh(mean) plus N(0, σ²) noise, σ = `exploration_noise` = 0.1, clipped to the box,
all in the unit box (−1, 1)^|A| (the official code wraps the environment to actions in [−1, 1]),
then mapped to the environment's bounds; it never samples the Gaussian. `deterministic=True` is
tanh(mean).

  algae = make_algaedice(env.spec, AlgaeDICEConfig())
  state = algae.init(key)
  state, metrics = algae.update(state, batch, key, reward_fn=None)  # batch: irl.replay.Transition
  action = algae.act(state, obs, key, deterministic=False)          # or act(actor_params, ...)
  agent = as_agent(algae)                                           # the irl.loops.Agent interface

Conventions as in `irl.sac.agent`: batches, `act` and `reward_fn(obs, action, next_obs) -> [B]` use
the environment's action box, the networks the unit box; only true terminations stop the backup.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from envs.core import EnvSpec
from irl import networks
from irl.hparams import Q_FILTERS, RESIDUAL_WEIGHTS, AlgaeDICEConfig  # noqa: F401 (re-exported)
from irl.loops import Agent
from irl.networks import ActionBounds, ActorNetwork, CriticNetwork, sample_tanh_gaussian
from irl.replay import Transition
from irl.sac import agent as sac_agent

RewardFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]

_RESIDUAL_CLIP = 1e6  # the official one-sided weight clips δ into [0, 1e6] before the power


# ---------------------------------------------------------------------------------------------------
# f and its derivative


def f(x: jax.Array, p: float) -> jax.Array:
  """AlgaeDICE's convex f(x) = |x|^p / p (elementwise; p > 1)."""
  return jnp.abs(x) ** p / p


def f_prime(x: jax.Array, p: float) -> jax.Array:
  """f′(x) = sign(x) |x|^{p−1} (elementwise)."""
  return jnp.sign(x) * jnp.abs(x) ** (p - 1.0)


def f_prime_positive(x: jax.Array, p: float) -> jax.Array:
  """The official code's one-sided weight min(max(x, 0), 1e6)^{p−1}: f₊′ for f₊(x) = max(x, 0)^p / p
  (below 1e6), zero for negative residuals."""
  return jnp.clip(x, 0.0, _RESIDUAL_CLIP) ** (p - 1.0)


def residual_weight_fn(kind: str) -> Callable[[jax.Array, float], jax.Array]:
  """The weight g of the actor's surrogate: 'positive' (official) or 'exact' (f′)."""
  if kind not in RESIDUAL_WEIGHTS:
    raise ValueError(f'residual_weight must be one of {list(RESIDUAL_WEIGHTS)}, got {kind!r}')
  return f_prime_positive if kind == 'positive' else f_prime


# ---------------------------------------------------------------------------------------------------
# The objectives as pure functions


class AlgaeBatch(NamedTuple):
  """What both objectives read from a replay batch: s, a (in the unit box), r, s', the termination
  flags and the initial states s0 (OPIRL: the batch's own s)."""

  obs: jax.Array
  unit_action: jax.Array
  reward: jax.Array
  next_obs: jax.Array
  terminated: jax.Array
  init_obs: jax.Array


def mixed_next_q(
  online_next_q: jax.Array, target_next_q: jax.Array, target_mix: float
) -> jax.Array:
  """M_i = w Q_i(s', a') + (1 − w) min_j Q̄_j(s', a') (module docstring), per critic.

  Args:
    online_next_q, target_next_q: [num_critics, B], the online and target critics at (s', a').
    target_mix: w (OPIRL: 0.05).
  Returns: [num_critics, B]; gradients flow through `online_next_q` (the caller decides).
  """
  return target_mix * online_next_q + (1.0 - target_mix) * jnp.min(target_next_q, axis=0)


def algae_backup(
  reward: jax.Array,
  terminated: jax.Array,
  mixed_q: jax.Array,
  next_log_prob: jax.Array,
  alpha: jax.Array,
  discount: float,
) -> jax.Array:
  """The soft backup y_i = r + γ (1 − d)(M_i − α log π(a'|s')) [num_critics, B], for reward,
  terminated and next_log_prob [B] and the mixed values M [num_critics, B] (`mixed_next_q`)."""
  not_terminated = 1.0 - jnp.asarray(terminated, reward.dtype)
  return reward + discount * not_terminated * (mixed_q - alpha * next_log_prob)


def _residual_terms(
  critic_params,
  target_critic_params,
  actor_params,
  alpha,
  batch,
  key,
  *,
  actor,
  critic,
  discount,
  target_mix,
  hold_actions,
):
  """The terms both objectives share: fresh samples a' ~ π(·|s') and a0 ~ π(·|s0) (held fixed when
  `hold_actions`, the critic's view; reparameterised otherwise, the actor's), and a dict of
  'residual' δ, 'target' y and 'q' Q(s, a) [num_critics, B], 'init_q' Q(s0, a0) [num_critics, B0]
  and 'next_log_prob' log π(a'|s') [B]."""
  obs, unit_action, reward, next_obs, terminated, init_obs = batch
  next_key, init_key = jax.random.split(key)
  next_action, next_log_prob = sample_tanh_gaussian(next_key, *actor.apply(actor_params, next_obs))
  init_action, _ = sample_tanh_gaussian(init_key, *actor.apply(actor_params, init_obs))
  if hold_actions:
    next_action, next_log_prob, init_action = jax.lax.stop_gradient(
      (next_action, next_log_prob, init_action)
    )
  online_next_q = critic.apply(critic_params, next_obs, next_action)
  target_next_q = critic.apply(target_critic_params, next_obs, next_action)
  target = algae_backup(
    reward,
    terminated,
    mixed_next_q(online_next_q, target_next_q, target_mix),
    next_log_prob,
    alpha,
    discount,
  )
  q = critic.apply(critic_params, obs, unit_action)
  return {
    'residual': target - q,
    'target': target,
    'q': q,
    'init_q': critic.apply(critic_params, init_obs, init_action),
    'next_log_prob': next_log_prob,
  }


def critic_loss(
  critic_params: Any,
  target_critic_params: Any,
  actor_params: Any,
  alpha: jax.Array,
  batch: AlgaeBatch,
  key: jax.Array,
  *,
  actor: ActorNetwork,
  critic: CriticNetwork,
  discount: float,
  f_exponent: float,
  algae_alpha: float,
  target_mix: float,
) -> tuple[jax.Array, dict]:
  """L_Q(θ) = Σ_i E[f(δ_i) + α_algae (1 − γ) Q_i(s0, a0)] (module docstring;
  AlgaeDICE's inner minimisation over Q), differentiable in `critic_params` only.

  δ_i depends on θ through both Q_i(s, a) and the online share w Q_i(s', a') of the backup: the
  backup is not a stopped-gradient target, as in the official code. a' ~ π(·|s') and a0 ~ π(·|s0)
  are fresh samples of the current actor (key `key`), held fixed. `batch.init_obs` are the s0
  (OPIRL: the batch's `obs`). Returns (loss, aux) with aux 'q', 'target', 'residual' [num_critics, B] and
  'init_q' [num_critics, B0].
  """
  terms = _residual_terms(
    critic_params,
    target_critic_params,
    actor_params,
    alpha,
    batch,
    key,
    actor=actor,
    critic=critic,
    discount=discount,
    target_mix=target_mix,
    hold_actions=True,
  )
  residual, init_q = terms['residual'], terms['init_q']
  per_critic = jnp.mean(f(residual, f_exponent), axis=-1) + algae_alpha * (
    1.0 - discount
  ) * jnp.mean(init_q, axis=-1)
  aux = {name: terms[name] for name in ('q', 'target', 'residual', 'init_q')}
  return jnp.sum(per_critic), aux


def algae_actor_loss(
  actor_params: Any,
  critic_params: Any,
  target_critic_params: Any,
  alpha: jax.Array,
  batch: AlgaeBatch,
  key: jax.Array,
  *,
  actor: ActorNetwork,
  critic: CriticNetwork,
  discount: float,
  f_exponent: float,
  algae_alpha: float,
  target_mix: float,
  residual_weight: str = 'positive',
) -> tuple[jax.Array, dict]:
  """The actor's surrogate J_π(φ) = −(1/N) Σ_i E[sg(g(δ_i)) δ_i + α_algae (1 − γ) Q_i(s0, a0)]
  (module docstring; AlgaeDICE's outer maximisation over π), unscaled, differentiable in
  `actor_params` (critics and α are held fixed by the caller, which differentiates this argument).

  δ_i depends on φ through the reparameterised a' = f_φ(ε; s') and log π(a'|s'), a0 = f_φ(ε0; s0)
  enters Q_i(s0, a0). Holding g(δ) fixed makes ∇_φ J_π = −(1/N) Σ_i ∇_φ E[G(δ_i) + ...] for the
  antiderivative G of g: f with residual_weight 'exact', f₊ = max(·, 0)^p / p with 'positive'.
  Returns (loss, aux) with aux['next_log_prob'] [B], log π(a'|s'), for the temperature.
  """
  weight = residual_weight_fn(residual_weight)
  terms = _residual_terms(
    actor_params=actor_params,
    critic_params=critic_params,
    target_critic_params=target_critic_params,
    alpha=alpha,
    batch=batch,
    key=key,
    actor=actor,
    critic=critic,
    discount=discount,
    target_mix=target_mix,
    hold_actions=False,
  )
  residual, init_q = terms['residual'], terms['init_q']
  surrogate = jnp.mean(
    jax.lax.stop_gradient(weight(residual, f_exponent)) * residual, axis=-1
  ) + algae_alpha * (1.0 - discount) * jnp.mean(init_q, axis=-1)
  return -jnp.mean(surrogate), {'next_log_prob': terms['next_log_prob']}


def q_filter_mask(data_q: jax.Array, policy_q: jax.Array, q_filter: str = 'mean') -> jax.Array:
  """The Q-filter 1{Q̄(s, a) > Q̄(s, ã)} [B] of the BC term, from the critics at the replay action
  (`data_q`) and at the policy's action (`policy_q`), both [num_critics, B]; Q̄ is the mean over the
  critics ('mean', the official code's comparison of sums) or the minimum ('min'). Strict: ties
  do not pull."""
  if q_filter not in Q_FILTERS:
    raise ValueError(f'q_filter must be one of {list(Q_FILTERS)}, got {q_filter!r}')
  reduce = jnp.mean if q_filter == 'mean' else jnp.min
  return reduce(data_q, axis=0) > reduce(policy_q, axis=0)


def bc_loss(
  actor_params: Any,
  critic_params: Any,
  obs: jax.Array,
  unit_action: jax.Array,
  key: jax.Array,
  *,
  actor: ActorNetwork,
  critic: CriticNetwork,
  q_filter: str = 'mean',
) -> tuple[jax.Array, dict]:
  """The Q-filtered behaviour cloning term E[1{Q̄(s, a) > Q̄(s, ã)} ‖ã − a‖²] / |A| on the agent's
  own replay pairs (s, a), with ã ~ π(·|s) reparameterised (the Q-filter of Nair et al. 2018,
  "Overcoming Exploration in Reinforcement Learning with Demonstrations", here on replay data as in
  OPIRL's code): it pulls π towards replay actions the critics rate above the policy's own sample.
  The mean runs over the batch and the action dimensions; the filter carries no gradient. Returns
  (loss, aux['mask'] [B])."""
  mean, log_std = actor.apply(actor_params, obs)
  policy_action, _ = sample_tanh_gaussian(key, mean, log_std)
  mask = jax.lax.stop_gradient(
    q_filter_mask(
      critic.apply(critic_params, obs, unit_action),
      critic.apply(critic_params, obs, policy_action),
      q_filter,
    )
  )
  squared = (policy_action - unit_action) ** 2
  return jnp.mean(jnp.where(mask[:, None], squared, 0.0)), {'mask': mask}


# ---------------------------------------------------------------------------------------------------
# Config, state and the learner


# The same arrays as SAC's state (actor, twin critics and targets, log α, three optimizer states, step).
AlgaeDICEState = sac_agent.SACState


class AlgaeDICE(NamedTuple):
  """The learner's functions for one environment spec and config (`make_algaedice`)."""

  config: AlgaeDICEConfig
  actor: ActorNetwork
  critic: CriticNetwork
  bounds: ActionBounds
  target_entropy: float
  bc_coeff: float
  init: Callable[[jax.Array], AlgaeDICEState]
  update: Callable[..., tuple[AlgaeDICEState, dict]]
  act: Callable[..., jax.Array]


def make_algaedice(spec: EnvSpec, config: AlgaeDICEConfig = AlgaeDICEConfig()) -> AlgaeDICE:
  """OPIRL's AlgaeDICE learner for flat observations and actions in the finite box of `spec`
  (module docstring). Raises ValueError for a bad config field or observation shape and EnvError
  for an unbounded or non-flat action space."""
  bounds, obs_dim, action_dim = networks.checked_learner_inputs(
    'AlgaeDICE', spec, config, AlgaeDICEConfig
  )
  target_entropy = float(-action_dim if config.target_entropy is None else config.target_entropy)
  bc_coeff = float(1.0 / config.batch_size if config.bc_coeff is None else config.bc_coeff)
  kernel_init = 'orthogonal' if config.orthogonal_init else 'lecun_normal'
  actor = networks.make_actor(
    obs_dim,
    action_dim,
    config.hidden_sizes,
    config.log_std_min,
    config.log_std_max,
    kernel_init,
    config.log_std_squash,
  )
  critic = networks.make_critic(
    obs_dim, action_dim, config.hidden_sizes, config.num_critics, kernel_init
  )
  actor_tx = optax.adam(config.actor_lr)
  critic_tx = optax.adam(config.critic_lr)
  temperature_tx = optax.adam(config.temperature_lr)
  algae_kwargs = dict(
    discount=config.discount,
    f_exponent=config.f_exponent,
    algae_alpha=config.algae_alpha,
    target_mix=config.target_mix,
  )

  def init(key: jax.Array) -> AlgaeDICEState:
    return sac_agent.init_state(
      key, actor, critic, actor_tx, critic_tx, temperature_tx, config.init_temperature
    )

  def actor_objective(actor_params, critic_params, target_critic_params, alpha, batch_args, key):
    """L_π = c_actor J_π + c_bc BC (or J_π alone without BC); aux['log_prob'] is log π(a'|s') for
    the temperature, aux['metrics'] the terms."""
    algae_key, bc_key = jax.random.split(key)
    obs, unit_action = batch_args.obs, batch_args.unit_action
    algae_loss, aux = algae_actor_loss(
      actor_params,
      critic_params,
      target_critic_params,
      alpha,
      batch_args,
      algae_key,
      actor=actor,
      critic=critic,
      residual_weight=config.residual_weight,
      **algae_kwargs,
    )
    log_prob = aux['next_log_prob']
    if not config.use_bc_reg:
      return algae_loss, {'log_prob': log_prob, 'metrics': {'algae_actor_loss': algae_loss}}
    bc, bc_aux = bc_loss(
      actor_params,
      critic_params,
      obs,
      unit_action,
      bc_key,
      actor=actor,
      critic=critic,
      q_filter=config.q_filter,
    )
    loss = config.actor_loss_scale * algae_loss + bc_coeff * bc
    metrics = {
      'algae_actor_loss': algae_loss,
      'bc_loss': bc,
      'bc_filter': jnp.mean(bc_aux['mask'].astype(jnp.float32)),
    }
    return loss, {'log_prob': log_prob, 'metrics': metrics}

  def update(
    state: AlgaeDICEState, batch: Transition, key: jax.Array, reward_fn: RewardFn | None = None
  ) -> tuple[AlgaeDICEState, dict]:
    """One update on `batch` (leading axis B); metrics are scalars (NaN for the actor and
    temperature entries on updates that skip the actor)."""
    critic_key, actor_key = jax.random.split(key)
    reward = sac_agent.batch_reward(batch, reward_fn)
    unit_action = networks.to_unit_action(batch.action, bounds)
    alpha = jnp.exp(state.log_alpha)
    # s0 = the batch's own states: OPIRL's use_init_states is off in every script.
    batch_args = AlgaeBatch(
      batch.obs, unit_action, reward, batch.next_obs, batch.terminated, batch.obs
    )

    def critic_objective(critic_params):  # L_Q
      return critic_loss(
        critic_params,
        state.target_critic_params,
        state.actor_params,
        alpha,
        batch_args,
        critic_key,
        actor=actor,
        critic=critic,
        **algae_kwargs,
      )

    def policy_objective(actor_params, critic_params):  # L_π, with the critics just updated
      return actor_objective(
        actor_params, critic_params, state.target_critic_params, alpha, batch_args, actor_key
      )

    # The official condition reads the critic optimiser's count after its step: updates 2, 4, ...
    # The actor, temperature and target steps all run on that period.
    actor_due = (
      True
      if config.actor_update_period == 1
      else (state.step + 1) % config.actor_update_period == 0
    )
    new_state, critic_value, critic_aux, actor_metrics = sac_agent.actor_critic_update(
      state,
      critic_objective,
      policy_objective,
      txs=(actor_tx, critic_tx, temperature_tx),
      target_entropy=target_entropy,
      learn_temperature=config.learn_temperature,
      actor_due=actor_due,
      target_due=actor_due,
      tau=config.tau,
    )
    metrics = {
      'critic_loss': critic_value,
      'q': jnp.mean(critic_aux['q']),
      'target': jnp.mean(critic_aux['target']),
      'abs_residual': jnp.mean(jnp.abs(critic_aux['residual'])),
      'init_q': jnp.mean(critic_aux['init_q']),
      'reward': jnp.mean(reward),
      'alpha': alpha,
      **actor_metrics,
    }
    return new_state, metrics

  def act(
    state_or_actor_params: AlgaeDICEState | Any,
    obs: jax.Array,
    key: jax.Array,
    deterministic: bool = False,
  ) -> jax.Array:
    """Actions in the environment's box for `obs` [..., d]: the mode tanh(mean) when
    `deterministic` (a Python bool; `key` is then unused), else OPIRL's exploration, the mode plus
    N(0, exploration_noise²) in the unit box, clipped to [−1, 1]."""
    mean, _ = actor.apply(networks.actor_params_of(state_or_actor_params, AlgaeDICEState), obs)
    unit_action = networks.noisy_mode_action(mean, config.exploration_noise, key, deterministic)
    return networks.to_env_action(unit_action, bounds)

  return AlgaeDICE(
    config=config,
    actor=actor,
    critic=critic,
    bounds=bounds,
    target_entropy=target_entropy,
    bc_coeff=bc_coeff,
    init=init,
    update=update,
    act=act,
  )


def init(
  key: jax.Array, spec: EnvSpec, config: AlgaeDICEConfig = AlgaeDICEConfig()
) -> AlgaeDICEState:
  """`make_algaedice(spec, config).init(key)`."""
  return make_algaedice(spec, config).init(key)


def as_agent(algae: AlgaeDICE, reward_fn: RewardFn | None = None) -> Agent:
  """The learner behind the `irl.loops.Agent` interface (`irl.sac.agent.as_agent`): each agent
  update draws `config.batch_size` transitions uniformly from the replay buffer and makes one
  `algae.update` with `reward_fn`. The expert buffer is ignored (OPIRL keeps expert data out of the
  RL buffer)."""
  return sac_agent.as_agent(algae, reward_fn)
