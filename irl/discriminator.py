r"""The reward / discriminator learner of OPIRL (Hoshino et al., ICRA 2022, arXiv 2109.04307) and of
off-policy GAIL (DAC; Kostrikov et al., ICLR 2019), as pure functions over an explicit state.

  disc = make_discriminator(obs_dim, act_dim, DiscriminatorConfig())
  state = disc.init(key)
  state, metrics = disc.update(state, expert_batch, policy_batch, key)  # irl.replay.Transition batches
  r = disc.reward(state.params, obs, action, next_obs)                  # what the policy is trained on
  sac.update(sac_state, batch, key, reward_fn=disc.reward_fn(state))    # plugged into irl.sac

Notes on the official code: /work/shared/reference/irl.md sections 1.2(a), 1.4, 1.5 and 1.6.

**AIRL form** (`kind='airl'`, OPIRL's `AIRLGP`; Fu et al. 2018, "Learning Robust Rewards with
Adversarial Inverse RL", eq. for D_{θ,φ}). Two networks, a reward r and a potential (shaping) h:

  f(s, a, s') = r(x) + γ_d·(1 − d)·h(s') − h(s),       x = s | (s, a) | (s, s')  per `reward_input`

where d is the transition's true termination (a state after the end has potential 0; with absorbing
states every row has d = 0, so this only matters without them);

and the discriminator is σ(f): expert (label 1) against policy (label 0). AIRL's posterior form
D = exp f / (exp f + π(a|s)) has the logit f − log π(a|s). The official code computes log π but puts it
in a separate logit column computed with gradient recording stopped, so that column is constant in the
parameters and what it actually optimises is σ(f) alone. `use_log_pi=False` (the default) reproduces
that; `use_log_pi=True` optimises the true AIRL logit f − log π (the caller passes log π(a|s) of the
current policy for both batches; it is treated as a constant, and it changes the gradient of r and h
because it shifts every logit).

**GAIL form** (`kind='gail'`, DAC): one network D(x) whose output is the logit z of
σ(z) = P(expert | x); x is (s, a) by default (DAC); 's' or 'ss' give state-only variants. There is
no shaping network; D uses `reward_hidden`.

**Loss** (both kinds): the binary cross-entropy with expert = 1 and policy = 0, **averaged over each
batch and the two averages summed** (as the official code adds the two terms),

  L_BCE = mean_E[softplus(−z)] + mean_π[softplus(z)],

so a discriminator at chance (z = 0) scores 2·log 2. Plus `gp_coeff` times the WGAN-GP penalty
(Gulrajani et al. 2017) mean[(‖∇_x̂ net(x̂)‖ − gp_target)²] at per-sample interpolations
x̂ = u·x_E + (1 − u)·x_π, u ~ U[0, 1], taken separately on each network, as the official code does:
on r over its own input x (so on (s, a) for 'sa'), and on h over the state s (the h(s') term is not
penalised separately). The two networks share each sample's u. For GAIL there is one penalty, on D.
Expert and policy batches must therefore have the same size.

**Reward given to the policy** (`reward`): AIRL: r(x) alone (`policy_reward='r'`, the official default
and the network OPIRL transfers) or the shaped f = r + γ_d·h(s') − h(s) (`'f'`, the official
`--reward_shaping`); never minus log π (with an entropy-regularised learner such as SAC the entropy
term already supplies it). GAIL, with D = σ(z) the expert probability (`reward_transform`):
  - 'logit': z = log D − log(1 − D), no fixed sign; AIRL's form, which the DAC paper adopts (from
    memory of the paper, not re-checked);
  - 'log_d': log D = −softplus(−z) < 0, a per-step cost that favours ending episodes early;
  - 'neg_log_1m_d': −log(1 − D) = softplus(z) > 0, the original GAIL reward (Ho & Ermon 2016, in the
    expert = 1 convention), a per-step bonus that favours surviving.
Both biases are what absorbing states (`irl.absorbing`) are meant to remove. Then, if
`reward_clip_max` is set, the reward is clipped from above (OPIRL's PointMaze uses 0.0).

The absorbing-state indicator is just one more observation dimension: the caller appends it
(`irl.absorbing`) and passes `obs_dim` including it.

**Goal-relative features** (`goal_relative=(achieved, desired, size)`, off by default). In a goal-reaching
task whose observation holds a position block p = s[achieved : achieved + size] and a goal block
g = s[desired : desired + size], both networks see s with p replaced by p − g and g removed, so r and h
are invariant to translating position and goal together. It is a prior on the reward, not part of
AIRL: one demonstration shows one goal, and a reward of the raw observation can only learn "be that
demonstration", which says nothing about the other goals (docs/opirl_study.md, PointMaze); a reward
of p − g learned from the same demonstration applies to every goal. The policy's observation is not
changed. With expert-statistics normalisation, p and g would be scaled apart, so callers use it on
raw positions (irl.builders rejects it together with `normalize_states`).

Departures from the official code: Adam here is optax's (ε = 1e-8; TF's default is 1e-7).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from irl import networks
from irl.hparams import KINDS, POLICY_REWARDS, REWARD_INPUTS, REWARD_TRANSFORMS, DiscriminatorConfig  # noqa: F401 (re-exported)
from irl.networks import Network
from irl.replay import Transition

RewardFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


class DiscriminatorParams(NamedTuple):
  """The learned functions: `reward` (r, or GAIL's D) and `shaping` (h; None for GAIL)."""

  reward: Any
  shaping: Any


@flax.struct.dataclass
class DiscriminatorState:
  """Params, one Adam state per network (`shaping_opt_state` is None for GAIL) and the number of
  `update` calls so far (int32 scalar)."""

  params: DiscriminatorParams
  reward_opt_state: Any
  shaping_opt_state: Any
  step: jax.Array

  @property
  def reward_params(self):
    return self.params.reward

  @property
  def shaping_params(self):
    return self.params.shaping


class Discriminator(NamedTuple):
  """The discriminator functions for one observation/action size and config (`make_discriminator`).

  `logits`, `reward` and `reward_fn` take `DiscriminatorParams` or a whole `DiscriminatorState`.
  """

  config: DiscriminatorConfig
  obs_dim: int
  act_dim: int
  reward_net: Network
  shaping_net: Network | None
  init: Callable[[jax.Array], DiscriminatorState]
  logits: Callable[..., jax.Array]
  reward: Callable[..., jax.Array]
  reward_fn: Callable[[Any], RewardFn]
  loss: Callable[..., tuple[jax.Array, dict]]
  update: Callable[..., tuple[DiscriminatorState, dict]]


def _safe_norm(g: jax.Array) -> jax.Array:
  """‖g‖ over the last axis with a finite gradient at g = 0 (where sqrt's derivative is infinite)."""
  squared = jnp.sum(g**2, axis=-1)
  positive = squared > 0
  return jnp.where(positive, jnp.sqrt(jnp.where(positive, squared, 1.0)), 0.0)


def _as_params(params_or_state) -> DiscriminatorParams:
  return (
    params_or_state.params if isinstance(params_or_state, DiscriminatorState) else params_or_state
  )


def make_discriminator(
  obs_dim: int, act_dim: int, config: DiscriminatorConfig = DiscriminatorConfig()
) -> Discriminator:
  """The discriminator for observations [obs_dim] (absorbing indicator included, if any) and actions
  [act_dim] (module docstring). Raises ValueError for a bad config field or size."""
  if not isinstance(config, DiscriminatorConfig):
    raise TypeError(f'config must be a DiscriminatorConfig, got {type(config).__name__}')
  config.validate()
  for name, value in (('obs_dim', obs_dim), ('act_dim', act_dim)):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
      raise ValueError(f'{name} must be a positive int, got {value!r}')
  obs_dim, act_dim = int(obs_dim), int(act_dim)
  is_airl = config.kind == 'airl'
  if config.goal_relative:
    achieved, desired, size = (int(i) for i in config.goal_relative)
    if max(achieved, desired) + size > obs_dim:
      raise ValueError(
        f'DiscriminatorConfig.goal_relative {config.goal_relative} reaches past the '
        f'observation (obs_dim {obs_dim})'
      )
    keep = np.array([i for i in range(obs_dim) if not desired <= i < desired + size])
    offset = np.zeros(obs_dim, np.float32)  # as an index map: achieved block minus desired block
    goal_index = np.arange(obs_dim)
    goal_index[achieved : achieved + size] = np.arange(desired, desired + size)
    offset[achieved : achieved + size] = 1.0
  feature_dim = obs_dim - size if config.goal_relative else obs_dim

  def features(obs: jax.Array) -> jax.Array:
    """What r and h see of an observation: itself, or with the goal block subtracted from the
    position block and dropped (`goal_relative`)."""
    if not config.goal_relative:
      return obs
    relative = obs - offset * jnp.take(obs, goal_index, axis=-1)
    return jnp.take(relative, keep, axis=-1)

  reward_in = {'s': feature_dim, 'sa': feature_dim + act_dim, 'ss': 2 * feature_dim}[
    config.reward_input
  ]
  reward_net = networks.make_mlp(reward_in, config.reward_hidden, 1)
  shaping_net = networks.make_mlp(feature_dim, config.shaping_hidden, 1) if is_airl else None
  reward_tx = optax.adam(config.learning_rate)
  shaping_tx = optax.adam(config.learning_rate)

  def check_inputs(obs, action, next_obs) -> None:
    obs_shape, action_shape = jnp.shape(obs), jnp.shape(action)
    if len(obs_shape) < 1 or obs_shape[-1] != obs_dim:
      raise ValueError(f'obs must have shape [..., {obs_dim}], got {obs_shape}')
    if jnp.shape(next_obs) != obs_shape:
      raise ValueError(
        f'next_obs must have the shape of obs {obs_shape}, got {jnp.shape(next_obs)}'
      )
    if action_shape != obs_shape[:-1] + (act_dim,):
      raise ValueError(
        f'action must have shape {obs_shape[:-1] + (act_dim,)} for obs of shape '
        f'{obs_shape}, got {action_shape}'
      )

  def reward_inputs(obs, action, next_obs) -> jax.Array:
    """x of r (or D), per `reward_input`, on the `features` of the observations."""
    obs, next_obs = features(obs), features(next_obs)
    if config.reward_input == 's':
      return obs
    if config.reward_input == 'sa':
      return jnp.concatenate([obs, action.astype(obs.dtype)], axis=-1)
    return jnp.concatenate([obs, next_obs], axis=-1)

  def scalar(net: Network, params, x: jax.Array) -> jax.Array:
    return net.apply(params, x)[..., 0]

  def shaped(params: DiscriminatorParams, obs, action, next_obs, terminated=None) -> jax.Array:
    """AIRL's f = r(x) + γ_d·(1 − d)·h(s') − h(s), or GAIL's logit z. With `terminated` d given, a
    true termination drops h(s'): the potential of a state after the episode's end is 0, which keeps
    the shaping policy-invariant on terminating environments without absorbing states (with
    absorbing states every stored row has d = 0 and the absorbing state carries the ending)."""
    value = scalar(reward_net, params.reward, reward_inputs(obs, action, next_obs))
    if is_airl:
      next_potential = scalar(shaping_net, params.shaping, features(next_obs))
      if terminated is not None:
        next_potential = jnp.where(jnp.asarray(terminated, bool), 0.0, next_potential)
      value = (
        value + config.gamma_d * next_potential - scalar(shaping_net, params.shaping, features(obs))
      )
    return value

  def init(key: jax.Array) -> DiscriminatorState:
    reward_key, shaping_key = jax.random.split(key)
    reward_params = reward_net.init(reward_key)
    shaping_params = shaping_net.init(shaping_key) if is_airl else None
    return DiscriminatorState(
      params=DiscriminatorParams(reward=reward_params, shaping=shaping_params),
      reward_opt_state=reward_tx.init(reward_params),
      shaping_opt_state=shaping_tx.init(shaping_params) if is_airl else None,
      step=jnp.zeros((), jnp.int32),
    )

  def logits(
    params,
    obs: jax.Array,
    action: jax.Array,
    next_obs: jax.Array,
    log_pi: jax.Array | None = None,
    terminated: jax.Array | None = None,
  ) -> jax.Array:
    """The discriminator logit [...] of each transition: AIRL f (minus log π when `use_log_pi`, which
    then needs `log_pi` [...]; otherwise `log_pi` is ignored), GAIL z. log π is a constant here
    (gradient stopped). `terminated` [...] masks AIRL's h(s') at true terminations (`shaped`)."""
    params = _as_params(params)
    check_inputs(obs, action, next_obs)
    value = shaped(params, obs, action, next_obs, terminated)
    if config.use_log_pi:
      if log_pi is None:
        raise ValueError(
          'DiscriminatorConfig.use_log_pi is True, so log_pi (log π(a|s) of the current '
          'policy for each transition) must be given'
        )
      if jnp.shape(log_pi) != jnp.shape(value):
        raise ValueError(f'log_pi must have shape {jnp.shape(value)}, got {jnp.shape(log_pi)}')
      value = value - jax.lax.stop_gradient(jnp.asarray(log_pi, value.dtype))
    return value

  def reward(
    params,
    obs: jax.Array,
    action: jax.Array,
    next_obs: jax.Array,
    terminated: jax.Array | None = None,
  ) -> jax.Array:
    """The reward [...] the policy is trained on (module docstring), clipped at `reward_clip_max`;
    `terminated` masks h(s') of the shaped AIRL reward at true terminations (`shaped`)."""
    params = _as_params(params)
    check_inputs(obs, action, next_obs)
    if is_airl:
      if config.policy_reward == 'r':
        value = scalar(reward_net, params.reward, reward_inputs(obs, action, next_obs))
      else:
        value = shaped(params, obs, action, next_obs, terminated)
    else:
      z = shaped(params, obs, action, next_obs)
      value = {
        'logit': lambda: z,
        'log_d': lambda: -jax.nn.softplus(-z),  # log σ(z)
        'neg_log_1m_d': lambda: jax.nn.softplus(z),
      }[config.reward_transform]()  # −log(1 − σ(z))
    if config.reward_clip_max is not None:
      value = jnp.minimum(value, config.reward_clip_max)
    return value

  def reward_fn(params_or_state) -> RewardFn:
    """`(obs, action, next_obs) -> reward` with these params frozen (gradient stopped), for
    `irl.sac`'s `reward_fn` or for reward transfer."""
    params = jax.lax.stop_gradient(_as_params(params_or_state))
    return lambda obs, action, next_obs: reward(params, obs, action, next_obs)

  def gradient_penalty(net: Network, params, x_expert, x_policy, u) -> jax.Array:
    """mean[(‖∇_x̂ net(x̂)‖ − gp_target)²] at x̂ = u·x_E + (1 − u)·x_π, one u per sample."""
    x_hat = u * x_expert + (1.0 - u) * x_policy
    # Each output depends only on its own row, so the gradient of the sum is every row's gradient.
    grads = jax.grad(lambda x: jnp.sum(scalar(net, params, x)))(x_hat)
    return jnp.mean((_safe_norm(grads) - config.gp_target) ** 2)

  def loss(
    params,
    expert: Transition,
    policy: Transition,
    key: jax.Array,
    expert_log_pi: jax.Array | None = None,
    policy_log_pi: jax.Array | None = None,
  ) -> tuple[jax.Array, dict]:
    """L_BCE + gp_coeff·(GP_r + GP_h) (module docstring) on batches with the same leading size B.

    aux: 'bce', 'gp' (GP_r + GP_h, before gp_coeff), 'gp_reward', 'gp_shaping' (0 for GAIL),
    'expert_accuracy' (fraction of expert logits > 0), 'policy_accuracy' (policy logits < 0),
    'expert_logit', 'policy_logit' (means), 'expert_reward' and 'reward' (mean policy reward on each
    batch, as `reward` gives it).
    """
    params = _as_params(params)
    for name, batch in (('expert', expert), ('policy', policy)):
      if not isinstance(batch, Transition):
        raise TypeError(f'{name} must be an irl.replay.Transition, got {type(batch).__name__}')
      if jnp.ndim(batch.obs) != 2:
        raise ValueError(f'{name}.obs must have shape [B, {obs_dim}], got {jnp.shape(batch.obs)}')
    if jnp.shape(expert.obs)[0] != jnp.shape(policy.obs)[0]:
      raise ValueError(
        f'expert and policy batches must have the same size for the gradient-penalty '
        f'interpolation, got {jnp.shape(expert.obs)[0]} and {jnp.shape(policy.obs)[0]}'
      )
    expert_logits = logits(
      params, expert.obs, expert.action, expert.next_obs, expert_log_pi, expert.terminated
    )
    policy_logits = logits(
      params, policy.obs, policy.action, policy.next_obs, policy_log_pi, policy.terminated
    )
    # −log σ(z) = softplus(−z) for label 1, −log(1 − σ(z)) = softplus(z) for label 0.
    bce = jnp.mean(jax.nn.softplus(-expert_logits)) + jnp.mean(jax.nn.softplus(policy_logits))

    u = jax.random.uniform(key, (jnp.shape(expert.obs)[0], 1), expert_logits.dtype)
    gp_reward = gradient_penalty(
      reward_net,
      params.reward,
      reward_inputs(expert.obs, expert.action, expert.next_obs),
      reward_inputs(policy.obs, policy.action, policy.next_obs),
      u,
    )
    if is_airl:
      gp_shaping = gradient_penalty(
        shaping_net, params.shaping, features(expert.obs), features(policy.obs), u
      )
    else:
      gp_shaping = jnp.zeros_like(gp_reward)
    gp = gp_reward + gp_shaping
    total = bce + config.gp_coeff * gp
    aux = {
      'bce': bce,
      'gp': gp,
      'gp_reward': gp_reward,
      'gp_shaping': gp_shaping,
      'expert_accuracy': jnp.mean((expert_logits > 0).astype(jnp.float32)),
      'policy_accuracy': jnp.mean((policy_logits < 0).astype(jnp.float32)),
      'expert_logit': jnp.mean(expert_logits),
      'policy_logit': jnp.mean(policy_logits),
      'expert_reward': jnp.mean(
        reward(params, expert.obs, expert.action, expert.next_obs, expert.terminated)
      ),
      'reward': jnp.mean(
        reward(params, policy.obs, policy.action, policy.next_obs, policy.terminated)
      ),
    }
    return total, aux

  def update(
    state: DiscriminatorState,
    expert_batch: Transition,
    policy_batch: Transition,
    key: jax.Array,
    expert_log_pi: jax.Array | None = None,
    policy_log_pi: jax.Array | None = None,
    penalty: Callable[[DiscriminatorParams], jax.Array] | None = None,
  ) -> tuple[DiscriminatorState, dict]:
    """One Adam step on each network for `loss` on these batches, plus `penalty(params)` when given
    (a continual-learning method's term, `irl.continual`; metric 'consolidation'); metrics are the
    scalar 'loss' and `loss`'s aux. Pure and jittable: with the same shapes it traces once."""

    def objective(params):
      total, aux = loss(params, expert_batch, policy_batch, key, expert_log_pi, policy_log_pi)
      if penalty is None:
        return total, aux
      extra = penalty(params)
      return total + extra, {**aux, 'consolidation': extra}

    (total, aux), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
    reward_updates, reward_opt_state = reward_tx.update(
      grads.reward, state.reward_opt_state, state.params.reward
    )
    reward_params = optax.apply_updates(state.params.reward, reward_updates)
    if is_airl:
      shaping_updates, shaping_opt_state = shaping_tx.update(
        grads.shaping, state.shaping_opt_state, state.params.shaping
      )
      shaping_params = optax.apply_updates(state.params.shaping, shaping_updates)
    else:
      shaping_params, shaping_opt_state = None, None
    new_state = DiscriminatorState(
      params=DiscriminatorParams(reward=reward_params, shaping=shaping_params),
      reward_opt_state=reward_opt_state,
      shaping_opt_state=shaping_opt_state,
      step=state.step + 1,
    )
    return new_state, {'loss': total, **aux}

  return Discriminator(
    config=config,
    obs_dim=obs_dim,
    act_dim=act_dim,
    reward_net=reward_net,
    shaping_net=shaping_net,
    init=init,
    logits=logits,
    reward=reward,
    reward_fn=reward_fn,
    loss=loss,
    update=update,
  )
