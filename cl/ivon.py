r"""IVON and VOGN: variational online Newton optimizers as optax transforms, with VCL priors.

Both learn a mean-field Gaussian posterior q(θ) = N(m, diag(σ²)) by the Bayesian learning rule (BLR;
Khan & Rue, JMLR 2023), with

    σ² = 1 / (λ (h + δ)),                                                         (IVON, Sec. 2)

where λ = `ess` (the effective sample size, ≈ N), h is a per-parameter curvature estimate of the *average*
per-example loss, and δ is the prior precision divided by λ (`weight_decay` in the official optimizer).
The objective is E_q[λ ℓ̄(θ)] + (λ δ/2)‖θ − μ₀‖² − H(q), with ℓ̄ the average loss over the data.

Usage (the caller samples, this module never holds a key)::

    opt = ivon(learning_rate=0.1, ess=N)
    state = opt.init(params)                    # params = the posterior mean m
    loss, g, h_hat = value_and_grad_and_hess(loss_fn, key, params, state, mc_samples=1)
    updates, state = opt.update(g, state, params, hess_estimate=h_hat)
    params = optax.apply_updates(params, updates)

IVON step (Shen, Daheim, et al., ICML 2024, Alg. 1; `team-approx-bayes/ivon` v0.1.3), with t = count + 1:

    θ = m + σ ⊙ ε,  ε ~ N(0, I);  ĝ = ∇ℓ̄(θ);  ĥ = ĝ ⊙ ε / σ  (reparameterisation, "price")   (1)
    ḡ ← β₁ ḡ + (1 − β₁) ĝ                                                                        (2)
    h ← β₂ h + (1 − β₂) ĥ + ½ (1 − β₂)² (h − ĥ)² / (h + δ)                                        (3)
    m ← m − α' clip((ḡ / (1 − β₁ᵗ) + δ ⊙ (m − μ₀)) / (h + δ), −ξ, ξ),  α' = α (h₀ + δ)          (4)

(3) is the Riemannian (improved-BLR, Lin et al. ICML 2020) correction. Writing s = h + δ, ŝ = ĥ + δ and
a = 1 − β₂, it reads s ← s/2 + (s − a (s − ŝ))² / (2 s) ≥ s/2, so the posterior precision λ(h + δ) stays
positive whatever ĥ is (with δ = 0 this is h > 0 itself). h is not debiased, only the momentum is.

Departure from the official optimizer, by design: the prior term is δ ⊙ (m − μ₀) with a per-parameter
prior mean μ₀ and precision δ (held in the state), and α' uses that per-parameter δ. With a scalar weight
decay and μ₀ = 0 (the defaults of `init`) this is exactly the official rule; the generalisation is what
variational continual learning (VCL; Nguyen et al. 2018, and IVON for CL in CoVON) needs, where the
posterior after task t becomes the prior of task t + 1 (`posterior_as_prior`).

VOGN (Khan et al. ICML 2018; Osawa et al. NeurIPS 2019) shares the state and the sampling; ĥ is the mean
over the minibatch of per-example squared gradients at θ (a diagonal Gauss-Newton estimate, ≥ 0), the
curvature update is the plain EMA h ← β₂ h + (1 − β₂) ĥ, and the mean step is (4) with α' = α.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

Params = Any

HESS_APPROXES = ('price', 'gradsq')


class IVONState(NamedTuple):
  """State of `ivon` and `vogn`; every field is an array (or a pytree of arrays shaped like params)."""

  count: jax.Array  # int32 [], steps taken
  momentum: Params  # ḡ, Eq. (2)
  hess: Params  # h, per-parameter curvature of the average loss, Eq. (3); starts at hess_init
  prior_mean: Params  # μ₀, zeros from `init`
  prior_prec: Params  # δ, prior precision / ess, per parameter; `weight_decay` from `init`
  ess: jax.Array  # λ, float32 [], effective sample size


def _check_hess_approx(hess_approx: str) -> None:
  if hess_approx not in HESS_APPROXES:
    raise ValueError(f'hess_approx must be one of {HESS_APPROXES}, got {hess_approx!r}')


def posterior_std(state: IVONState) -> Params:
  """σ = 1/sqrt(λ (h + δ)), per parameter (IVON Sec. 2)."""
  return jax.tree.map(lambda h, d: jax.lax.rsqrt(state.ess * (h + d)), state.hess, state.prior_prec)


def sample_parameters(key: jax.Array, params: Params, state: IVONState) -> tuple[Params, Params]:
  """Draws θ = m + σ ⊙ ε with ε ~ N(0, I), Eq. (1).

  Args:
    key: PRNG key.
    params: the posterior mean m (any pytree of float arrays).
    state: the optimizer state, giving σ.

  Returns:
    (θ, ε), both shaped like `params`.
  """
  leaves, treedef = jax.tree.flatten(params)
  keys = jax.random.split(key, len(leaves))
  noise = jax.tree.unflatten(
    treedef, [jax.random.normal(k, p.shape, p.dtype) for k, p in zip(keys, leaves)]
  )
  theta = jax.tree.map(lambda m, s, e: m + s * e, params, posterior_std(state), noise)
  return theta, noise


def hessian_estimate(
  grads: Params, noise: Params, state: IVONState, hess_approx: str = 'price'
) -> Params:
  """Single-sample curvature estimate ĥ from a gradient ĝ at θ = m + σ ⊙ ε.

  Args:
    grads: ĝ, the gradient of the average loss at θ.
    noise: ε, as returned by `sample_parameters` for that θ.
    state: the state used to draw θ (its σ).
    hess_approx: 'price', the reparameterisation (Price/Stein) estimator of E_q[∇²ℓ̄], Eq. (1):
      ĥ = ĝ ⊙ ε/σ = ĝ ⊙ (θ − m)/σ² (unbiased for the Hessian's diagonal, may be negative); or
      'gradsq': ĥ = λ ĝ², the official optimizer's alternative (`team-approx-bayes/ivon` v0.1.3
      multiplies its mean of squared gradients by `ess`, as it does the price estimate). Not VOGN's
      estimate, which squares per-example gradients (`per_example_sq_grad_mean`).

  Returns:
    ĥ, shaped like `grads`. Average it over MC samples (as `value_and_grad_and_hess` does).
  """
  _check_hess_approx(hess_approx)
  if hess_approx == 'gradsq':
    return jax.tree.map(lambda g: state.ess * jnp.square(g), grads)
  return jax.tree.map(lambda g, e, s: g * e / s, grads, noise, posterior_std(state))


def value_and_grad_and_hess(
  loss_fn: Callable[..., Any],
  key: jax.Array,
  params: Params,
  state: IVONState,
  mc_samples: int = 1,
  hess_approx: str = 'price',
  has_aux: bool = False,
):
  """Monte-Carlo loss, gradient and curvature estimate under q, Eq. (1).

  Draws `mc_samples` samples θ_s = m + σ ⊙ ε_s (a `lax.scan`, so memory does not grow with the count) and
  averages loss_fn(θ_s), ĝ_s and ĥ_s = hessian_estimate(ĝ_s, ε_s) over them, as the official optimizer's
  Welford means do.

  Args:
    loss_fn: θ -> the average loss over the batch (a scalar), or (loss, aux) if `has_aux`.
    key: PRNG key for the weight samples.
    params: the posterior mean m.
    state: the optimizer state (σ).
    mc_samples: number of weight samples S (static).
    hess_approx: see `hessian_estimate`.
    has_aux: whether `loss_fn` returns (loss, aux).

  Returns:
    (loss, grad, hess): the mean loss, mean gradient and mean ĥ over samples; if `has_aux`, `loss` is
    (mean loss, aux) with aux stacked over samples along a leading [mc_samples] axis.
  """
  _check_hess_approx(hess_approx)
  grad_fn = jax.value_and_grad(loss_fn, has_aux=has_aux)
  zeros = jax.tree.map(jnp.zeros_like, params)

  def one_sample(carry, sample_key):
    loss_sum, grad_sum, hess_sum = carry
    theta, noise = sample_parameters(sample_key, params, state)
    value, grads = grad_fn(theta)
    loss, aux = value if has_aux else (value, None)
    hess = hessian_estimate(grads, noise, state, hess_approx)
    carry = (
      loss_sum + loss,
      jax.tree.map(jnp.add, grad_sum, grads),
      jax.tree.map(jnp.add, hess_sum, hess),
    )
    return carry, aux

  init = (jnp.zeros((), jnp.float32), zeros, zeros)
  (loss_sum, grad_sum, hess_sum), aux = jax.lax.scan(
    one_sample, init, jax.random.split(key, mc_samples)
  )
  mean = lambda x: x / mc_samples
  loss = mean(loss_sum)
  return (
    ((loss, aux) if has_aux else loss),
    jax.tree.map(mean, grad_sum),
    jax.tree.map(mean, hess_sum),
  )


def per_example_sq_grad_mean(
  per_example_loss_fn: Callable[[Params, Any], jax.Array], params: Params, batch: Any
) -> Params:
  """Mean over a minibatch of squared per-example gradients, VOGN's ĥ (Khan et al. 2018, Eq. 8).

  Args:
    per_example_loss_fn: (params, example) -> scalar loss of one example, where `example` is one slice
      of `batch` along its leading axis (e.g. (x_i, y_i)).
    params: where to differentiate (the sampled θ for VOGN).
    batch: pytree of arrays sharing a leading batch axis [B].

  Returns:
    (1/B) Σ_i (∇ℓ_i(params))², shaped like `params`. With ℓ_i the negative log-likelihood this is the
    empirical-Fisher form used by Osawa et al.; with ℓ_i = Λ_i^{1/2} f_i (scalar output) it is exactly the
    diagonal GGN J_iᵀ Λ_i J_i.
  """
  grads = jax.vmap(jax.grad(per_example_loss_fn), in_axes=(None, 0))(params, batch)
  return jax.tree.map(lambda g: jnp.mean(jnp.square(g), axis=0), grads)


def value_and_grad_and_sq_grad(
  per_example_loss_fn: Callable[[Params, Any], jax.Array],
  key: jax.Array,
  params: Params,
  state: IVONState,
  batch: Any,
  mc_samples: int = 1,
):
  """VOGN's Monte-Carlo loss, gradient and squared-gradient curvature, from one per-example pass.

  Args:
    per_example_loss_fn: (params, example) -> scalar, as in `per_example_sq_grad_mean`.
    key: PRNG key for the weight samples.
    params: the posterior mean m.
    state: the optimizer state (σ).
    batch: pytree of arrays with a leading batch axis [B].
    mc_samples: number of weight samples (static).

  Returns:
    (loss, grad, hess): the mean over samples and examples of ℓ_i(θ_s), ∇ℓ_i(θ_s) and (∇ℓ_i(θ_s))².
  """
  per_example = jax.vmap(jax.value_and_grad(per_example_loss_fn), in_axes=(None, 0))
  zeros = jax.tree.map(jnp.zeros_like, params)

  def one_sample(carry, sample_key):
    loss_sum, grad_sum, hess_sum = carry
    theta, _ = sample_parameters(sample_key, params, state)
    losses, grads = per_example(theta, batch)
    carry = (
      loss_sum + jnp.mean(losses),
      jax.tree.map(lambda a, g: a + jnp.mean(g, axis=0), grad_sum, grads),
      jax.tree.map(lambda a, g: a + jnp.mean(jnp.square(g), axis=0), hess_sum, grads),
    )
    return carry, None

  init = (jnp.zeros((), jnp.float32), zeros, zeros)
  (loss_sum, grad_sum, hess_sum), _ = jax.lax.scan(
    one_sample, init, jax.random.split(key, mc_samples)
  )
  mean = lambda x: x / mc_samples
  return mean(loss_sum), jax.tree.map(mean, grad_sum), jax.tree.map(mean, hess_sum)


def _variational_online_newton(
  learning_rate,
  ess,
  *,
  hess_init,
  beta1,
  beta2,
  weight_decay,
  clip_radius,
  rescale_lr,
  debias,
  riemannian_correction,
  hess_approx,
) -> optax.GradientTransformationExtraArgs:
  """Shared IVON/VOGN factory; see `ivon` and `vogn`."""
  if hess_init <= 0:
    raise ValueError(
      f'hess_init must be positive (IVON Appendix A: never start h at 0), got {hess_init}'
    )

  def init_fn(params):
    return IVONState(
      count=jnp.zeros((), jnp.int32),
      momentum=jax.tree.map(jnp.zeros_like, params),
      hess=jax.tree.map(lambda p: jnp.full_like(p, hess_init), params),
      prior_mean=jax.tree.map(jnp.zeros_like, params),
      prior_prec=jax.tree.map(lambda p: jnp.full_like(p, weight_decay), params),
      ess=jnp.asarray(ess, jnp.float32),
    )

  def update_fn(grads, state, params=None, *, hess_estimate=None, noise=None, **extra_args):
    del extra_args
    if params is None:
      raise ValueError('the IVON/VOGN update needs params (the posterior mean m)')
    if (hess_estimate is None) == (noise is None):
      raise ValueError(
        'pass exactly one of hess_estimate= (MC-averaged ĥ) or noise= (single-sample ε)'
      )
    if hess_estimate is None:
      if hess_approx is None:
        raise ValueError('VOGN needs hess_estimate= (per-example squared gradients), not noise=')
      hess_estimate = hessian_estimate(grads, noise, state, hess_approx)
    lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
    count = optax.safe_increment(state.count)

    momentum = jax.tree.map(lambda gbar, g: beta1 * gbar + (1 - beta1) * g, state.momentum, grads)

    def new_hess(h, h_hat, delta):
      h_ema = beta2 * h + (1 - beta2) * h_hat
      if riemannian_correction:
        h_ema = h_ema + 0.5 * (1 - beta2) ** 2 * jnp.square(h - h_hat) / (h + delta)
      return h_ema

    hess = jax.tree.map(new_hess, state.hess, hess_estimate, state.prior_prec)
    bias_correction = (1 - beta1 ** count.astype(jnp.float32)) if debias else 1.0

    def mean_update(m, gbar, h, mu0, delta):
      direction = (gbar / bias_correction + delta * (m - mu0)) / (h + delta)
      # α' = α (h₀ + δ) with δ the weight-decay hyper-parameter, not the (possibly propagated)
      # per-parameter prior precision: with VCL's prior δ' ≫ δ a per-parameter rescale would make the
      # step α δ' (m − μ0)/(h + δ') an unstable gradient step on the prior term.
      step_size = lr * (hess_init + weight_decay) if rescale_lr else lr
      return -step_size * jnp.clip(direction, -clip_radius, clip_radius)

    updates = jax.tree.map(mean_update, params, momentum, hess, state.prior_mean, state.prior_prec)
    new_state = IVONState(
      count=count,
      momentum=momentum,
      hess=hess,
      prior_mean=state.prior_mean,
      prior_prec=state.prior_prec,
      ess=state.ess,
    )
    return updates, new_state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def ivon(
  learning_rate: float | optax.Schedule,
  ess: float,
  *,
  hess_init: float = 1.0,
  beta1: float = 0.9,
  beta2: float = 0.99999,
  weight_decay: float = 1e-4,
  clip_radius: float = float('inf'),
  rescale_lr: bool = True,
  debias: bool = True,
  hess_approx: str = 'price',
) -> optax.GradientTransformationExtraArgs:
  """Improved Variational Online Newton (Shen, Daheim, et al., ICML 2024), Eqs. (1)-(4) above.

  The defaults are the official optimizer's. `update(grads, state, params, *, hess_estimate)` takes ĝ
  and ĥ averaged over MC samples (see `value_and_grad_and_hess`) and returns updates = m_new − m; with a
  single sample one may instead pass `noise=ε` and ĥ is computed with `hess_approx`. A schedule is
  evaluated at the number of steps taken before this one (optax convention).

  Args:
    learning_rate: α, or an optax schedule of the step count.
    ess: λ, the effective sample size (≈ N); stored in the state as float32.
    hess_init: h₀ > 0, the initial curvature; sets the initial σ.
    beta1: β₁, momentum of ĝ, Eq. (2).
    beta2: β₂, EMA of ĥ, Eq. (3); must be very close to 1 for noisy ĥ.
    weight_decay: δ, prior precision / λ; broadcast per parameter into the state by `init`.
    clip_radius: ξ, element-wise clip of the preconditioned direction, Eq. (4).
    rescale_lr: α' = α (h₀ + δ) with the scalar `weight_decay` δ, so the first steps move like SGD
      with rate α; a prior precision set later (`with_prior`) does not change α'.
    debias: divide the momentum by 1 − β₁ᵗ (h is never debiased).
    hess_approx: 'price' or 'gradsq'; used only when `update` gets `noise=` instead of `hess_estimate=`.

  Returns:
    An `optax.GradientTransformationExtraArgs` whose state is an `IVONState`.
  """
  _check_hess_approx(hess_approx)
  return _variational_online_newton(
    learning_rate,
    ess,
    hess_init=hess_init,
    beta1=beta1,
    beta2=beta2,
    weight_decay=weight_decay,
    clip_radius=clip_radius,
    rescale_lr=rescale_lr,
    debias=debias,
    riemannian_correction=True,
    hess_approx=hess_approx,
  )


def vogn(
  learning_rate: float | optax.Schedule,
  ess: float,
  *,
  hess_init: float = 1.0,
  beta1: float = 0.9,
  beta2: float = 0.999,
  weight_decay: float = 1e-4,
  debias: bool = True,
  clip_radius: float = float('inf'),
) -> optax.GradientTransformationExtraArgs:
  """Variational Online Gauss-Newton (Khan et al. ICML 2018; Osawa et al. NeurIPS 2019).

  Same state, sampling and mean step as `ivon` (Eq. 4 with α' = α, no lr rescaling); the curvature is
  the plain EMA h ← β₂ h + (1 − β₂) ĥ, where `hess_estimate` ĥ must be a non-negative Gauss-Newton
  estimate: the minibatch mean of per-example squared gradients at θ (`per_example_sq_grad_mean`,
  `value_and_grad_and_sq_grad`). In dnn2gp's parametrisation P = λ(h + δ) this is
  P ← β₂ P + (1 − β₂)(λ ĥ + λδ), the same rule.

  Args:
    learning_rate: α, or an optax schedule of the step count.
    ess: λ, the effective sample size (≈ N).
    hess_init: h₀ > 0.
    beta1: β₁, momentum of ĝ.
    beta2: β₂, EMA of ĥ.
    weight_decay: δ, prior precision / λ.
    debias: divide the momentum by 1 − β₁ᵗ.
    clip_radius: ξ, element-wise clip of the preconditioned direction.

  Returns:
    An `optax.GradientTransformationExtraArgs` whose state is an `IVONState`.
  """
  return _variational_online_newton(
    learning_rate,
    ess,
    hess_init=hess_init,
    beta1=beta1,
    beta2=beta2,
    weight_decay=weight_decay,
    clip_radius=clip_radius,
    rescale_lr=False,
    debias=debias,
    riemannian_correction=False,
    hess_approx=None,
  )


def with_prior(
  state: IVONState,
  prior_mean: Params,
  prior_prec: Params | float,
  ess: float | jax.Array | None = None,
) -> IVONState:
  """Sets the prior N(μ₀, (λ δ)⁻¹) of the next task (variational continual learning).

  Args:
    state: the optimizer state.
    prior_mean: μ₀, shaped like params.
    prior_prec: δ in IVON units, i.e. the absolute prior precision divided by the (new) ess λ; a pytree
      shaped like params or a scalar broadcast to every parameter.
    ess: the new λ; None keeps the state's.

  Returns:
    The state with the new prior (and ess); count, momentum and h are unchanged.
  """
  new_ess = state.ess if ess is None else jnp.asarray(ess, jnp.float32)
  if jax.tree_util.treedef_is_leaf(jax.tree.structure(prior_prec)):
    prior_prec = jax.tree.map(lambda _: prior_prec, state.prior_prec)
  like = lambda old, new: jnp.broadcast_to(jnp.asarray(new, old.dtype), old.shape)
  prior_mean = jax.tree.map(like, state.prior_mean, prior_mean)
  prior_prec = jax.tree.map(like, state.prior_prec, prior_prec)
  return state._replace(prior_mean=prior_mean, prior_prec=prior_prec, ess=new_ess)


def posterior_as_prior(
  state: IVONState, params: Params, new_ess: float | jax.Array | None = None
) -> IVONState:
  """VCL: the posterior q_t = N(m, (λ(h + δ))⁻¹) after task t becomes the prior of task t + 1.

  The prior mean becomes m and the absolute prior precision λ(h + δ); in the units of the next task's ess
  λ', δ' = λ (h + δ) / λ'. Call it on the state at the *end* of task t (it reads h and δ). The count, the
  momentum and h are kept: h then warm-starts the next task's curvature, so the next posterior precision
  starts at λ' h + λ(h + δ); reset them by hand (e.g. `state._replace(hess=...)`) for a cold start.
  The step size α (h₀ + δ) uses the weight-decay hyper-parameter, so it does not grow with δ'.

  Args:
    state: the state after task t.
    params: its posterior mean m.
    new_ess: λ' for task t + 1; None keeps λ.

  Returns:
    The state with prior_mean = m, prior_prec = δ' and ess = λ'.
  """
  new_ess = state.ess if new_ess is None else jnp.asarray(new_ess, jnp.float32)
  prior_prec = jax.tree.map(
    lambda h, d: state.ess * (h + d) / new_ess, state.hess, state.prior_prec
  )
  return with_prior(state, params, prior_prec, new_ess)


def predict_mean(
  apply_fn: Callable[[Params, jax.Array], jax.Array], params: Params, x: jax.Array
) -> jax.Array:
  """Prediction at the posterior mean m (like Adam's weights; IVON Sec. 4)."""
  return apply_fn(params, x)


def predictive_probs(
  apply_fn: Callable[[Params, jax.Array], jax.Array],
  key: jax.Array,
  params: Params,
  state: IVONState,
  x: jax.Array,
  num_samples: int,
) -> jax.Array:
  """Posterior averaging: (1/S) Σ_s softmax(apply_fn(θ_s, x)), θ_s ~ q (IVON Sec. 4).

  Args:
    apply_fn: (params, x) -> logits [..., num_classes].
    key: PRNG key for the S samples.
    params: the posterior mean m.
    state: the optimizer state (σ).
    x: inputs.
    num_samples: S (static).

  Returns:
    Averaged class probabilities, shaped like the logits.
  """

  def one_sample(prob_sum, sample_key):
    theta, _ = sample_parameters(sample_key, params, state)
    return prob_sum + jax.nn.softmax(apply_fn(theta, x)), None

  logits_shape = jax.eval_shape(apply_fn, params, x)
  init = jnp.zeros(logits_shape.shape, jnp.float32)
  prob_sum, _ = jax.lax.scan(one_sample, init, jax.random.split(key, num_samples))
  return prob_sum / num_samples
