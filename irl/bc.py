r"""Behaviour cloning: supervised regression of the expert's actions on its states, as pure functions
over an explicit `BCState` (the baseline of the imitation papers OPIRL compares with; ValueDICE's
official code trains its BC baseline by MLE of the same tanh-Gaussian actor it uses for ValueDICE).

  bc = make_bc(spec, BCConfig())
  state = bc.init(key)
  state, metrics = bc.update(state, expert_batch, key)
  state, metrics = train_offline(bc, expert_buffer, key, num_steps)   # one jitted lax.scan
  action = bc.act(state, obs, key, deterministic=True)
  agent = as_agent(bc)                                                 # the irl.loops.Agent interface

Losses, on the unit box (−1, 1)^|A| (`irl.networks`; expert actions a are mapped there first):

  'mle'  −E_E[log π(a|s)] with π the tanh-Gaussian actor, log π(a|s) = log N(u; μ(s), σ(s)²) −
         Σ_i log(1 − tanh²(u_i)) at u = atanh(a) (`irl.networks.tanh_gaussian_log_prob`); a is first
         clipped into [−1 + ε, 1 − ε] (ε = `action_clip`) since atanh(±1) is infinite and experts
         often act on the bounds.
  'mse'  E_E[mean_i (tanh(μ_i(s)) − a_i)²], deterministic regression of the squashed mean (the
         log-std head is unused).

`act` returns tanh(μ(s)) when `deterministic`; otherwise a sample of π for 'mle' and still the mode
for 'mse', which models no spread.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from envs.core import EnvSpec
from irl import networks, replay
from irl.hparams import LOSSES, BCConfig  # noqa: F401 (re-exported)
from irl.loops import Agent
from irl.networks import ActionBounds, ActorNetwork
from irl.replay import Transition


@flax.struct.dataclass
class BCState:
  """The actor's params, its Adam state and the number of updates so far (int32 scalar)."""

  params: Any
  opt_state: Any
  step: jax.Array


class BC(NamedTuple):
  """The BC functions for one environment spec and config (`make_bc`)."""

  config: BCConfig
  actor: ActorNetwork
  bounds: ActionBounds
  init: Callable[[jax.Array], BCState]
  update: Callable[..., tuple[BCState, dict]]
  act: Callable[..., jax.Array]


def bc_loss(
  params: Any,
  obs: jax.Array,
  unit_action: jax.Array,
  *,
  actor: ActorNetwork,
  loss: str,
  action_clip: float,
) -> tuple[jax.Array, dict]:
  """The BC loss of `loss` ('mle' or 'mse', module docstring) for expert actions in the unit box.

  Returns (loss, aux) with aux['mse'], the mean squared error of the mode tanh(μ(s)) against the
  (unclipped) expert actions, for either loss.
  """
  mean, log_std = actor.apply(params, obs)
  mode_mse = jnp.mean((jnp.tanh(mean) - unit_action) ** 2)
  if loss == 'mle':
    clipped = jnp.clip(unit_action, -1.0 + action_clip, 1.0 - action_clip)
    log_prob = networks.tanh_gaussian_log_prob(jnp.arctanh(clipped), mean, log_std)
    return -jnp.mean(log_prob), {'mse': mode_mse}
  if loss == 'mse':
    return mode_mse, {'mse': mode_mse}
  raise ValueError(f'loss must be one of {list(LOSSES)}, got {loss!r}')


def make_bc(spec: EnvSpec, config: BCConfig = BCConfig()) -> BC:
  """Behaviour cloning for flat observations [d] and actions in the finite box of `spec`.

  Raises ValueError for a bad config field or observation shape, EnvError for an unbounded action
  space.
  """
  bounds, obs_dim, action_dim = networks.checked_learner_inputs('BC', spec, config, BCConfig)
  actor = networks.make_actor(
    obs_dim,
    action_dim,
    config.hidden_sizes,
    config.log_std_min,
    config.log_std_max,
    log_std_squash='tanh',
  )
  tx = optax.adam(config.lr)

  def init(key: jax.Array) -> BCState:
    params = actor.init(key)
    return BCState(params=params, opt_state=tx.init(params), step=jnp.zeros((), jnp.int32))

  def update(state: BCState, expert_batch: Transition, key: jax.Array) -> tuple[BCState, dict]:
    """One Adam step on the BC loss of `expert_batch` (environment-box actions). `key` is unused
    (both losses are deterministic) and kept for a uniform signature."""
    del key
    unit_action = networks.to_unit_action(expert_batch.action, bounds)
    (loss, aux), grads = jax.value_and_grad(bc_loss, has_aux=True)(
      state.params,
      expert_batch.obs,
      unit_action,
      actor=actor,
      loss=config.loss,
      action_clip=config.action_clip,
    )
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    new_state = BCState(
      params=optax.apply_updates(state.params, updates), opt_state=opt_state, step=state.step + 1
    )
    return new_state, {'bc_loss': loss, 'action_mse': aux['mse']}

  def act(
    state_or_params: BCState | Any, obs: jax.Array, key: jax.Array, deterministic: bool = False
  ) -> jax.Array:
    """Actions in the environment's box for `obs` [..., d] (module docstring)."""
    params = state_or_params.params if isinstance(state_or_params, BCState) else state_or_params
    mean, log_std = actor.apply(params, obs)
    if deterministic or config.loss == 'mse':
      unit_action = jnp.tanh(mean)
    else:
      unit_action, _ = networks.sample_tanh_gaussian(key, mean, log_std)
    return networks.to_env_action(unit_action, bounds)

  return BC(config=config, actor=actor, bounds=bounds, init=init, update=update, act=act)


@functools.partial(jax.jit, static_argnames=('init', 'update', 'batch_size', 'num_steps'))
def _train_offline(
  state: BCState | None,
  expert_buffer: replay.ExpertBuffer,
  key: jax.Array,
  *,
  init,
  update,
  batch_size: int,
  num_steps: int,
) -> tuple[BCState, dict]:
  init_key, key = jax.random.split(key)
  if state is None:
    state = init(init_key)

  def step(state, step_key):
    sample_key, update_key = jax.random.split(step_key)
    return update(state, replay.sample(expert_buffer, sample_key, batch_size), update_key)

  return jax.lax.scan(step, state, jax.random.split(key, num_steps))


def train_offline(
  bc: BC,
  expert_buffer: replay.ExpertBuffer,
  key: jax.Array,
  num_steps: int,
  state: BCState | None = None,
) -> tuple[BCState, dict]:
  """`num_steps` BC updates on batches drawn uniformly (with replacement) from `expert_buffer`, as
  one jitted `lax.scan`; a function of `key` (and of `state`, default `bc.init` from `key`).

  Returns (final state, metrics with a leading axis of num_steps). Compiles once per `bc` and
  `num_steps`; vmappable over keys.
  """
  if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)) or num_steps < 1:
    raise ValueError(f'num_steps must be a positive int, got {num_steps!r}')
  if not isinstance(expert_buffer, replay.ExpertBuffer):
    raise TypeError(
      f'expert_buffer must be an irl.replay.ExpertBuffer, got {type(expert_buffer).__name__}'
    )
  return _train_offline(
    state,
    expert_buffer,
    key,
    init=bc.init,
    update=bc.update,
    batch_size=bc.config.batch_size,
    num_steps=int(num_steps),
  )


def as_agent(bc: BC) -> Agent:
  """BC behind the `irl.loops.Agent` interface: each agent update draws `batch_size` expert
  transitions from the expert buffer and makes one `bc.update`; the replay buffer is ignored (so the
  loop only evaluates and collects data nobody learns from)."""

  def update(
    state: BCState,
    replay_buffer: replay.ReplayBuffer,
    key: jax.Array,
    expert_buffer: replay.ExpertBuffer | None = None,
  ) -> tuple[BCState, dict]:
    del replay_buffer
    if expert_buffer is None:
      raise ValueError('BC needs demonstrations: pass expert_buffer to the training loop')
    sample_key, update_key = jax.random.split(key)
    return bc.update(
      state, replay.sample(expert_buffer, sample_key, bc.config.batch_size), update_key
    )

  return Agent(init=bc.init, act=bc.act, update=update)
