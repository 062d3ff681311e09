r"""Small MLPs for off-policy RL and IRL: Flax NNX to define them, plain params pytrees everywhere else.

Every factory returns a NamedTuple of two pure functions, like `cl.models.Model`:

  net = make_mlp(in_features, (256, 256), out_features)
  params = net.init(key)          # nested dict of arrays (`nnx.to_pure_dict`); vmappable over keys
  y = net.apply(params, x)        # x [..., in_features] -> y [..., out_features], any leading shape

`nnx.split` runs once per factory (on an abstract module, for the graph definition); `apply` does
`nnx.merge` inside the traced function, so params go through `jax.jit`, `jax.vmap`, optax and orbax as
they are.

The SAC actor (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications", arXiv
1812.05905) is a Gaussian over the pre-squash variable u, squashed to a = tanh(u) in (−1, 1)^|A|
(appendix C, "enforcing action bounds"), with the log-density

  log π(a|s) = log μ(u|s) − Σ_i log(1 − tanh²(u_i))                              (appendix C, eq. 21)

and log(1 − tanh²(u)) = 2(log 2 − u − softplus(−2u)), which is exact and finite for every u (the
naive form is −inf once tanh(u) rounds to ±1). Log-probabilities here are densities on the unit box
(−1, 1)^|A|; the affine map to the environment's bounds (`to_env_action`) shifts every log-density by
the same constant −Σ log((high − low)/2), which changes no gradient, and the target entropy −|A| of
the paper is meant in this unit-box convention.

Options for OPIRL's learner (arXiv 2109.04307, built on AlgaeDICE), off by default so every
existing caller is unchanged: `kernel_init='orthogonal'` (the official code's Keras orthogonal
kernels, gain 1, zero biases) in every factory, and `log_std_squash='tanh'` in `make_actor`, which
maps the raw output x smoothly onto the bounds, log σ = min + ½ (max − min)(tanh(x) + 1), instead of
clipping it.

The twin critics are `num_critics` independent MLPs with stacked params (a leading axis of size
`num_critics` on every leaf, initialised from independent keys) applied with `jax.vmap`, so both
run as one batched matmul per layer.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from envs.core import EnvError, EnvSpec
from irl.hparams import LOG_STD_MAX, LOG_STD_MIN, LOG_STD_SQUASHES  # noqa: F401 (re-exported)

KERNEL_INITS = {
  'lecun_normal': nnx.initializers.lecun_normal(),  # Flax's default for nnx.Linear
  'orthogonal': nnx.initializers.orthogonal(),  # Keras 'orthogonal' (gain 1), as in OPIRL
}


class MLP(nnx.Module):
  """ReLU hidden layers and a linear output layer, on the last axis of the input."""

  def __init__(
    self,
    in_features: int,
    hidden_sizes: Sequence[int],
    out_features: int,
    *,
    rngs: nnx.Rngs,
    kernel_init=KERNEL_INITS['lecun_normal'],
  ):
    sizes = [in_features, *hidden_sizes]
    self.hidden = nnx.List(
      [nnx.Linear(a, b, kernel_init=kernel_init, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])]
    )
    self.head = nnx.Linear(sizes[-1], out_features, kernel_init=kernel_init, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    for layer in self.hidden:
      x = jax.nn.relu(layer(x))
    return self.head(x)


class Network(NamedTuple):
  """A plain MLP: `init(key) -> params`, `apply(params, x [..., in]) -> [..., out]`."""

  init: Callable[[jax.Array], Any]
  apply: Callable[[Any, jax.Array], jax.Array]


class ActorNetwork(NamedTuple):
  """The tanh-Gaussian actor's torso: `apply(params, obs [..., d]) -> (mean, log_std)`, each
  [..., |A|], the parameters of the Gaussian over the pre-squash u; log_std lies in
  [log_std_min, log_std_max] (clipped, or tanh-squashed: `make_actor`). Sample with
  `sample_tanh_gaussian`, act greedily with tanh(mean)."""

  init: Callable[[jax.Array], Any]
  apply: Callable[[Any, jax.Array], tuple[jax.Array, jax.Array]]


class CriticNetwork(NamedTuple):
  """Independent Q-functions with stacked params: `apply(params, obs [..., d], action [..., |A|])
  -> q [num_critics, ...]`. Actions are in the unit box (−1, 1)^|A| (`to_unit_action`)."""

  init: Callable[[jax.Array], Any]
  apply: Callable[[Any, jax.Array, jax.Array], jax.Array]
  num_critics: int


def _check_sizes(in_features, hidden_sizes, out_features) -> tuple[int, tuple[int, ...], int]:
  for name, value in (('in_features', in_features), ('out_features', out_features)):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
      raise ValueError(f'{name} must be a positive int, got {value!r}')
  hidden = tuple(hidden_sizes)
  if any(isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1 for h in hidden):
    raise ValueError(f'hidden_sizes must be a sequence of positive ints, got {hidden_sizes!r}')
  return int(in_features), tuple(int(h) for h in hidden), int(out_features)


def _kernel_init(kernel_init: str):
  if kernel_init not in KERNEL_INITS:
    raise ValueError(f'kernel_init must be one of {sorted(KERNEL_INITS)}, got {kernel_init!r}')
  return KERNEL_INITS[kernel_init]


def make_mlp(
  in_features: int,
  hidden_sizes: Sequence[int],
  out_features: int,
  kernel_init: str = 'lecun_normal',
) -> Network:
  """An `MLP` behind the functional boundary (module docstring). Kernels use `kernel_init` (a key of
  `KERNEL_INITS`; by default Flax's LeCun-normal) and biases start at zero."""
  in_features, hidden_sizes, out_features = _check_sizes(in_features, hidden_sizes, out_features)
  init_fn = _kernel_init(kernel_init)
  build = lambda rngs: MLP(in_features, hidden_sizes, out_features, rngs=rngs, kernel_init=init_fn)
  graphdef, _ = nnx.split(nnx.eval_shape(lambda: build(nnx.Rngs(0))))

  def init(key: jax.Array):
    return nnx.to_pure_dict(nnx.split(build(nnx.Rngs(params=key)))[1])

  def apply(params, x: jax.Array) -> jax.Array:
    return nnx.merge(graphdef, params)(x)

  return Network(init=init, apply=apply)


def make_actor(
  obs_dim: int,
  action_dim: int,
  hidden_sizes: Sequence[int] = (256, 256),
  log_std_min: float = LOG_STD_MIN,
  log_std_max: float = LOG_STD_MAX,
  kernel_init: str = 'lecun_normal',
  log_std_squash: str = 'clip',
) -> ActorNetwork:
  """The tanh-Gaussian actor: one MLP with 2|A| outputs, the Gaussian's mean and log-std.

  `log_std_squash='clip'` clips the raw log-std output x into [log_std_min, log_std_max] (SAC's
  softlearning); 'tanh' maps it smoothly, log σ = min + ½ (max − min)(tanh(x) + 1), as OPIRL's and
  AlgaeDICE's actors do, so the bounds never cut the gradient.
  """
  if not log_std_min < log_std_max:
    raise ValueError(f'log_std_min must be < log_std_max, got {log_std_min} and {log_std_max}')
  if log_std_squash not in LOG_STD_SQUASHES:
    raise ValueError(
      f'log_std_squash must be one of {list(LOG_STD_SQUASHES)}, got {log_std_squash!r}'
    )
  torso = make_mlp(obs_dim, hidden_sizes, 2 * action_dim, kernel_init)

  def apply(params, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
    mean, log_std = jnp.split(torso.apply(params, obs), 2, axis=-1)
    if log_std_squash == 'tanh':
      return mean, log_std_min + 0.5 * (log_std_max - log_std_min) * (jnp.tanh(log_std) + 1.0)
    return mean, jnp.clip(log_std, log_std_min, log_std_max)

  return ActorNetwork(init=torso.init, apply=apply)


def make_critic(
  obs_dim: int,
  action_dim: int,
  hidden_sizes: Sequence[int] = (256, 256),
  num_critics: int = 2,
  kernel_init: str = 'lecun_normal',
) -> CriticNetwork:
  """`num_critics` Q-networks Q_i(s, a) = MLP_i([s, a]) with independent initial params (the clipped
  double-Q of the paper's section 6 uses two)."""
  if (
    isinstance(num_critics, bool)
    or not isinstance(num_critics, (int, np.integer))
    or num_critics < 1
  ):
    raise ValueError(f'num_critics must be a positive int, got {num_critics!r}')
  q = make_mlp(obs_dim + action_dim, hidden_sizes, 1, kernel_init)

  def init(key: jax.Array):
    return jax.vmap(q.init)(jax.random.split(key, num_critics))

  def apply(params, obs: jax.Array, action: jax.Array) -> jax.Array:
    x = jnp.concatenate([obs, action.astype(obs.dtype)], axis=-1)
    return jax.vmap(q.apply, in_axes=(0, None))(params, x)[..., 0]

  return CriticNetwork(init=init, apply=apply, num_critics=int(num_critics))


# ---------------------------------------------------------------------------------------------------
# The tanh-squashed Gaussian


def tanh_log_det_jacobian(u: jax.Array) -> jax.Array:
  """Σ_i log(d tanh(u_i)/du_i) = Σ_i log(1 − tanh²(u_i)) over the last axis, in the stable form
  2(log 2 − u − softplus(−2u)), exact since 1 − tanh²(u) = 4e^{−2u}/(1 + e^{−2u})²."""
  return jnp.sum(2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u)), axis=-1)


def gaussian_log_prob(u: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
  """log N(u; mean, diag(exp(log_std)²)), summed over the last axis."""
  z = (u - mean) * jnp.exp(-log_std)
  return jnp.sum(-0.5 * z**2 - log_std - 0.5 * jnp.log(2.0 * jnp.pi), axis=-1)


def tanh_gaussian_log_prob(u: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
  """log π(tanh(u)|s) on the unit box, from the pre-squash sample u (appendix C, eq. 21).

  Evaluated from u rather than from a = tanh(u), since atanh of a rounded ±1 is infinite.
  """
  return gaussian_log_prob(u, mean, log_std) - tanh_log_det_jacobian(u)


def sample_tanh_gaussian(
  key: jax.Array, mean: jax.Array, log_std: jax.Array
) -> tuple[jax.Array, jax.Array]:
  """Reparameterised sample a = tanh(mean + exp(log_std)·ε), ε ~ N(0, I) (eq. 8), and log π(a|s).

  Returns (a in (−1, 1)^|A| with the leading shape of `mean`, log π [leading shape]); both are
  differentiable in `mean` and `log_std`.
  """
  u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape, mean.dtype)
  return jnp.tanh(u), tanh_gaussian_log_prob(u, mean, log_std)


# ---------------------------------------------------------------------------------------------------
# Action scaling


class ActionBounds(NamedTuple):
  """Finite per-dimension bounds of an environment's action box (float32 arrays [|A|])."""

  low: jax.Array
  high: jax.Array


def checked_learner_inputs(
  learner: str, spec: EnvSpec, config: Any, config_type: type
) -> tuple[ActionBounds, int, int]:
  """What every policy learner checks first: `config` is a `config_type` (TypeError) with valid
  fields (its `validate()`, ValueError), observations are flat (ValueError naming `learner`) and the
  action box is finite (`action_bounds`, EnvError). Returns (bounds, obs_dim, action_dim)."""
  if not isinstance(config, config_type):
    raise TypeError(
      f'config must be an instance of {config_type.__name__}, got {type(config).__name__}'
    )
  config.validate()
  if len(spec.observation.shape) != 1:
    raise ValueError(
      f'{spec.name}: {learner} needs flat observations (one axis), got shape '
      f'{spec.observation.shape}'
    )
  return action_bounds(spec), spec.observation.shape[0], spec.action.shape[0]


def action_bounds(spec: EnvSpec) -> ActionBounds:
  """The action box of `spec`, checked: flat, finite, and low < high in every dimension.

  Raises EnvError otherwise, since a tanh-squashed policy needs a bounded box.
  """
  box = spec.action
  if len(box.shape) != 1:
    raise EnvError(f'{spec.name}: spec.action.shape must be flat (one axis), got {box.shape}')
  low = np.broadcast_to(np.asarray(box.low, np.float32), box.shape)
  high = np.broadcast_to(np.asarray(box.high, np.float32), box.shape)
  if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(low < high)):
    raise EnvError(
      f'{spec.name}: spec.action.low/high must be finite with low < high, got '
      f'low={low.tolist()}, high={high.tolist()}'
    )
  return ActionBounds(jnp.asarray(low), jnp.asarray(high))


def to_env_action(unit_action: jax.Array, bounds: ActionBounds) -> jax.Array:
  """Maps the unit box (−1, 1)^|A| affinely onto [low, high]."""
  return bounds.low + 0.5 * (unit_action + 1.0) * (bounds.high - bounds.low)


def to_unit_action(action: jax.Array, bounds: ActionBounds) -> jax.Array:
  """The inverse of `to_env_action`: environment actions in [low, high] to [−1, 1]."""
  return 2.0 * (action - bounds.low) / (bounds.high - bounds.low) - 1.0


def actor_params_of(state_or_actor_params: Any, state_type: type) -> Any:
  """The actor's parameters: `state.actor_params` for a learner state of `state_type`, else the
  argument itself (the learners' `act` take either)."""
  if isinstance(state_or_actor_params, state_type):
    return state_or_actor_params.actor_params
  return state_or_actor_params


def noisy_mode_action(
  mean: jax.Array, noise_std: float, key: jax.Array, deterministic: bool
) -> jax.Array:
  """The deterministic policies' unit-box action: the mode tanh(mean), plus N(0, noise_std²)
  clipped to [−1, 1] unless `deterministic` (a Python bool; `key` is then unused) or
  `noise_std` is 0 (AlgaeDICE's and ValueDICE's exploration)."""
  unit_action = jnp.tanh(mean)
  if deterministic or noise_std == 0:
    return unit_action
  noise = noise_std * jax.random.normal(key, unit_action.shape, unit_action.dtype)
  return jnp.clip(unit_action + noise, -1.0, 1.0)
