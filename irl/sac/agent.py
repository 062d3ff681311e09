r"""Soft Actor-Critic with a learned temperature (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms
and Applications", arXiv 1812.05905, Algorithm 1), as pure functions over an explicit `SACState`.

  sac = make_sac(env.spec, SACConfig())
  state = sac.init(key)
  state, metrics = sac.update(state, batch, key)                   # batch: irl.replay.Transition
  state, metrics = sac.update(state, batch, key, reward_fn=r)      # train on r(s, a, s') instead
  action = sac.act(state, obs, key, deterministic=False)           # or sac.act(state.actor_params, ...)
  agent = as_agent(sac)                                            # the irl.loops.Agent interface

One `update` is one gradient step on the critics (eqs. 5-6), then, every `actor_update_period`-th
update, one on the actor (eqs. 7-9) and one on the temperature (eq. 18), then a Polyak step of the
target critics θ̄ ← τθ + (1 − τ)θ̄ every `target_update_period`-th update. `update` is pure and
jittable: with the same shapes it traces once, and it runs inside `lax.scan`/`vmap` (under `vmap` over
seeds the period conditions become selects, so the actor step is computed every update and kept only
on its period; results are the same).

Actions: the buffer, `act` and `reward_fn` use the environment's action box [low, high]; the networks
see the unit box (−1, 1)^|A| (`irl.networks`). `reward_fn(obs, action, next_obs) -> reward [B]`
replaces `batch.reward` in the critic target with its gradient stopped, so an IRL method can train
SAC on a learned reward (a closure over the reward's current params, traced inside the IRL update).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import optax

from envs.core import EnvSpec
from irl import networks, replay
from irl.hparams import SACConfig  # noqa: F401 (re-exported)
from irl.loops import Agent
from irl.networks import ActionBounds, ActorNetwork, CriticNetwork
from irl.replay import Transition
from irl.sac import losses

RewardFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


@flax.struct.dataclass
class SACState:
  """Everything SAC learns, as arrays: params, the temperature, optimizer states and a step count.

  `log_alpha` is log α (float32 scalar); `step` (int32 scalar) counts `update` calls so far, which
  decides the actor and target periods.
  """

  actor_params: Any
  critic_params: Any
  target_critic_params: Any
  log_alpha: jax.Array
  actor_opt_state: Any
  critic_opt_state: Any
  temperature_opt_state: Any
  step: jax.Array


class SAC(NamedTuple):
  """The SAC functions for one environment spec and config (`make_sac`)."""

  config: SACConfig
  actor: ActorNetwork
  critic: CriticNetwork
  bounds: ActionBounds
  target_entropy: float
  init: Callable[[jax.Array], SACState]
  update: Callable[..., tuple[SACState, dict]]
  act: Callable[..., jax.Array]


def batch_reward(batch: Transition, reward_fn: RewardFn | None = None) -> jax.Array:
  """The rewards [B] a learner trains on: `batch.reward`, or `reward_fn(obs, action, next_obs)` (a
  learned or transferred reward, checked to be [B]); no gradient flows into it. Shared by SAC and
  AlgaeDICE."""
  size = jnp.shape(batch.obs)[0]
  if reward_fn is None:
    reward = batch.reward
  else:
    reward = reward_fn(batch.obs, batch.action, batch.next_obs)
    if jnp.shape(reward) != (size,):
      raise ValueError(
        f'reward_fn must return rewards of shape ({size},) for a batch of {size}, '
        f'got {jnp.shape(reward)}'
      )
  return jax.lax.stop_gradient(jnp.asarray(reward, jnp.float32))


def init_state(
  key: jax.Array, actor, critic, actor_tx, critic_tx, temperature_tx, init_temperature: float
) -> SACState:
  """A fresh actor-critic state: new actor and critic params, targets equal to the critics,
  log α = log(init_temperature), fresh optimizer states, step 0. Shared by SAC and AlgaeDICE."""
  actor_key, critic_key = jax.random.split(key)
  actor_params = actor.init(actor_key)
  critic_params = critic.init(critic_key)
  log_alpha = jnp.log(jnp.asarray(init_temperature, jnp.float32))
  return SACState(
    actor_params=actor_params,
    critic_params=critic_params,
    target_critic_params=jax.tree.map(jnp.copy, critic_params),
    log_alpha=log_alpha,
    actor_opt_state=actor_tx.init(actor_params),
    critic_opt_state=critic_tx.init(critic_params),
    temperature_opt_state=temperature_tx.init(log_alpha),
    step=jnp.zeros((), jnp.int32),
  )


def actor_critic_update(
  state: SACState,
  critic_objective: Callable[[Any], tuple[jax.Array, dict]],
  actor_objective: Callable[[Any, Any], tuple[jax.Array, dict]],
  *,
  txs: tuple[optax.GradientTransformation, ...],
  target_entropy: float,
  learn_temperature: bool,
  actor_due: bool | jax.Array,
  target_due: bool | jax.Array,
  tau: float,
) -> tuple[SACState, jax.Array, dict, dict]:
  """The update skeleton of an entropy-regularised actor-critic (SAC and AlgaeDICE differ only in
  their objectives and periods):

  1. one gradient step of the critics on `critic_objective(critic_params) -> (loss, aux)`;
  2. if `actor_due` (a Python True, or a traced bool: then a `lax.cond`), one step of the actor on
     `actor_objective(actor_params, new_critic_params) -> (loss, aux)`, with aux['log_prob'] [B] the
     log π of the actions it sampled and optional aux['metrics'] (a dict of scalars), then one step
     of log α on the temperature loss of SAC's eq. 18 with that log π (unless not
     `learn_temperature`);
  3. a Polyak step θ̄ ← τθ + (1 − τ)θ̄ of the target critics towards the new critics when
     `target_due` (τ_k = τ then and 0 otherwise: (1 − 0)·θ̄ + 0·θ is θ̄ exactly).

  `txs` = (actor, critic, temperature) optimizers. Returns (new state with step + 1, critic loss,
  critic aux, actor metrics: actor_loss, temperature_loss, entropy and aux['metrics'], all NaN on
  updates that skip the actor).
  """
  actor_tx, critic_tx, temperature_tx = txs
  (critic_loss, critic_aux), critic_grads = jax.value_and_grad(critic_objective, has_aux=True)(
    state.critic_params
  )
  critic_updates, critic_opt_state = critic_tx.update(
    critic_grads, state.critic_opt_state, state.critic_params
  )
  critic_params = optax.apply_updates(state.critic_params, critic_updates)

  def actor_step(_):
    (actor_loss, aux), actor_grads = jax.value_and_grad(actor_objective, has_aux=True)(
      state.actor_params, critic_params
    )
    actor_updates, actor_opt_state = actor_tx.update(
      actor_grads, state.actor_opt_state, state.actor_params
    )
    actor_params = optax.apply_updates(state.actor_params, actor_updates)
    log_prob = aux['log_prob']
    temperature_loss, temperature_grad = jax.value_and_grad(losses.temperature_loss)(
      state.log_alpha, log_prob, target_entropy
    )
    if learn_temperature:
      temperature_updates, temperature_opt_state = temperature_tx.update(
        temperature_grad, state.temperature_opt_state, state.log_alpha
      )
      log_alpha = optax.apply_updates(state.log_alpha, temperature_updates)
    else:
      log_alpha, temperature_opt_state = state.log_alpha, state.temperature_opt_state
    metrics = {
      'actor_loss': actor_loss,
      'temperature_loss': temperature_loss,
      'entropy': -jnp.mean(log_prob),
      **aux.get('metrics', {}),
    }
    return actor_params, actor_opt_state, log_alpha, temperature_opt_state, metrics

  def skip_actor(_):
    metric_shapes = jax.eval_shape(actor_step, None)[-1]
    metrics = jax.tree.map(lambda m: jnp.full(m.shape, jnp.nan, m.dtype), metric_shapes)
    kept = (state.actor_params, state.actor_opt_state, state.log_alpha, state.temperature_opt_state)
    return (*kept, metrics)

  if actor_due is True:
    actor_out = actor_step(None)
  else:
    actor_out = jax.lax.cond(actor_due, actor_step, skip_actor, None)
  actor_params, actor_opt_state, log_alpha, temperature_opt_state, actor_metrics = actor_out

  target_tau = tau if target_due is True else jnp.where(target_due, tau, 0.0)
  target_critic_params = optax.incremental_update(
    critic_params, state.target_critic_params, target_tau
  )
  new_state = SACState(
    actor_params=actor_params,
    critic_params=critic_params,
    target_critic_params=target_critic_params,
    log_alpha=log_alpha,
    actor_opt_state=actor_opt_state,
    critic_opt_state=critic_opt_state,
    temperature_opt_state=temperature_opt_state,
    step=state.step + 1,
  )
  return new_state, critic_loss, critic_aux, actor_metrics


def make_sac(spec: EnvSpec, config: SACConfig = SACConfig()) -> SAC:
  """SAC for observations [d] and actions in the finite box of `spec` (module docstring).

  Raises ValueError for a bad config field and EnvError for an unbounded or non-flat action space.
  """
  bounds, obs_dim, action_dim = networks.checked_learner_inputs('SAC', spec, config, SACConfig)
  target_entropy = float(-action_dim if config.target_entropy is None else config.target_entropy)
  actor = networks.make_actor(
    obs_dim, action_dim, config.hidden_sizes, config.log_std_min, config.log_std_max
  )
  critic = networks.make_critic(obs_dim, action_dim, config.hidden_sizes, config.num_critics)
  actor_tx = optax.adam(config.actor_lr)
  critic_tx = optax.adam(config.critic_lr)
  temperature_tx = optax.adam(config.temperature_lr)

  def init(key: jax.Array) -> SACState:
    return init_state(
      key, actor, critic, actor_tx, critic_tx, temperature_tx, config.init_temperature
    )

  def update(
    state: SACState, batch: Transition, key: jax.Array, reward_fn: RewardFn | None = None
  ) -> tuple[SACState, dict]:
    """One SAC update on `batch` (leading axis B); metrics are scalars (NaN for the actor and
    temperature entries on updates that skip the actor)."""
    critic_key, actor_key = jax.random.split(key)
    reward = batch_reward(batch, reward_fn)
    unit_action = networks.to_unit_action(batch.action, bounds)
    alpha = jnp.exp(state.log_alpha)

    def critic_objective(critic_params):  # eqs. 5-6
      return losses.critic_loss(
        critic_params,
        state.target_critic_params,
        state.actor_params,
        alpha,
        batch.obs,
        unit_action,
        reward,
        batch.next_obs,
        batch.terminated,
        critic_key,
        actor=actor,
        critic=critic,
        discount=config.discount,
      )

    def actor_objective(actor_params, critic_params):  # eqs. 7-9, against the critics just updated
      return losses.actor_loss(
        actor_params, critic_params, alpha, batch.obs, actor_key, actor=actor, critic=critic
      )

    new_state, critic_loss, critic_aux, actor_metrics = actor_critic_update(
      state,
      critic_objective,
      actor_objective,
      txs=(actor_tx, critic_tx, temperature_tx),
      target_entropy=target_entropy,
      learn_temperature=config.learn_temperature,
      actor_due=True
      if config.actor_update_period == 1
      else state.step % config.actor_update_period == 0,
      target_due=state.step % config.target_update_period == 0,
      tau=config.tau,
    )
    metrics = {
      'critic_loss': critic_loss,
      'q': jnp.mean(critic_aux['q']),
      'target': jnp.mean(critic_aux['target']),
      'reward': jnp.mean(reward),
      'alpha': alpha,
      **actor_metrics,
    }
    return new_state, metrics

  def act(
    state_or_actor_params: SACState | Any,
    obs: jax.Array,
    key: jax.Array,
    deterministic: bool = False,
  ) -> jax.Array:
    """Actions in the environment's box for `obs` [..., d]: sampled from π(·|s), or tanh(mean)
    when `deterministic` (a Python bool; `key` is then unused)."""
    mean, log_std = actor.apply(networks.actor_params_of(state_or_actor_params, SACState), obs)
    if deterministic:
      unit_action = jnp.tanh(mean)
    else:
      unit_action, _ = networks.sample_tanh_gaussian(key, mean, log_std)
    return networks.to_env_action(unit_action, bounds)

  return SAC(
    config=config,
    actor=actor,
    critic=critic,
    bounds=bounds,
    target_entropy=target_entropy,
    init=init,
    update=update,
    act=act,
  )


def init(key: jax.Array, spec: EnvSpec, config: SACConfig = SACConfig()) -> SACState:
  """`make_sac(spec, config).init(key)`."""
  return make_sac(spec, config).init(key)


def as_agent(sac, reward_fn: RewardFn | None = None) -> Agent:
  """SAC (or any learner with `config.batch_size`, `init`, `act` and `update(state, batch, key,
  reward_fn)`, e.g. AlgaeDICE) behind the `irl.loops.Agent` interface: each agent update draws
  `config.batch_size` transitions uniformly from the replay buffer and makes one `update` with
  `reward_fn` (e.g. a frozen learned reward for reward transfer). The expert buffer is ignored."""

  def update(
    state: SACState,
    replay_buffer: replay.ReplayBuffer,
    key: jax.Array,
    expert_buffer: replay.ExpertBuffer | None = None,
  ) -> tuple[SACState, dict]:
    del expert_buffer
    sample_key, update_key = jax.random.split(key)
    batch = replay.sample(replay_buffer, sample_key, sac.config.batch_size)
    return sac.update(state, batch, update_key, reward_fn)

  return Agent(init=sac.init, act=sac.act, update=update)
