r"""ValueDICE (Kostrikov, Nachum & Tompson, "Imitation Learning via Off-Policy Distribution Matching",
ICLR 2020, arXiv 1912.05032) as pure functions over an explicit `ValueDICEState`.

  vd = make_valuedice(spec, ValueDICEConfig())
  state = vd.init(key)
  state, metrics = vd.update(state, expert_batch, replay_batch, expert_initial_obs, key)
  action = vd.act(state, obs, key, deterministic=False)     # mode + N(0, σ²) noise, clipped
  agent = as_agent(vd)                                      # the irl.loops.Agent interface

The objective. The Donsker–Varadhan representation of the KL divergence,

  −KL(d^π ‖ d^E) = min_x  log E_{(s,a)~d^E}[e^{x(s,a)}] − E_{(s,a)~d^π}[x(s,a)],               (DV)

with the change of variables x = ν − B^π ν, B^π ν(s, a) = γ E_{s'~T(s,a), a'~π(s')}[ν(s', a')],
telescopes the on-policy expectation into one over initial states, E_{d^π}[ν − B^π ν] =
(1 − γ) E_{s0~p0, a0~π(s0)}[ν(s0, a0)], so that

  J_DICE(π, ν) = log E_{d^E}[e^{ν(s,a) − B^π ν(s,a)}] − (1 − γ) E_{s0~p0, a0~π(s0)}[ν(s0, a0)],

and −KL(d^π ‖ d^E) = min_ν J_DICE(π, ν). With replay regularisation (the paper's mixture
d^mix = (1 − α) d^E + α d^RB against (1 − α) d^π + α d^RB), the objective trained here is

  J^mix(π, ν) = log E_{(s,a,s')~d^mix}[e^{ν(s,a) − γ ν(s', π(s'))}]
                − (1 − α)(1 − γ) E_{s0~p0}[ν(s0, π(s0))]
                − α E_{(s,a,s')~d^RB}[ν(s,a) − γ ν(s', π(s'))],

solved as max_π min_ν J^mix (the paper's ValueDICE objective and its replay-regularised form; the
equation numbers of the PDF could not be checked here, so they are named rather than numbered).
α = 0 is plain J_DICE; α = 1 leaves log E_RB[e^{ν − Bν}] − E_RB[ν − Bν], which involves no expert
data. On a minibatch the mixture expectation is the weighted mean with weights (1 − α)/B_E on expert
rows and α/B_R on replay rows, and the log-mean-exp is a weighted `logsumexp`, exact and finite for
any magnitude of ν. (The official code differentiates a stop-gradient softmax surrogate with the
same gradient; its weights normalise over the concatenated batch, equal to these when B_E = B_R.)

One `update` is one simultaneous step on both players from one forward pass, as the official code
does: ν descends J^mix + λ·GP(ν), the actor descends −J^mix + orthogonal regularisation, both
gradients taken at the current parameters. Policy actions a0, a' ~ π are reparameterised
tanh-Gaussian samples, so J^mix is differentiable in the actor. GP(ν) = E[(‖∇_x ν(x)‖ − 1)²] at
x = u·(s_E, a_E) + (1 − u)·(s_R, a_R) and at x' = u·(s'_E, π(s'_E)) + (1 − u)·(s'_R, π(s'_R)), one
u ~ U(0, 1) per row shared by the pair (so the two batches must have equal size); the norm is
√(‖g‖² + 1e-12) (the official code adds float32 eps to g instead; both only keep the gradient of
the norm finite at g = 0).

Initial states. ValueDICE's (1 − γ) E_{s0}[ν(s0, π(s0))] term needs start states. The official code
uses the expert batch's states as the initial states (value_dice.py sets the initial states to the
sampled expert states), in effect treating every expert state as the start of a trajectory;
`as_agent` does the same by default. `as_agent(..., initial_obs=X)` instead draws them from a fixed
array X, e.g. the true episode starts `initial_observations(demos['obs'], demos['episode'])`
(normalised and indicator-extended like the expert buffer). `ExpertBuffer` itself records no episode
boundaries (absorbing-state rows clear `terminated`), which is why the choice is the caller's.

Absorbing states (DAC): the indicator is part of the observation and the caller appends it
(`irl.absorbing`); ValueDICE then bootstraps through every transition. Rows with `terminated` set
do not bootstrap (ν(s, a) − γ·0): with absorbing-state data `terminated` is always False and this is
the paper's objective exactly; without it, it is the usual no-bootstrap-past-termination convention.

Actions: buffers and `act` use the environment's box [low, high]; ν and the actor see the unit box
(−1, 1)^|A| (`irl.networks`). Exploration is OPIRL's and ValueDICE's train_eval: the mode tanh(μ(s))
plus N(0, σ²) noise, clipped to the box (`reference/irl.md` Sec. 1.2c).

Networks (official code): ν and the actor are MLPs of two hidden layers of 256 with ReLU and
orthogonal kernels; the actor is tanh-Gaussian with log σ tanh-squashed into [−5, 2]; there is no
entropy term. ν's output bias is kept (the official ν has none): J^mix and the penalty are invariant
to ν + c when nothing terminates, so the bias is inert (zero gradient up to rounding, which Adam
may still turn into small moves that change nothing). The actor's orthogonal regularisation
(Brock et al. 2019, arXiv 1809.11096, eq. 3; coefficient 1e-4 in the official code) is
`actor_orthogonal_reg`·Σ_W ‖WᵀW ⊙ (1 − I)‖²_F over every kernel of the actor; 0 turns it off.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from envs.core import EnvSpec
from irl import networks, replay
from irl.hparams import ValueDICEConfig  # noqa: F401 (re-exported)
from irl.loops import Agent
from irl.networks import ActionBounds, ActorNetwork, Network
from irl.replay import Transition

GRAD_NORM_EPS = 1e-12  # inside the square root of ‖∇ν‖, so its gradient is finite at ∇ν = 0


@flax.struct.dataclass
class ValueDICEState:
  """Everything ValueDICE learns: the actor's and ν's params, their Adam states and a step count
  (int32 scalar, `update` calls so far)."""

  actor_params: Any
  nu_params: Any
  actor_opt_state: Any
  nu_opt_state: Any
  step: jax.Array


class ValueDICE(NamedTuple):
  """The ValueDICE functions for one environment spec and config (`make_valuedice`)."""

  config: ValueDICEConfig
  actor: ActorNetwork
  nu: Network
  bounds: ActionBounds
  init: Callable[[jax.Array], ValueDICEState]
  update: Callable[..., tuple[ValueDICEState, dict]]
  act: Callable[..., jax.Array]


# ---------------------------------------------------------------------------------------------------
# The objective as pure functions


def mixture_objective(
  nu_expert: jax.Array,
  nu_expert_next: jax.Array,
  nu_replay: jax.Array,
  nu_replay_next: jax.Array,
  nu_initial: jax.Array,
  *,
  discount: float,
  replay_regularization: float,
  expert_terminated: jax.Array | None = None,
  replay_terminated: jax.Array | None = None,
) -> tuple[jax.Array, dict]:
  """J^mix (module docstring) from ν evaluated on a minibatch.

  Args:
    nu_expert, nu_expert_next: [B_E], ν(s, a) on expert transitions and ν(s', a'), a' ~ π(s').
    nu_replay, nu_replay_next: [B_R], the same on replay transitions.
    nu_initial: [B_0], ν(s0, a0), a0 ~ π(s0).
    discount: γ. replay_regularization: α in [0, 1].
    expert_terminated, replay_terminated: optional bool [B_E] / [B_R]; terminated rows drop the
      γ ν(s', a') term.
  Returns:
    (J^mix, aux) with aux['expert_diff'] [B_E] and aux['replay_diff'] [B_R], ν − γ ν', and
    aux['log_term'], aux['linear_term'], J^mix = log_term − linear_term.
  """
  alpha = replay_regularization

  def diff(nu, nu_next, terminated):
    if terminated is None:
      return nu - discount * nu_next
    return nu - discount * jnp.where(jnp.asarray(terminated, jnp.bool_), 0.0, nu_next)

  expert_diff = diff(nu_expert, nu_expert_next, expert_terminated)
  replay_diff = diff(nu_replay, nu_replay_next, replay_terminated)
  size_e, size_r = expert_diff.shape[0], replay_diff.shape[0]
  # log((1 − α) mean_E e^x + α mean_R e^x) as one weighted logsumexp, stable for large |ν|; a zero
  # weight (α = 0 or 1) removes its rows exactly.
  weights = jnp.concatenate(
    [
      jnp.full((size_e,), (1.0 - alpha) / size_e, expert_diff.dtype),
      jnp.full((size_r,), alpha / size_r, replay_diff.dtype),
    ]
  )
  log_term = jax.nn.logsumexp(jnp.concatenate([expert_diff, replay_diff]), b=weights)
  linear_term = (1.0 - alpha) * (1.0 - discount) * jnp.mean(nu_initial) + alpha * jnp.mean(
    replay_diff
  )
  aux = {
    'expert_diff': expert_diff,
    'replay_diff': replay_diff,
    'log_term': log_term,
    'linear_term': linear_term,
  }
  return log_term - linear_term, aux


def gradient_penalty(
  nu_apply: Callable[[Any, jax.Array], jax.Array], nu_params: Any, inputs: jax.Array
) -> jax.Array:
  """E_x[(‖∇_x ν(x)‖ − 1)²] over the rows of `inputs` [N, D], for `nu_apply(params, x [N, D]) -> [N]`
  applied row by row (WGAN-GP; Gulrajani et al. 2017), with ‖g‖ = √(‖g‖² + GRAD_NORM_EPS)."""
  # ν acts on each row separately, so the gradient of the sum holds every row's own gradient.
  grads = jax.grad(lambda x: jnp.sum(nu_apply(nu_params, x)))(inputs)
  norms = jnp.sqrt(jnp.sum(grads**2, axis=-1) + GRAD_NORM_EPS)
  return jnp.mean((norms - 1.0) ** 2)


def orthogonal_regularization(params: Any) -> jax.Array:
  """Σ over every 2-D 'kernel' leaf W of ‖WᵀW ⊙ (1 − I)‖²_F (Brock et al. 2019, eq. 3), unscaled."""
  total = jnp.zeros((), jnp.float32)
  for path, leaf in jax.tree_util.tree_leaves_with_path(params):
    last = path[-1]
    if getattr(last, 'key', None) == 'kernel' and jnp.ndim(leaf) == 2:
      gram = leaf.T @ leaf
      total = total + jnp.sum((gram * (1.0 - jnp.eye(gram.shape[0], dtype=gram.dtype))) ** 2)
  return total


def _nu_value(nu: Network, params: Any, obs: jax.Array, unit_action: jax.Array) -> jax.Array:
  return nu.apply(params, jnp.concatenate([obs, unit_action.astype(obs.dtype)], axis=-1))[..., 0]


def objective(
  nu_params: Any,
  actor_params: Any,
  expert: Transition,
  replay_batch: Transition,
  initial_obs: jax.Array,
  key: jax.Array,
  *,
  nu: Network,
  actor: ActorNetwork,
  bounds: ActionBounds,
  discount: float,
  replay_regularization: float,
) -> tuple[jax.Array, dict]:
  """J^mix for networks `nu` and `actor` on one minibatch, differentiable in both param sets.

  `expert` and `replay_batch` hold environment-box actions; a0 ~ π(initial_obs), a'_E ~ π(s'_E) and
  a'_R ~ π(s'_R) are reparameterised samples from `split(key, 3)`, in that order. Returns (J^mix,
  aux) with `mixture_objective`'s aux plus the ν means and the (stop-gradient) inputs of the
  gradient penalty: aux['expert_inputs'], aux['replay_inputs'] ([B, d + |A|], data actions) and
  aux['expert_next_inputs'], aux['replay_next_inputs'] (policy actions).
  """
  initial_key, expert_key, replay_key = jax.random.split(key, 3)

  def policy_action(obs, sample_key):
    mean, log_std = actor.apply(actor_params, obs)
    return networks.sample_tanh_gaussian(sample_key, mean, log_std)[0]

  initial_action = policy_action(initial_obs, initial_key)
  expert_next_action = policy_action(expert.next_obs, expert_key)
  replay_next_action = policy_action(replay_batch.next_obs, replay_key)
  expert_action = networks.to_unit_action(expert.action, bounds)
  replay_action = networks.to_unit_action(replay_batch.action, bounds)

  nu_expert = _nu_value(nu, nu_params, expert.obs, expert_action)
  nu_expert_next = _nu_value(nu, nu_params, expert.next_obs, expert_next_action)
  nu_replay = _nu_value(nu, nu_params, replay_batch.obs, replay_action)
  nu_replay_next = _nu_value(nu, nu_params, replay_batch.next_obs, replay_next_action)
  nu_initial = _nu_value(nu, nu_params, initial_obs, initial_action)
  value, aux = mixture_objective(
    nu_expert,
    nu_expert_next,
    nu_replay,
    nu_replay_next,
    nu_initial,
    discount=discount,
    replay_regularization=replay_regularization,
    expert_terminated=expert.terminated,
    replay_terminated=replay_batch.terminated,
  )

  inputs = lambda obs, action: jax.lax.stop_gradient(
    jnp.concatenate([obs, action.astype(obs.dtype)], axis=-1)
  )
  aux.update(
    nu_expert=jnp.mean(nu_expert),
    nu_replay=jnp.mean(nu_replay),
    nu_initial=jnp.mean(nu_initial),
    expert_inputs=inputs(expert.obs, expert_action),
    replay_inputs=inputs(replay_batch.obs, replay_action),
    expert_next_inputs=inputs(expert.next_obs, expert_next_action),
    replay_next_inputs=inputs(replay_batch.next_obs, replay_next_action),
  )
  return value, aux


def interpolate(
  expert_inputs: jax.Array,
  replay_inputs: jax.Array,
  expert_next_inputs: jax.Array,
  replay_next_inputs: jax.Array,
  key: jax.Array,
) -> jax.Array:
  """The gradient-penalty points [2B, D]: u·x_E + (1 − u)·x_R for the current pairs, then the same
  for the next pairs, with one u ~ U(0, 1) per row shared by both (official code)."""
  if expert_inputs.shape != replay_inputs.shape:
    raise ValueError(
      f'the gradient penalty interpolates expert and replay rows pairwise, so the '
      f'expert and replay batches must have the same shape, got '
      f'{expert_inputs.shape} and {replay_inputs.shape}'
    )
  u = jax.random.uniform(key, (expert_inputs.shape[0], 1), expert_inputs.dtype)
  mix = lambda e, r: u * e + (1.0 - u) * r
  return jnp.concatenate(
    [mix(expert_inputs, replay_inputs), mix(expert_next_inputs, replay_next_inputs)], axis=0
  )


# ---------------------------------------------------------------------------------------------------
# The learner


def make_valuedice(spec: EnvSpec, config: ValueDICEConfig = ValueDICEConfig()) -> ValueDICE:
  """ValueDICE for flat observations [d] (absorbing indicator included when used) and actions in
  the finite box of `spec` (module docstring).

  Raises ValueError for a bad config field or observation shape, EnvError for an unbounded or
  non-flat action space.
  """
  bounds, obs_dim, action_dim = networks.checked_learner_inputs(
    'ValueDICE', spec, config, ValueDICEConfig
  )
  kernel_init = 'orthogonal' if config.orthogonal_init else 'lecun_normal'
  actor = networks.make_actor(
    obs_dim,
    action_dim,
    config.hidden_sizes,
    config.log_std_min,
    config.log_std_max,
    kernel_init=kernel_init,
    log_std_squash='tanh',
  )
  nu = networks.make_mlp(obs_dim + action_dim, config.hidden_sizes, 1, kernel_init)
  actor_tx = optax.adam(config.actor_lr)
  nu_tx = optax.adam(config.nu_lr)

  def init(key: jax.Array) -> ValueDICEState:
    actor_key, nu_key = jax.random.split(key)
    actor_params = actor.init(actor_key)
    nu_params = nu.init(nu_key)
    return ValueDICEState(
      actor_params=actor_params,
      nu_params=nu_params,
      actor_opt_state=actor_tx.init(actor_params),
      nu_opt_state=nu_tx.init(nu_params),
      step=jnp.zeros((), jnp.int32),
    )

  def update(
    state: ValueDICEState,
    expert_batch: Transition,
    replay_batch: Transition,
    expert_initial_obs: jax.Array,
    key: jax.Array,
  ) -> tuple[ValueDICEState, dict]:
    """One simultaneous step of ν (descending J^mix + λ GP) and the actor (ascending J^mix, minus
    its orthogonal regulariser). `expert_batch` and `replay_batch` must have the same size (the
    gradient penalty pairs their rows); `expert_initial_obs` [B_0, d] are the s0 of the (1 − γ)
    term. Metrics are float scalars."""
    objective_key, penalty_key = jax.random.split(key)
    (value, aux), (nu_grads, actor_grads) = jax.value_and_grad(
      objective, argnums=(0, 1), has_aux=True
    )(
      state.nu_params,
      state.actor_params,
      expert_batch,
      replay_batch,
      jnp.asarray(expert_initial_obs),
      objective_key,
      nu=nu,
      actor=actor,
      bounds=bounds,
      discount=config.discount,
      replay_regularization=config.replay_regularization,
    )

    points = interpolate(
      aux['expert_inputs'],
      aux['replay_inputs'],
      aux['expert_next_inputs'],
      aux['replay_next_inputs'],
      penalty_key,
    )
    nu_apply = lambda params, x: nu.apply(params, x)[..., 0]
    penalty, penalty_grads = jax.value_and_grad(gradient_penalty, argnums=1)(
      nu_apply, state.nu_params, points
    )
    nu_grads = jax.tree.map(lambda g, p: g + config.nu_grad_penalty * p, nu_grads, penalty_grads)

    orthogonal, orthogonal_grads = jax.value_and_grad(orthogonal_regularization)(state.actor_params)
    # The actor maximises J^mix: descend −J^mix plus the regulariser.
    actor_grads = jax.tree.map(
      lambda g, o: -g + config.actor_orthogonal_reg * o, actor_grads, orthogonal_grads
    )

    nu_updates, nu_opt_state = nu_tx.update(nu_grads, state.nu_opt_state, state.nu_params)
    actor_updates, actor_opt_state = actor_tx.update(
      actor_grads, state.actor_opt_state, state.actor_params
    )
    new_state = ValueDICEState(
      actor_params=optax.apply_updates(state.actor_params, actor_updates),
      nu_params=optax.apply_updates(state.nu_params, nu_updates),
      actor_opt_state=actor_opt_state,
      nu_opt_state=nu_opt_state,
      step=state.step + 1,
    )
    metrics = {
      'objective': value,
      'nu_loss': value + config.nu_grad_penalty * penalty,
      'actor_loss': -value + config.actor_orthogonal_reg * orthogonal,
      'grad_penalty': penalty,
      'orthogonal_reg': orthogonal,
      'nu_expert': aux['nu_expert'],
      'nu_replay': aux['nu_replay'],
      'nu_initial': aux['nu_initial'],
    }
    return new_state, metrics

  def act(
    state_or_actor_params: ValueDICEState | Any,
    obs: jax.Array,
    key: jax.Array,
    deterministic: bool = False,
  ) -> jax.Array:
    """Actions in the environment's box for `obs` [..., d]: the mode tanh(μ(s)), plus N(0, σ²) noise
    (σ = `exploration_noise`) clipped to the box unless `deterministic` (a Python bool; `key` is then
    unused)."""
    mean, _ = actor.apply(networks.actor_params_of(state_or_actor_params, ValueDICEState), obs)
    unit_action = networks.noisy_mode_action(mean, config.exploration_noise, key, deterministic)
    return networks.to_env_action(unit_action, bounds)

  return ValueDICE(
    config=config, actor=actor, nu=nu, bounds=bounds, init=init, update=update, act=act
  )


def initial_observations(obs: np.ndarray, episode: np.ndarray) -> np.ndarray:
  """The first observation of every episode, for demonstrations stored back to back (`irl.demos`:
  `obs` [N, d] and the episode index `episode` [N] of each row). Apply the same normalisation and
  absorbing indicator as to the expert buffer before passing them to `as_agent(initial_obs=...)`."""
  obs, episode = np.asarray(obs), np.asarray(episode)
  if obs.ndim < 1 or episode.shape != obs.shape[:1] or obs.shape[0] < 1:
    raise ValueError(
      f'obs [N, d] and episode [N] must share a leading axis N >= 1, got shapes '
      f'{obs.shape} and {episode.shape}'
    )
  starts = np.concatenate([[True], episode[1:] != episode[:-1]])
  return obs[starts]


def as_agent(valuedice: ValueDICE, initial_obs: jax.Array | np.ndarray | None = None) -> Agent:
  """ValueDICE behind the `irl.loops.Agent` interface: each agent update draws `batch_size` expert
  transitions and `batch_size` replay transitions uniformly (with replacement) and makes one
  `valuedice.update`.

  Initial states: with `initial_obs=None` (the official code), the expert batch's own observations;
  otherwise `batch_size` rows drawn uniformly from the fixed array `initial_obs` [N, d] (e.g.
  `initial_observations(...)`). The loop must pass an expert buffer; the replay buffer holds the
  agent's own transitions only (as in ValueDICE's policy replay buffer).
  """
  batch_size = valuedice.config.batch_size
  if initial_obs is not None:
    initial_obs = jnp.asarray(initial_obs, jnp.float32)
    if initial_obs.ndim != 2 or initial_obs.shape[0] < 1:
      raise ValueError(f'initial_obs must have shape [N, d] with N >= 1, got {initial_obs.shape}')

  def update(
    state: ValueDICEState,
    replay_buffer: replay.ReplayBuffer,
    key: jax.Array,
    expert_buffer: replay.ExpertBuffer | None = None,
  ) -> tuple[ValueDICEState, dict]:
    if expert_buffer is None:
      raise ValueError('ValueDICE needs demonstrations: pass expert_buffer to the training loop')
    expert_key, replay_key, initial_key, update_key = jax.random.split(key, 4)
    expert_batch = replay.sample(expert_buffer, expert_key, batch_size)
    replay_batch = replay.sample(replay_buffer, replay_key, batch_size)
    if initial_obs is None:
      expert_initial_obs = expert_batch.obs
    else:
      rows = jax.random.randint(initial_key, (batch_size,), 0, initial_obs.shape[0])
      expert_initial_obs = initial_obs[rows]
    return valuedice.update(state, expert_batch, replay_batch, expert_initial_obs, update_key)

  return Agent(init=valuedice.init, act=valuedice.act, update=update)
