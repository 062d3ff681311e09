r"""On-policy adversarial IRL: AIRL and GAIL with a PPO generator, the baselines of OPIRL's claim.

  runner = make_onpolicy('airl_onpolicy', env, prep, PPOConfig(), discriminator_config, expert_buffer,
                         eval_episodes=20)
  carry = runner.init(key)
  carry, metrics = runner.train_periods(carry, first_period, num_periods=1, rounds_per_period=25)

AIRL (Fu, Luo and Levine, ICLR 2018) and GAIL (Ho and Ermon, NeurIPS 2016) as their papers run them:
every round the current policy collects a fresh batch of `num_envs` × `num_steps` environment steps
(vmapped JAX-native environments), the discriminator takes `disc_updates` steps on minibatches of
that batch against as many expert rows, the batch is labelled with the updated discriminator's
reward, and PPO (Schulman et al. 2017, "Proximal Policy Optimization Algorithms", eq. 7 with GAE,
Schulman et al. 2016) makes `num_epochs` passes of `num_minibatches` minibatches over it; then the
batch is thrown away. That throw-away is what makes it sample-hungry, and what OPIRL's replay buffer
avoids. The whole run is `lax.scan`s inside one `jit`, in the style of PureJaxRL (Lu et al. 2022), and
vmaps over seeds.

The discriminator, the demonstrations, the observation preprocessing and the evaluation are the
off-policy algorithms' (`irl.discriminator`, `irl.imitation.ObsTransform`, `irl.loops.evaluate`):
- 'airl_onpolicy': the AIRL form with the posterior logit f − log π(a|s) (log π of the policy that
  collected the batch), and the policy's reward log D − log(1 − D) = f − log π: AIRL's entropy-
  regularised reward;
- 'gail_onpolicy': the GAIL form D(s, a) and the logit reward log D − log(1 − D) (as DAC here).
True terminations drop h(s') from f (`irl.discriminator`); this loop stores no absorbing rows.

The policy is the tanh-Gaussian actor of the off-policy learners (`irl.networks`, unit box mapped to
the action bounds), so log π(a|s) of a stored action is exact; the value function is an MLP. Rewards
are divided by a running standard deviation of the discounted return (as common PPO implementations
do) when `normalize_reward`. Truncated episodes bootstrap from the value of the true next
observation; terminated ones do not.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from envs.core import step_autoreset
from irl import loops, networks, replay
from irl.discriminator import Discriminator, DiscriminatorConfig, make_discriminator
from irl.replay import Transition

ONPOLICY_ALGOS = ('airl_onpolicy', 'gail_onpolicy')
# The off-policy algorithm whose discriminator form each one uses (irl.imitation.discriminator_defaults).
DISCRIMINATOR_FORM = {'airl_onpolicy': 'airl', 'gail_onpolicy': 'dac'}


@dataclasses.dataclass(frozen=True)
class PPOConfig:
  """PPO and the on-policy discriminator schedule; defaults follow the usual PPO MuJoCo settings
  (reference/irl.md §8.1: learning rate 3e-4, about 2048 steps per round, 10 epochs, small
  minibatches, γ 0.99, GAE λ 0.95, clip 0.2), as 20 vmapped environments of 125 steps (2,500 steps
  per round, so that the configs' evaluation periods of 5,000 steps hold whole rounds) in 25
  minibatches of 100.
  `disc_updates` discriminator steps per round on minibatches of `disc_batch_size` rollout rows against
  as many expert rows. `true_reward` trains PPO on the environment's reward (the discriminator still
  learns, but the policy ignores it): the on-policy counterpart of SAC on the true reward. Frozen and hashable, so it can be a static argument."""
  num_envs: int = 20
  num_steps: int = 125
  num_epochs: int = 10
  num_minibatches: int = 25
  learning_rate: float = 3e-4
  discount: float = 0.99
  gae_lambda: float = 0.95
  clip_eps: float = 0.2
  entropy_coeff: float = 0.0
  value_coeff: float = 0.5
  max_grad_norm: float = 0.5
  hidden_sizes: tuple[int, ...] = (64, 64)
  normalize_reward: bool = True
  disc_updates: int = 4
  disc_batch_size: int = 256
  true_reward: bool = False   # PPO on the environment's reward instead (a check of the generator)

  @property
  def steps_per_round(self) -> int:
    return self.num_envs * self.num_steps

  def validate(self) -> None:
    """Raises ValueError naming the first bad field and its allowed values."""
    for name in ('num_envs', 'num_steps', 'num_epochs', 'num_minibatches', 'disc_updates',
                 'disc_batch_size'):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f'PPOConfig.{name} must be a positive int, got {value!r}')
    if self.steps_per_round % self.num_minibatches:
      raise ValueError(f'PPOConfig.num_minibatches ({self.num_minibatches}) must divide num_envs × '
                       f'num_steps ({self.steps_per_round})')
    for name in ('learning_rate', 'clip_eps', 'max_grad_norm'):
      if not getattr(self, name) > 0:
        raise ValueError(f'PPOConfig.{name} must be > 0, got {getattr(self, name)!r}')
    for name in ('discount', 'gae_lambda'):
      if not 0.0 <= getattr(self, name) <= 1.0:
        raise ValueError(f'PPOConfig.{name} must be in [0, 1], got {getattr(self, name)!r}')
    for name in ('entropy_coeff', 'value_coeff'):
      if not getattr(self, name) >= 0:
        raise ValueError(f'PPOConfig.{name} must be >= 0, got {getattr(self, name)!r}')
    if not isinstance(self.hidden_sizes, tuple) or not self.hidden_sizes or any(
        isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1 for h in self.hidden_sizes):
      raise ValueError(f'PPOConfig.hidden_sizes must be a non-empty tuple of positive ints, got '
                       f'{self.hidden_sizes!r}')


@flax.struct.dataclass
class PPOState:
  actor_params: Any
  value_params: Any
  opt_state: Any
  return_mean: jax.Array     # running statistics of the discounted return (reward normalisation)
  return_var: jax.Array
  return_count: jax.Array
  discounted_return: jax.Array   # [num_envs], the running discounted return of each environment


@flax.struct.dataclass
class OnPolicyCarry:
  """What a run carries between rounds; `agent_state` is an `irl.imitation.IRLState`."""
  agent_state: Any
  env_state: Any
  obs: jax.Array             # [num_envs, d] raw observations each environment acts from next
  episode_return: jax.Array  # [num_envs] true return of each running episode so far
  key: jax.Array


class Rollout(NamedTuple):
  transitions: Transition    # preprocessed rows [T, N, ...]
  log_prob: jax.Array        # [T, N] log π(a|s) of the collecting policy
  value: jax.Array           # [T, N] V(s)
  next_value: jax.Array      # [T, N] V(s') of the true next observation


class OnPolicyRunner(NamedTuple):
  """An on-policy run's pure functions (`make_onpolicy`)."""
  config: PPOConfig
  discriminator: Discriminator
  actor: networks.ActorNetwork
  init: Callable[[jax.Array], OnPolicyCarry]
  train_periods: Callable[..., tuple[OnPolicyCarry, dict]]
  act: Callable[..., jax.Array]


def gae(reward, value, next_value, terminated, episode_end, discount, lam):
  """Generalised advantage estimates and value targets [T, N] (Schulman et al. 2016, eq. 16):
  δ_t = r_t + γ (1 − d_t) V(s'_t) − V(s_t), A_t = δ_t + γ λ (1 − e_t) A_{t+1}, where d marks true
  terminations (no bootstrap) and e every episode end (terminated or truncated: the trace stops)."""
  delta = reward + discount * (1.0 - terminated) * next_value - value

  def body(next_advantage, inputs):
    delta_t, end_t = inputs
    advantage = delta_t + discount * lam * (1.0 - end_t) * next_advantage
    return advantage, advantage

  _, advantages = jax.lax.scan(body, jnp.zeros_like(delta[0]), (delta, episode_end), reverse=True)
  return advantages, advantages + value


def unit_log_prob(actor, actor_params, obs, unit_action):
  """log π(a|s) [B] of actions already in the unit box (clipped off ±1 so that arctanh is finite)."""
  mean, log_std = actor.apply(actor_params, obs)
  u = jnp.arctanh(jnp.clip(unit_action, -1.0 + 1e-6, 1.0 - 1e-6))
  return networks.tanh_gaussian_log_prob(u, mean, log_std)


def ppo_loss(params, actor, value_net, obs, unit_action, old_log_prob, advantage, target, *,
             clip_eps, value_coeff, entropy_coeff):
  """The clipped surrogate −E[min(ρA, clip(ρ, 1 ± ε)A)] (Schulman et al. 2017, eq. 7) with
  ρ = π(a|s) / π_old(a|s), plus value_coeff·E[(V − target)²] minus entropy_coeff times an entropy
  estimate (−log π of the batch's actions). Returns (loss, aux)."""
  actor_params, value_params = params
  log_prob = unit_log_prob(actor, actor_params, obs, unit_action)
  ratio = jnp.exp(log_prob - old_log_prob)
  surrogate = jnp.minimum(ratio * advantage,
                          jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantage)
  policy_loss = -jnp.mean(surrogate)
  value_loss = jnp.mean((value_net.apply(value_params, obs)[..., 0] - target) ** 2)
  entropy = -jnp.mean(log_prob)
  loss = policy_loss + value_coeff * value_loss - entropy_coeff * entropy
  return loss, {'policy_loss': policy_loss, 'value_loss': value_loss, 'entropy': entropy,
                'clip_fraction': jnp.mean((jnp.abs(ratio - 1.0) > clip_eps).astype(jnp.float32))}


def make_onpolicy(algo: str, env, prep, config: PPOConfig, discriminator_config: DiscriminatorConfig,
                  expert_buffer: replay.ExpertBuffer, eval_episodes: int) -> OnPolicyRunner:
  """The on-policy run of `algo` ('airl_onpolicy' or 'gail_onpolicy') on the JAX-native `env` with
  the preprocessing `prep` (`irl.imitation.ObsTransform`) and the preprocessed `expert_buffer`."""
  from irl import imitation
  if algo not in ONPOLICY_ALGOS:
    raise ValueError(f'algo must be one of {list(ONPOLICY_ALGOS)}, got {algo!r}')
  config.validate()
  spec = prep.spec(env.spec)
  obs_dim, act_dim = spec.observation.shape[0], spec.action.shape[0]
  disc = make_discriminator(obs_dim, act_dim, discriminator_config)
  use_log_pi = discriminator_config.use_log_pi
  bounds = networks.action_bounds(spec)
  actor = networks.make_actor(obs_dim, act_dim, config.hidden_sizes)
  value_net = networks.make_mlp(obs_dim, config.hidden_sizes, 1)
  tx = optax.chain(optax.clip_by_global_norm(config.max_grad_norm),
                   optax.adam(config.learning_rate, eps=1e-5))
  n, t = config.num_envs, config.num_steps
  minibatch = config.steps_per_round // config.num_minibatches

  def act(policy_state: PPOState, obs, key, deterministic: bool):
    """Environment actions for raw observations: the mode when deterministic, else a sample."""
    mean, log_std = actor.apply(policy_state.actor_params, prep.obs(obs))
    if deterministic:
      unit = jnp.tanh(mean)
    else:
      unit, _ = networks.sample_tanh_gaussian(key, mean, log_std)
    return networks.to_env_action(unit, bounds)

  def init(key: jax.Array) -> OnPolicyCarry:
    actor_key, value_key, disc_key, env_key, carry_key = jax.random.split(key, 5)
    actor_params, value_params = actor.init(actor_key), value_net.init(value_key)
    policy = PPOState(actor_params=actor_params, value_params=value_params,
                      opt_state=tx.init((actor_params, value_params)),
                      return_mean=jnp.zeros(()), return_var=jnp.ones(()),
                      return_count=jnp.full((), 1e-4), discounted_return=jnp.zeros(n))
    env_state, obs = jax.vmap(env.reset)(jax.random.split(env_key, n))
    return OnPolicyCarry(agent_state=imitation.IRLState(policy=policy, discriminator=disc.init(disc_key)),
                         env_state=env_state, obs=obs, episode_return=jnp.zeros(n), key=carry_key)

  def collect(carry: OnPolicyCarry, key):
    """num_steps steps of the n environments with the current policy."""
    policy = carry.agent_state.policy

    def step(c, step_key):
      env_state, obs, episode_return, ended_sum, ended_count = c
      action_key, reset_key = jax.random.split(step_key)
      p_obs = prep.obs(obs)
      mean, log_std = actor.apply(policy.actor_params, p_obs)
      unit, log_prob = networks.sample_tanh_gaussian(action_key, mean, log_std)
      action = networks.to_env_action(unit, bounds)
      out = jax.vmap(step_autoreset, in_axes=(None, 0, 0, 0))(
          env, env_state, action, jax.random.split(reset_key, n))
      p_next = prep.obs(out.next_obs)
      row = Transition(obs=p_obs, action=action, reward=out.reward,
                       next_obs=p_next, terminated=out.terminated, truncated=out.truncated)
      value = value_net.apply(policy.value_params, p_obs)[..., 0]
      next_value = value_net.apply(policy.value_params, p_next)[..., 0]
      episode_return = episode_return + out.reward
      done = out.terminated | out.truncated
      ended_sum = ended_sum + jnp.sum(jnp.where(done, episode_return, 0.0))
      ended_count = ended_count + jnp.sum(done)
      episode_return = jnp.where(done, 0.0, episode_return)
      return ((out.state, out.obs, episode_return, ended_sum, ended_count),
              Rollout(row, log_prob, value, next_value))

    init_c = (carry.env_state, carry.obs, carry.episode_return, jnp.zeros(()), jnp.zeros((), jnp.int32))
    (env_state, obs, episode_return, ended_sum, ended_count), rollout = jax.lax.scan(
        step, init_c, jax.random.split(key, t))
    return carry.replace(env_state=env_state, obs=obs, episode_return=episode_return), rollout, \
        (ended_sum, ended_count)

  def flat(x):
    return jnp.reshape(x, (t * n,) + x.shape[2:])

  def discriminator_round(disc_state, actor_params, rollout: Rollout, key):
    """disc_updates steps on rollout minibatches against expert rows; log π (AIRL) is the
    collecting policy's, `actor_params`."""
    rows = jax.tree.map(flat, rollout.transitions)
    log_pi = flat(rollout.log_prob)

    def body(state, k):
      expert_key, rollout_key, update_key = jax.random.split(k, 3)
      expert_batch = replay.sample(expert_buffer, expert_key, config.disc_batch_size)
      index = jax.random.randint(rollout_key, (config.disc_batch_size,), 0, t * n)
      negatives = jax.tree.map(lambda x: x[index], rows)
      log_pis = {}
      if use_log_pi:
        expert_log_pi = unit_log_prob(actor, actor_params, expert_batch.obs,
                                    networks.to_unit_action(expert_batch.action, bounds))
        log_pis = dict(expert_log_pi=expert_log_pi, policy_log_pi=log_pi[index])
      return disc.update(state, expert_batch, negatives, update_key, **log_pis)

    return jax.lax.scan(body, disc_state, jax.random.split(key, config.disc_updates))

  def learned_reward(disc_state, rollout: Rollout):
    rows = rollout.transitions
    if use_log_pi:   # AIRL: log D − log(1 − D) = f − log π
      return disc.logits(disc_state.params, rows.obs, rows.action, rows.next_obs, rollout.log_prob,
                         rows.terminated)
    return disc.reward(disc_state.params, rows.obs, rows.action, rows.next_obs, rows.terminated)

  def normalise(policy: PPOState, reward, episode_end):
    """Divides rewards by the running std of the discounted return; updates its statistics."""
    if not config.normalize_reward:
      return policy, reward

    def body(ret, inputs):
      r, end = inputs
      ret = ret * config.discount + r
      return jnp.where(end, 0.0, ret), ret

    discounted, returns = jax.lax.scan(body, policy.discounted_return, (reward, episode_end))
    batch_mean, batch_var, batch_count = jnp.mean(returns), jnp.var(returns), returns.size
    delta = batch_mean - policy.return_mean
    count = policy.return_count + batch_count
    mean = policy.return_mean + delta * batch_count / count
    m2 = (policy.return_var * policy.return_count + batch_var * batch_count
          + delta ** 2 * policy.return_count * batch_count / count)
    policy = policy.replace(return_mean=mean, return_var=m2 / count, return_count=count,
                            discounted_return=discounted)
    return policy, reward / jnp.sqrt(policy.return_var + 1e-8)

  def ppo_update(policy: PPOState, rollout: Rollout, advantages, targets, key):
    rows = rollout.transitions
    data = (flat(rows.obs), flat(networks.to_unit_action(rows.action, bounds)), flat(rollout.log_prob),
            flat(advantages), flat(targets))

    def epoch(state, epoch_key):
      order = jax.random.permutation(epoch_key, t * n)
      batches = jax.tree.map(lambda x: jnp.reshape(x[order], (config.num_minibatches, minibatch)
                                                   + x.shape[1:]), data)

      def minibatch_step(s, b):
        params, opt_state = s
        obs, unit_action, old_log_prob, advantage, target = b
        advantage = (advantage - jnp.mean(advantage)) / (jnp.std(advantage) + 1e-8)
        (_, aux), grads = jax.value_and_grad(ppo_loss, has_aux=True)(
            params, actor, value_net, obs, unit_action, old_log_prob, advantage, target,
            clip_eps=config.clip_eps, value_coeff=config.value_coeff,
            entropy_coeff=config.entropy_coeff)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), aux

      return jax.lax.scan(minibatch_step, state, batches)

    (params, opt_state), aux = jax.lax.scan(
        epoch, ((policy.actor_params, policy.value_params), policy.opt_state),
        jax.random.split(key, config.num_epochs))
    policy = policy.replace(actor_params=params[0], value_params=params[1], opt_state=opt_state)
    return policy, jax.tree.map(jnp.mean, aux)

  def round_(carry: OnPolicyCarry, _):
    key, collect_key, disc_key, ppo_key = jax.random.split(carry.key, 4)
    carry, rollout, (ended_sum, ended_count) = collect(carry.replace(key=key), collect_key)
    state = carry.agent_state
    disc_state, disc_metrics = discriminator_round(state.discriminator, state.policy.actor_params,
                                                   rollout, disc_key)
    rows = rollout.transitions
    episode_end = (rows.terminated | rows.truncated).astype(jnp.float32)
    raw_reward = rows.reward if config.true_reward else learned_reward(disc_state, rollout)
    policy, reward = normalise(state.policy, raw_reward, episode_end)
    advantages, targets = gae(reward, rollout.value, rollout.next_value,
                              rows.terminated.astype(jnp.float32), episode_end, config.discount,
                              config.gae_lambda)
    policy, ppo_metrics = ppo_update(policy, rollout, advantages, targets, ppo_key)
    metrics = imitation.prefixed({**ppo_metrics, 'reward': jnp.mean(reward)},
                                 jax.tree.map(jnp.mean, disc_metrics))
    carry = carry.replace(agent_state=imitation.IRLState(policy=policy, discriminator=disc_state))
    return carry, (metrics, ended_sum, ended_count)

  def train_periods(carry: OnPolicyCarry, first_period, *, num_periods: int, rounds_per_period: int,
                    state_constraint=None):
    """Evaluation periods of `rounds_per_period` rounds each; metrics have a leading axis of
    `num_periods`: `env_steps`, `eval_return`, `train_return` and the period means of the rest."""
    del state_constraint   # on-policy states are small; no model-axis split

    def period(c, index):
      c, (metrics, ended_sum, ended_count) = jax.lax.scan(round_, c, None, length=rounds_per_period)
      key, eval_key = jax.random.split(c.key)
      policy = c.agent_state.policy
      eval_return = jnp.mean(loops.evaluate(
          env, lambda obs, k: act(policy, obs, k, True), eval_key, eval_episodes))
      total = jnp.sum(ended_count)
      out = {'env_steps': (index + 1) * rounds_per_period * config.steps_per_round,
             'eval_return': eval_return,
             'train_return': jnp.where(total > 0, jnp.sum(ended_sum) / jnp.maximum(total, 1), jnp.nan),
             **jax.tree.map(jnp.mean, metrics)}
      return c.replace(key=key), out

    return jax.lax.scan(period, carry, first_period + jnp.arange(num_periods))

  return OnPolicyRunner(config=config, discriminator=disc, actor=actor, init=init,
                        train_periods=train_periods, act=act)
