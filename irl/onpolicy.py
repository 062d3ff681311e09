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
avoids. On JAX-native environments the whole run is `lax.scan`s inside one `jit`, in the style of
PureJaxRL (Lu et al. 2022), and vmaps over seeds. On Gymnasium (MuJoCo) environments `train_host`
steps the adapter's vector environment (`envs.gym_adapter`, `num_envs` environments in lock-step) on
the host with the jitted policy and learns from each round in one jitted call, the same `learn`.

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

from typing import Any, Callable, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from envs.core import step_autoreset
from irl import imitation, loops, networks, replay
from irl.discriminator import Discriminator, DiscriminatorConfig, make_discriminator
from irl.hparams import ONPOLICY_ALGOS, PPOConfig  # noqa: F401 (re-exported)
from irl.replay import Transition

# The off-policy algorithm whose discriminator form each one uses (irl.imitation.discriminator_defaults).
DISCRIMINATOR_FORM = {'airl_onpolicy': 'airl', 'gail_onpolicy': 'dac'}


@flax.struct.dataclass
class PPOState:
  actor_params: Any
  value_params: Any
  opt_state: Any
  return_mean: jax.Array  # running statistics of the discounted return (reward normalisation)
  return_var: jax.Array
  return_count: jax.Array
  discounted_return: jax.Array  # [num_envs], the running discounted return of each environment


@flax.struct.dataclass
class OnPolicyCarry:
  """What a run carries between rounds; `agent_state` is an `irl.imitation.IRLState`."""

  agent_state: Any
  env_state: Any
  obs: jax.Array  # [num_envs, d] raw observations each environment acts from next
  episode_return: jax.Array  # [num_envs] true return of each running episode so far
  key: jax.Array


class Rollout(NamedTuple):
  transitions: Transition  # preprocessed rows [T, N, ...]
  log_prob: jax.Array  # [T, N] log π(a|s) of the collecting policy
  value: jax.Array  # [T, N] V(s)
  next_value: jax.Array  # [T, N] V(s') of the true next observation


class OnPolicyRunner(NamedTuple):
  """An on-policy run's pure functions (`make_onpolicy`)."""

  config: PPOConfig
  discriminator: Discriminator
  actor: networks.ActorNetwork
  init: Callable[[jax.Array], OnPolicyCarry]
  train_periods: Callable[..., tuple[OnPolicyCarry, dict]]
  act: Callable[..., jax.Array]
  # The pieces of a round, for host environments (`train_host`).
  init_agent: Callable[[jax.Array], Any]
  sample: Callable[..., tuple[jax.Array, jax.Array, jax.Array]]
  preprocess: Callable[[jax.Array], jax.Array]
  values: Callable[..., tuple[jax.Array, jax.Array]]
  learn: Callable[..., tuple[Any, dict]]


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


def ppo_loss(
  params,
  actor,
  value_net,
  obs,
  unit_action,
  old_log_prob,
  advantage,
  target,
  *,
  clip_eps,
  value_coeff,
  entropy_coeff,
):
  """The clipped surrogate −E[min(ρA, clip(ρ, 1 ± ε)A)] (Schulman et al. 2017, eq. 7) with
  ρ = π(a|s) / π_old(a|s), plus value_coeff·E[(V − target)²] minus entropy_coeff times an entropy
  estimate (−log π of the batch's actions). Returns (loss, aux)."""
  actor_params, value_params = params
  log_prob = unit_log_prob(actor, actor_params, obs, unit_action)
  ratio = jnp.exp(log_prob - old_log_prob)
  surrogate = jnp.minimum(
    ratio * advantage, jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantage
  )
  policy_loss = -jnp.mean(surrogate)
  value_loss = jnp.mean((value_net.apply(value_params, obs)[..., 0] - target) ** 2)
  entropy = -jnp.mean(log_prob)
  loss = policy_loss + value_coeff * value_loss - entropy_coeff * entropy
  return loss, {
    'policy_loss': policy_loss,
    'value_loss': value_loss,
    'entropy': entropy,
    'clip_fraction': jnp.mean((jnp.abs(ratio - 1.0) > clip_eps).astype(jnp.float32)),
  }


def make_onpolicy(
  algo: str,
  env,
  prep,
  config: PPOConfig,
  discriminator_config: DiscriminatorConfig,
  expert_buffer: replay.ExpertBuffer,
  eval_episodes: int,
) -> OnPolicyRunner:
  """The on-policy run of `algo` ('airl_onpolicy' or 'gail_onpolicy') on `env` (JAX-native: `init`
  and `train_periods`; a host env: `train_host` with `init_agent`, `sample` and `learn`) with the
  preprocessing `prep` (`irl.imitation.ObsTransform`) and the preprocessed `expert_buffer`."""
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
  tx = optax.chain(
    optax.clip_by_global_norm(config.max_grad_norm), optax.adam(config.learning_rate, eps=1e-5)
  )
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

  def init_agent(key: jax.Array):
    """The agent state (`irl.imitation.IRLState`) of `init(key)`."""
    actor_key, value_key, disc_key, _, _ = jax.random.split(key, 5)
    actor_params, value_params = actor.init(actor_key), value_net.init(value_key)
    policy = PPOState(
      actor_params=actor_params,
      value_params=value_params,
      opt_state=tx.init((actor_params, value_params)),
      return_mean=jnp.zeros(()),
      return_var=jnp.ones(()),
      return_count=jnp.full((), 1e-4),
      discounted_return=jnp.zeros(n),
    )
    return imitation.IRLState(policy=policy, discriminator=disc.init(disc_key))

  def init(key: jax.Array) -> OnPolicyCarry:
    _, _, _, env_key, carry_key = jax.random.split(key, 5)
    env_state, obs = jax.vmap(env.reset)(jax.random.split(env_key, n))
    return OnPolicyCarry(
      agent_state=init_agent(key),
      env_state=env_state,
      obs=obs,
      episode_return=jnp.zeros(n),
      key=carry_key,
    )

  def sample(policy_state: PPOState, obs, key):
    """One step's exploration for raw observations [n, d]: (environment action, log π(a|s) of its
    unit-box action, the preprocessed observation)."""
    p_obs = prep.obs(obs)
    mean, log_std = actor.apply(policy_state.actor_params, p_obs)
    unit, log_prob = networks.sample_tanh_gaussian(key, mean, log_std)
    return networks.to_env_action(unit, bounds), log_prob, p_obs

  def collect(carry: OnPolicyCarry, key):
    """num_steps steps of the n environments with the current policy."""
    policy = carry.agent_state.policy

    def step(c, step_key):
      env_state, obs, episode_return, ended_sum, ended_count = c
      action_key, reset_key = jax.random.split(step_key)
      action, log_prob, p_obs = sample(policy, obs, action_key)
      out = jax.vmap(step_autoreset, in_axes=(None, 0, 0, 0))(
        env, env_state, action, jax.random.split(reset_key, n)
      )
      p_next = prep.obs(out.next_obs)
      row = Transition(
        obs=p_obs,
        action=action,
        reward=out.reward,
        next_obs=p_next,
        terminated=out.terminated,
        truncated=out.truncated,
      )
      value, next_value = values(policy, p_obs, p_next)
      episode_return = episode_return + out.reward
      done = out.terminated | out.truncated
      ended_sum = ended_sum + jnp.sum(jnp.where(done, episode_return, 0.0))
      ended_count = ended_count + jnp.sum(done)
      episode_return = jnp.where(done, 0.0, episode_return)
      return (
        (out.state, out.obs, episode_return, ended_sum, ended_count),
        Rollout(row, log_prob, value, next_value),
      )

    init_c = (
      carry.env_state,
      carry.obs,
      carry.episode_return,
      jnp.zeros(()),
      jnp.zeros((), jnp.int32),
    )
    (env_state, obs, episode_return, ended_sum, ended_count), rollout = jax.lax.scan(
      step, init_c, jax.random.split(key, t)
    )
    return (
      carry.replace(env_state=env_state, obs=obs, episode_return=episode_return),
      rollout,
      (ended_sum, ended_count),
    )

  def values(policy: PPOState, p_obs, p_next):
    """V(s) and V(s') of preprocessed observations."""
    return (
      value_net.apply(policy.value_params, p_obs)[..., 0],
      value_net.apply(policy.value_params, p_next)[..., 0],
    )

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
        expert_log_pi = unit_log_prob(
          actor,
          actor_params,
          expert_batch.obs,
          networks.to_unit_action(expert_batch.action, bounds),
        )
        log_pis = dict(expert_log_pi=expert_log_pi, policy_log_pi=log_pi[index])
      return disc.update(state, expert_batch, negatives, update_key, **log_pis)

    return jax.lax.scan(body, disc_state, jax.random.split(key, config.disc_updates))

  def learned_reward(disc_state, rollout: Rollout):
    rows = rollout.transitions
    if use_log_pi:  # AIRL: log D − log(1 − D) = f − log π
      return disc.logits(
        disc_state.params, rows.obs, rows.action, rows.next_obs, rollout.log_prob, rows.terminated
      )
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
    m2 = (
      policy.return_var * policy.return_count
      + batch_var * batch_count
      + delta**2 * policy.return_count * batch_count / count
    )
    policy = policy.replace(
      return_mean=mean, return_var=m2 / count, return_count=count, discounted_return=discounted
    )
    return policy, reward / jnp.sqrt(policy.return_var + 1e-8)

  def ppo_update(policy: PPOState, rollout: Rollout, advantages, targets, key):
    rows = rollout.transitions
    data = (
      flat(rows.obs),
      flat(networks.to_unit_action(rows.action, bounds)),
      flat(rollout.log_prob),
      flat(advantages),
      flat(targets),
    )

    def epoch(state, epoch_key):
      order = jax.random.permutation(epoch_key, t * n)
      batches = jax.tree.map(
        lambda x: jnp.reshape(x[order], (config.num_minibatches, minibatch) + x.shape[1:]), data
      )

      def minibatch_step(s, b):
        params, opt_state = s
        obs, unit_action, old_log_prob, advantage, target = b
        advantage = (advantage - jnp.mean(advantage)) / (jnp.std(advantage) + 1e-8)
        (_, aux), grads = jax.value_and_grad(ppo_loss, has_aux=True)(
          params,
          actor,
          value_net,
          obs,
          unit_action,
          old_log_prob,
          advantage,
          target,
          clip_eps=config.clip_eps,
          value_coeff=config.value_coeff,
          entropy_coeff=config.entropy_coeff,
        )
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), aux

      return jax.lax.scan(minibatch_step, state, batches)

    (params, opt_state), aux = jax.lax.scan(
      epoch,
      ((policy.actor_params, policy.value_params), policy.opt_state),
      jax.random.split(key, config.num_epochs),
    )
    policy = policy.replace(actor_params=params[0], value_params=params[1], opt_state=opt_state)
    return policy, jax.tree.map(jnp.mean, aux)

  def round_(carry: OnPolicyCarry, _):
    key, collect_key, disc_key, ppo_key = jax.random.split(carry.key, 4)
    carry, rollout, (ended_sum, ended_count) = collect(carry.replace(key=key), collect_key)
    agent_state, metrics = learn(carry.agent_state, rollout, disc_key, ppo_key)
    return carry.replace(agent_state=agent_state), (metrics, ended_sum, ended_count)

  def learn(state, rollout: Rollout, disc_key, ppo_key):
    """One round's learning from its rollout: the discriminator, then PPO on the learned reward."""
    disc_state, disc_metrics = discriminator_round(
      state.discriminator, state.policy.actor_params, rollout, disc_key
    )
    rows = rollout.transitions
    episode_end = (rows.terminated | rows.truncated).astype(jnp.float32)
    raw_reward = rows.reward if config.true_reward else learned_reward(disc_state, rollout)
    policy, reward = normalise(state.policy, raw_reward, episode_end)
    advantages, targets = gae(
      reward,
      rollout.value,
      rollout.next_value,
      rows.terminated.astype(jnp.float32),
      episode_end,
      config.discount,
      config.gae_lambda,
    )
    policy, ppo_metrics = ppo_update(policy, rollout, advantages, targets, ppo_key)
    metrics = imitation.prefixed(
      {**ppo_metrics, 'reward': jnp.mean(reward)}, jax.tree.map(jnp.mean, disc_metrics)
    )
    return imitation.IRLState(policy=policy, discriminator=disc_state), metrics

  def train_periods(
    carry: OnPolicyCarry,
    first_period,
    *,
    num_periods: int,
    rounds_per_period: int,
    state_constraint=None,
  ):
    """Evaluation periods of `rounds_per_period` rounds each; metrics have a leading axis of
    `num_periods`: `env_steps`, `eval_return`, `train_return` and the period means of the rest."""
    del state_constraint  # on-policy states are small; no model-axis split

    def period(c, index):
      c, (metrics, ended_sum, ended_count) = jax.lax.scan(round_, c, None, length=rounds_per_period)
      key, eval_key = jax.random.split(c.key)
      policy = c.agent_state.policy
      eval_return = jnp.mean(
        loops.evaluate(env, lambda obs, k: act(policy, obs, k, True), eval_key, eval_episodes)
      )
      total = jnp.sum(ended_count)
      out = {
        'env_steps': (index + 1) * rounds_per_period * config.steps_per_round,
        'eval_return': eval_return,
        'train_return': jnp.where(total > 0, jnp.sum(ended_sum) / jnp.maximum(total, 1), jnp.nan),
        **jax.tree.map(jnp.mean, metrics),
      }
      return c.replace(key=key), out

    return jax.lax.scan(period, carry, first_period + jnp.arange(num_periods))

  return OnPolicyRunner(
    config=config,
    discriminator=disc,
    actor=actor,
    init=init,
    train_periods=train_periods,
    act=act,
    init_agent=init_agent,
    sample=sample,
    preprocess=prep.obs,
    values=values,
    learn=learn,
  )


# ---------------------------------------------------------------------------------------------------
# Host environments (Gymnasium MuJoCo)


@flax.struct.dataclass
class HostCarry:
  """What a `train_host` run carries between periods (and checkpoints): the environments are not
  part of it, so a resumed run starts fresh episodes."""

  agent_state: Any
  key: jax.Array
  env_steps: jax.Array  # int32 scalar, environment steps so far


def abstract_host_carry(runner: OnPolicyRunner) -> HostCarry:
  """The shapes and dtypes of a `train_host` carry (a restore target for checkpoints)."""
  return jax.eval_shape(
    lambda k: HostCarry(runner.init_agent(k), k, jnp.zeros((), jnp.int32)), jax.random.key(0)
  )


def train_host(
  env,
  runner: OnPolicyRunner,
  key: jax.Array,
  *,
  num_env_steps: int,
  eval_every: int,
  eval_env=None,
  progress_fn: Callable[[int, dict], None] | None = None,
  checkpoint_fn: Callable[[int, HostCarry], None] | None = None,
  initial: HostCarry | None = None,
) -> HostCarry:
  """The rounds of `make_onpolicy` on a host-side vectorised `env` of `config.num_envs` environments
  (`envs.gym_adapter.GymEnv`, auto-resetting): each round steps them `num_steps` times on the host with
  the jitted policy, then learns from the batch in one jitted call (`runner.learn`, the JAX-native
  path's own round). Every `eval_every` steps (a multiple of a round's steps): the deterministic
  policy's return, one episode on each of `eval_env`'s environments (`eval_return`), then
  `progress_fn(env_steps, metrics)` and `checkpoint_fn(env_steps, carry)`, as `irl.loops.train_host`.
  `initial` resumes from such a carry with fresh episodes. The environments are seeded from `key`."""
  config = runner.config
  n, t = config.num_envs, config.num_steps
  if getattr(env, 'num_envs', None) != n:
    raise ValueError(
      f'env.num_envs ({getattr(env, "num_envs", None)}) must equal PPOConfig.num_envs ({n})'
    )
  if eval_every % config.steps_per_round or num_env_steps % eval_every:
    raise ValueError(
      f'eval_every ({eval_every}) must be a multiple of num_envs × num_steps '
      f'({config.steps_per_round}) and divide num_env_steps ({num_env_steps})'
    )

  def batch_values(policy, p_obs, next_obs):
    p_next = runner.preprocess(next_obs)
    return runner.values(policy, p_obs, p_next) + (p_next,)

  sample_fn = jax.jit(runner.sample)
  values_fn = jax.jit(batch_values)
  learn_fn = jax.jit(runner.learn)
  greedy_fn = jax.jit(lambda state, obs, k: runner.act(state.policy, obs, k, True))

  if initial is None:
    agent_state = jax.jit(runner.init_agent)(key)
    key = jax.random.split(key, 5)[4]
    start = 0
  else:
    agent_state, key, start = initial.agent_state, initial.key, int(initial.env_steps)
  obs = env.reset(seed=loops._seed(jax.random.fold_in(key, start)))
  episode_return = np.zeros(n, np.float64)
  for env_steps in range(start, num_env_steps, eval_every):
    period_metrics, ended = [], []
    for _ in range(eval_every // config.steps_per_round):
      key, collect_key, disc_key, ppo_key = jax.random.split(key, 4)
      steps = []
      for step_key in jax.random.split(collect_key, t):
        action, log_prob, p_obs = sample_fn(agent_state.policy, obs, jax.random.split(step_key)[0])
        out = env.step(np.asarray(action))
        steps.append(
          (
            p_obs,
            np.asarray(action),
            out.reward,
            out.next_obs,
            out.terminated,
            out.truncated,
            log_prob,
          )
        )
        episode_return += out.reward
        done = np.asarray(out.terminated) | np.asarray(out.truncated)
        ended.extend(episode_return[done].tolist())
        episode_return[done] = 0.0
        obs = out.obs
      p_obs, action, reward, next_obs, terminated, truncated, log_prob = (
        np.stack(x) for x in zip(*steps)
      )
      value, next_value, p_next = values_fn(agent_state.policy, p_obs, next_obs)
      rows = Transition(
        obs=jnp.asarray(p_obs),
        action=jnp.asarray(action, jnp.float32),
        reward=jnp.asarray(reward, jnp.float32),
        next_obs=p_next,
        terminated=jnp.asarray(terminated),
        truncated=jnp.asarray(truncated),
      )
      agent_state, metrics = learn_fn(
        agent_state, Rollout(rows, jnp.asarray(log_prob), value, next_value), disc_key, ppo_key
      )
      period_metrics.append(metrics)
    done_steps = env_steps + eval_every
    metrics = {k: float(np.mean([m[k] for m in period_metrics])) for k in period_metrics[0]}
    metrics['train_return'] = float(np.mean(ended)) if ended else float('nan')
    if eval_env is not None:
      key, eval_key = jax.random.split(key)
      metrics['eval_return'] = float(
        np.mean(loops.evaluate_host(eval_env, greedy_fn, agent_state, eval_key))
      )
    metrics['env_steps'] = done_steps
    if progress_fn is not None:
      progress_fn(done_steps, metrics)
    carry = HostCarry(agent_state, key, jnp.asarray(done_steps, jnp.int32))
    if checkpoint_fn is not None:
      checkpoint_fn(done_steps, carry)
  return HostCarry(agent_state, key, jnp.asarray(num_env_steps, jnp.int32))
