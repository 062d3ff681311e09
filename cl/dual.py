"""Dual (function-space) quantities of a trained classifier: the pieces behind Bayes-duality methods.

A network linearised at θ* with a Gauss-Newton (GGN) or Laplace posterior is, in function space, a GP on
Jacobian features (DNN2GP; Khan, Immer, Abedi & Korzepa, NeurIPS 2019). Every training example i then
carries one dual site: the prediction error and the softmax curvature at its logits,

    r_i = σ(f_i) − onehot(y_i),        Λ_i = diag(σ(f_i)) − σ(f_i) σ(f_i)ᵀ,

attached to the per-example Jacobian J_i = ∂f(x_i)/∂θ ∈ R^{C×P}. From these:

* the diagonal GGN Σ_i diag(J_iᵀ Λ_i J_i), which with a prior precision δ gives the diagonal posterior
  covariance Σ = diag(1 / (F + δ)) of FROMP (Pan, Swaroop et al., NeurIPS 2020);
* the DNN2GP / FROMP kernel κ_c(x, x') = J_c(x) Σ J_c(x')ᵀ, one block per output class;
* FROMP's memorable-point score λ_i = tr Λ_i = Σ_k p_ik (1 − p_ik), and class-balanced memory selection;
* the Memory-Perturbation Equation's sensitivity, prediction error × prediction variance
  (Nickl, Xu, Tailor, Möllenhoff & Khan, NeurIPS 2023);
* the soft-label cross-entropy of K-priors (Khan & Swaroop, NeurIPS 2021), whose gradient
  J_iᵀ(σ(f_i(θ)) − σ(f_i(θ_old))) reconstructs the old objective's gradient.

Conventions. `apply_fn(params, x[B, ...]) -> logits[B, C]` with params a pytree. `mask` (bool [C] or
[N, C]) says which logits exist for an example: the softmax runs over the allowed logits only and every
quantity of a masked-out class is exactly zero (multi-head outputs, as in `cl.models.masked_logits`).
Everything here is a pure function of arrays and works under `jax.jit` and `jax.vmap` (e.g. over seeds'
params); `chunk_size`, `num_classes`, `num_per_class`, `rule` and `outputs` are static.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from cl.models import masked_logits

Params = Any
ApplyFn = Callable[[Params, jax.Array], jax.Array]

MEMORY_RULES = ('lambda_descend', 'lambda_ascend', 'random', 'sensitivity')
KERNEL_OUTPUTS = ('logits', 'probs')


# ------------------------------------------------------------------------------------------------
# Per-example dual sites.


def masked_softmax(logits: jax.Array, mask: Optional[jax.Array] = None) -> jax.Array:
  """Softmax over the logits allowed by `mask`; disallowed classes get probability exactly 0.

  Args:
    logits: [N, C] logits.
    mask: optional bool [C] or [N, C].

  Returns:
    [N, C] probabilities p, summing to 1 over the allowed classes of each row.
  """
  if mask is None:
    return jax.nn.softmax(logits, axis=-1)
  mask = jnp.broadcast_to(mask, logits.shape)
  probs = jax.nn.softmax(masked_logits(logits, mask), axis=-1)
  # exp(-1e9 - max) already underflows to 0; the `where` makes it exact for any dtype.
  return jnp.where(mask, probs, 0.0)


def residuals_and_curvatures(
  logits: jax.Array, labels: jax.Array, mask: Optional[jax.Array] = None
) -> tuple[jax.Array, jax.Array]:
  """Dual site of every example: prediction error r_i and softmax curvature Λ_i (DNN2GP, Sec. 3).

  r_i = p_i − onehot(y_i) is the gradient of the cross-entropy w.r.t. the logits and
  Λ_i = diag(p_i) − p_i p_iᵀ its Hessian, with p_i the masked softmax. Each Λ_i is PSD with rows summing
  to 0, and r_i sums to 0 over classes when y_i is an allowed class.

  Args:
    logits: [N, C] logits.
    labels: [N] int class ids.
    mask: optional bool [C] or [N, C] of allowed logits.

  Returns:
    (r [N, C], Λ [N, C, C]); rows/columns of masked-out classes are exactly 0 (so is the one-hot of a
    label outside the mask).
  """
  probs = masked_softmax(logits, mask)
  residuals = probs - jax.nn.one_hot(labels, logits.shape[-1], dtype=probs.dtype)
  if mask is not None:
    residuals = jnp.where(jnp.broadcast_to(mask, logits.shape), residuals, 0.0)
  curvatures = jax.vmap(jnp.diag)(probs) - probs[:, :, None] * probs[:, None, :]
  return residuals, curvatures


def lambda_scores(logits: jax.Array, mask: Optional[jax.Array] = None) -> jax.Array:
  """FROMP's memorable-point score λ_i = tr Λ_i = Σ_k p_ik (1 − p_ik) (Pan, Swaroop et al. 2020, Sec. 3.2).

  Large λ_i means the example sits near a decision boundary, where its dual site matters most.

  Args:
    logits: [N, C] logits.
    mask: optional bool [C] or [N, C] of allowed logits.

  Returns:
    [N] scores in [0, 1 − 1/C_allowed].
  """
  probs = masked_softmax(logits, mask)
  return jnp.sum(probs * (1.0 - probs), axis=-1)


def soft_label_cross_entropy(
  logits: jax.Array, target_probs: jax.Array, mask: Optional[jax.Array] = None
) -> jax.Array:
  """Per-example cross-entropy to soft labels, −Σ_c q_c log softmax(f)_c.

  The function-space term of K-priors, Σ_{i∈M} ℓ(σ(f_i(θ_old)), f_i(θ)) (Khan & Swaroop 2021, Eq. for
  K(θ) in Sec. 3), of FROMP-L2-like and of distillation losses. Its gradient w.r.t. the logits is
  softmax(f) − q whenever q sums to 1 over the allowed classes, so through the chain rule its θ-gradient is
  J_iᵀ(σ(f_i(θ)) − q_i).

  Args:
    logits: [N, C] logits f.
    target_probs: [N, C] soft labels q (e.g. the old model's masked softmax).
    mask: optional bool [C] or [N, C]; masked-out classes contribute exactly 0 (their q is ignored).

  Returns:
    [N] losses.
  """
  if mask is None:
    return -jnp.sum(target_probs * jax.nn.log_softmax(logits, axis=-1), axis=-1)
  mask = jnp.broadcast_to(mask, logits.shape)
  log_probs = jax.nn.log_softmax(masked_logits(logits, mask), axis=-1)
  return -jnp.sum(jnp.where(mask, target_probs * log_probs, 0.0), axis=-1)


# ------------------------------------------------------------------------------------------------
# Jacobians and what is built from them.


def _num_outputs(apply_fn: ApplyFn, params: Params, x: jax.Array) -> int:
  return jax.eval_shape(apply_fn, params, x[:1]).shape[-1]


def _full_mask(apply_fn, params, x, mask) -> jax.Array:
  """The mask as bool [N, C] (all True when None), so it can be chunked along with x."""
  shape = (x.shape[0], _num_outputs(apply_fn, params, x))
  if mask is None:
    return jnp.ones(shape, bool)
  return jnp.broadcast_to(jnp.asarray(mask, bool), shape)


def _to_chunks(tree, chunk_size: int):
  """Zero-pads the leading axis N up to a multiple of the chunk and reshapes to [num_chunks, chunk, ...].

  Zero padding of the mask makes padded examples contribute exactly 0 to masked quantities.
  """
  n = jax.tree.leaves(tree)[0].shape[0]
  chunk = max(1, min(int(chunk_size), n))
  num_chunks = -(-n // chunk)
  pad = num_chunks * chunk - n

  def split(a):
    a = jnp.concatenate([a, jnp.zeros((pad,) + a.shape[1:], a.dtype)]) if pad else a
    return a.reshape((num_chunks, chunk) + a.shape[1:])

  return jax.tree.map(split, tree), n


def _from_chunks(tree, n: int):
  return jax.tree.map(lambda a: a.reshape((-1,) + a.shape[2:])[:n], tree)


def _example_jacobian(apply_fn: ApplyFn, params: Params, x: jax.Array):
  """(J [C, *param_shape] per leaf, logits [C]) for one example x (no batch axis)."""

  def logits_fn(p):
    logits = apply_fn(p, x[None])[0]
    return logits, logits

  return jax.jacrev(logits_fn, has_aux=True)(params)


def _chunk_jacobians(apply_fn, params, x_chunk):
  """(J leaves [B, C, *param_shape], logits [B, C]) for a chunk of examples."""
  return jax.vmap(lambda x: _example_jacobian(apply_fn, params, x))(x_chunk)


def jacobians(apply_fn: ApplyFn, params: Params, x: jax.Array, *, chunk_size: int = 64):
  """Per-example logit Jacobians J_i = ∂f(x_i)/∂θ (DNN2GP's features; Khan et al. 2019, Sec. 3).

  Computed as `vmap(jacrev)` over chunks of `chunk_size` examples, with `lax.map` running the chunks one
  after the other, so the transient working memory is one chunk's reverse passes. The *result* is all N
  Jacobians, N·C·P numbers: use it for memories or small batches, and prefer `diagonal_ggn` /
  `predictive_variance`, which never hold more than one chunk of Jacobians, for whole datasets. N need not
  be a multiple of `chunk_size` (the last chunk is zero-padded and the padding dropped).

  Args:
    apply_fn: `(params, x[B, ...]) -> logits[B, C]`.
    params: pytree of parameters.
    x: [N, ...] inputs.
    chunk_size: examples per vectorised chunk (static).

  Returns:
    Pytree like `params` with leaves [N, C, *param_shape].
  """
  x_chunks, n = _to_chunks(x, chunk_size)
  jac_chunks = jax.lax.map(lambda xc: _chunk_jacobians(apply_fn, params, xc)[0], x_chunks)
  return _from_chunks(jac_chunks, n)


def _flatten_per_example(tree, lead_ndim: int) -> jax.Array:
  """Concatenates leaves [*lead, *shape] to [*lead, P] in `ravel_pytree`'s order."""
  leaves = jax.tree.leaves(tree)
  lead = leaves[0].shape[:lead_ndim]
  return jnp.concatenate([leaf.reshape(lead + (-1,)) for leaf in leaves], axis=-1)


def flat_jacobians(
  apply_fn: ApplyFn, params: Params, x: jax.Array, *, chunk_size: int = 64
) -> jax.Array:
  """`jacobians` as one [N, C, P] array, with columns in the order of `ravel_pytree(params)`."""
  return _flatten_per_example(jacobians(apply_fn, params, x, chunk_size=chunk_size), 2)


def diagonal_ggn(
  apply_fn: ApplyFn,
  params: Params,
  x: jax.Array,
  mask: Optional[jax.Array] = None,
  *,
  chunk_size: int = 64,
) -> Params:
  """Diagonal of the generalised Gauss-Newton matrix, Σ_i diag(J_iᵀ Λ_i J_i), summed over examples.

  This is the data term of FROMP's / DNN2GP's diagonal Laplace precision, Σ⁻¹ = F + δ₀ (Pan, Swaroop
  et al. 2020, Sec. 3; Khan et al. 2019), with the full softmax Hessian Λ_i. Per example and parameter,

      diag(Jᵀ Λ J) = Σ_c p_c J_c² − (Σ_c p_c J_c)² = Σ_c p_c (J_c − J̄)²,   J̄ = Σ_c p_c J_c,

  and the centred (right-hand) form is what is computed, as it is non-negative by construction. Chunks of
  `chunk_size` examples are processed one at a time by `lax.scan` (lax.map with a running sum, so neither
  all Jacobians nor per-chunk partial sums are ever stored).

  Args:
    apply_fn: `(params, x[B, ...]) -> logits[B, C]`.
    params: pytree of parameters.
    x: [N, ...] inputs (typically a whole task's training set).
    mask: optional bool [C] or [N, C]; masked-out classes contribute nothing.
    chunk_size: examples per vectorised chunk (static).

  Returns:
    Pytree like `params`: the diagonal GGN (a sum, not a mean, over the N examples).
  """
  full_mask = _full_mask(apply_fn, params, x, mask)
  chunks, _ = _to_chunks((x, full_mask), chunk_size)

  def add_chunk(total, chunk):
    x_chunk, mask_chunk = chunk
    jac, logits = _chunk_jacobians(apply_fn, params, x_chunk)
    probs = masked_softmax(logits, mask_chunk)  # padded rows have an all-False mask: p = 0

    def leaf_ggn(acc, j):
      p = probs.reshape(probs.shape + (1,) * (j.ndim - 2)).astype(j.dtype)
      centred = j - jnp.sum(p * j, axis=1, keepdims=True)
      return acc + jnp.sum(p * jnp.square(centred), axis=(0, 1))

    return jax.tree.map(leaf_ggn, total, jac), None

  zeros = jax.tree.map(jnp.zeros_like, params)
  total, _ = jax.lax.scan(add_chunk, zeros, chunks)
  return total


def kernel(
  apply_fn: ApplyFn,
  params: Params,
  x: jax.Array,
  variance: Params,
  mask: Optional[jax.Array] = None,
  *,
  chunk_size: int = 64,
  outputs: str = 'logits',
) -> jax.Array:
  """Per-class DNN2GP / FROMP kernel on a memory: K_c[i, j] = J_c(x_i) diag(Σ) J_c(x_j)ᵀ.

  With Σ the prior covariance this is the DNN2GP kernel (Khan et al. 2019); with the diagonal posterior
  covariance it is FROMP's K_s, block-diagonal over classes (Pan, Swaroop et al. 2020, Sec. 3.1; FROMP
  adds jitter εI before the Cholesky). `outputs='logits'` uses logit Jacobians J_i; `outputs='probs'`
  uses the Jacobians of the masked softmax, Λ_i J_i, which is what FROMP's code differentiates (its
  m_s(w) are probabilities).

  The Gram is built one class at a time (`lax.map` over classes): class c's features are per-example
  VJPs with the cotangent e_c (logits) or Λ_i e_c (probs), an [M, P] block, so the working memory is
  M·P numbers, not the M·C·P of all Jacobians (at 500 points and 10 classes, 1.8 GB for an 89k-parameter
  MLP, per vmapped seed). The compute is the same M·C reverse passes as `flat_jacobians`.

  Args:
    apply_fn: `(params, x[B, ...]) -> logits[B, C]`.
    params: pytree of parameters.
    x: [M, ...] memory inputs.
    variance: pytree like `params`, the (non-negative) diagonal covariance Σ.
    mask: optional bool [C] or [M, C]; K_c[i, j] is 0 unless class c is allowed for both i and j.
    chunk_size: examples per vectorised chunk of the per-example VJPs (static).
    outputs: 'logits' or 'probs' (static).

  Returns:
    [C, M, M] kernel, symmetric PSD per class.
  """
  if outputs not in KERNEL_OUTPUTS:
    raise ValueError(f'outputs must be one of {list(KERNEL_OUTPUTS)}, got {outputs!r}')
  full_mask = _full_mask(apply_fn, params, x, mask)
  num_classes = full_mask.shape[1]
  if outputs == 'probs':
    _, curvatures = residuals_and_curvatures(
      apply_fn(params, x), jnp.zeros(x.shape[0], jnp.int32), full_mask
    )  # ∂σ_c/∂θ = Σ_k Λ_ck J_k: the VJP with cotangent row c of Λ_i
  else:
    curvatures = jnp.broadcast_to(jnp.eye(num_classes), (x.shape[0], num_classes, num_classes))
  # Scaling the features by sqrt(Σ) gives K = A Aᵀ: PSD by construction.
  scale = jnp.sqrt(ravel_pytree(variance)[0])

  def example_vjp(xi, cotangent):
    _, pullback = jax.vjp(lambda p: apply_fn(p, xi[None])[0], params)
    return ravel_pytree(pullback(cotangent.astype(x.dtype))[0])[0]

  def class_gram(c):
    cotangents = curvatures[:, c, :]  # [M, C]
    chunks, n = _to_chunks((x, cotangents), chunk_size)
    rows = jax.lax.map(lambda ch: jax.vmap(example_vjp)(*ch), chunks)
    features = _from_chunks(rows, n) * scale.astype(rows.dtype)  # [M, P]
    features = jnp.where(full_mask[:, c, None], features, 0.0)
    gram = features @ features.T
    return 0.5 * (gram + gram.T)

  return jax.lax.map(class_gram, jnp.arange(num_classes))


def _variances_and_logits(apply_fn, params, x, variance, mask, chunk_size):
  """(diag(J_i Σ J_iᵀ) [N, C] masked, logits [N, C]), one chunk of Jacobians at a time."""
  full_mask = _full_mask(apply_fn, params, x, mask)
  chunks, n = _to_chunks((x, full_mask), chunk_size)

  def chunk_fn(chunk):
    x_chunk, mask_chunk = chunk
    jac, logits = _chunk_jacobians(apply_fn, params, x_chunk)

    def leaf_var(j, v):
      return jnp.sum((jnp.square(j) * v).reshape(j.shape[:2] + (-1,)), axis=-1)

    per_leaf = jax.tree.map(leaf_var, jac, variance)
    variances = sum(jax.tree.leaves(per_leaf))
    return jnp.where(mask_chunk, variances, 0.0), logits

  return _from_chunks(jax.lax.map(chunk_fn, chunks), n)


def predictive_variance(
  apply_fn: ApplyFn,
  params: Params,
  x: jax.Array,
  variance: Params,
  mask: Optional[jax.Array] = None,
  *,
  chunk_size: int = 64,
) -> jax.Array:
  """Linearised predictive variance of the logits, V_ic = [J_i Σ J_iᵀ]_cc = Σ_p J_icp² Σ_p.

  The prediction-variance factor of the Memory-Perturbation Equation (Nickl et al. 2023, Sec. 3), for a
  diagonal Gaussian posterior with covariance Σ (from IVON, VOGN or a diagonal Laplace). Computed chunk
  by chunk; only one chunk of Jacobians exists at a time.

  Args:
    apply_fn: `(params, x[B, ...]) -> logits[B, C]`.
    params: pytree of parameters (the posterior mean).
    x: [N, ...] inputs.
    variance: pytree like `params`, the diagonal covariance Σ.
    mask: optional bool [C] or [N, C]; masked-out classes get exactly 0.
    chunk_size: examples per vectorised chunk (static).

  Returns:
    [N, C] variances.
  """
  return _variances_and_logits(apply_fn, params, x, variance, mask, chunk_size)[0]


def sensitivity_scores(
  apply_fn: ApplyFn,
  params: Params,
  x: jax.Array,
  labels: jax.Array,
  variance: Params,
  mask: Optional[jax.Array] = None,
  *,
  chunk_size: int = 64,
) -> jax.Array:
  """MPE sensitivity of every example: Σ_c |r_ic| · V_ic (prediction error × prediction variance).

  The Memory-Perturbation Equation (Nickl et al. 2023) predicts the leave-one-out logits of example i as
  f_i + V_i ⊙ r_i to first order (diagonal V_i = diag(J_i Σ J_iᵀ), r_i the residual). We reduce the
  per-class shift V_i ⊙ r_i to a scalar by its L1 norm, Σ_c V_ic |r_ic|: the total logit movement caused by
  removing i. (The paper reports per-class or summed quantities; the reduction is our choice.) Masked-out
  classes contribute 0.

  Args:
    apply_fn: `(params, x[B, ...]) -> logits[B, C]`.
    params: pytree of parameters (the posterior mean).
    x: [N, ...] inputs.
    labels: [N] int class ids.
    variance: pytree like `params`, the diagonal covariance Σ.
    mask: optional bool [C] or [N, C].
    chunk_size: examples per vectorised chunk (static).

  Returns:
    [N] non-negative scores; larger means more influential.
  """
  variances, logits = _variances_and_logits(apply_fn, params, x, variance, mask, chunk_size)
  residuals, _ = residuals_and_curvatures(logits, labels, mask)
  return jnp.sum(jnp.abs(residuals) * variances, axis=-1)


# ------------------------------------------------------------------------------------------------
# Memory selection.


def select_memory(
  key: jax.Array,
  scores: jax.Array,
  labels: jax.Array,
  *,
  num_classes: int,
  num_per_class: int,
  rule: str = 'lambda_descend',
  eligible: Optional[jax.Array] = None,
) -> tuple[jax.Array, jax.Array]:
  """Class-balanced memory selection: for each class, the `num_per_class` best examples under `rule`.

  Rules (FROMP's `select_memorable_points` and its ablations, Pan, Swaroop et al. 2020, Sec. 3.2; MPE for
  'sensitivity'):
    'lambda_descend': highest score first (scores = `lambda_scores`, the "memorable past");
    'sensitivity': highest score first (scores = `sensitivity_scores`);
    'lambda_ascend': lowest score first (ablation);
    'random': uniformly random within the class (scores ignored; uses `key`).
  Ties are broken by lower index. Shapes are static, so it jits with `num_classes`, `num_per_class` and
  `rule` static.

  Args:
    key: PRNG key (used only by 'random').
    scores: [N] finite scores.
    labels: [N] int class ids in [0, num_classes).
    num_classes: number of class slots (static).
    num_per_class: examples per class (static).
    rule: one of `MEMORY_RULES` (static).
    eligible: optional bool [N]; examples with False are never selected (e.g. padding).

  Returns:
    indices: [num_classes, num_per_class] int32 into the N examples, best first within each class;
      invalid slots hold 0.
    valid: [num_classes, num_per_class] bool; False for the slots a class cannot fill (absent classes, or
      fewer than `num_per_class` eligible examples).
  """
  if rule not in MEMORY_RULES:
    raise ValueError(f'rule must be one of {list(MEMORY_RULES)}, got {rule!r}')
  n = scores.shape[0]
  if rule == 'random':
    priority = jax.random.uniform(key, (n,))
  elif rule == 'lambda_ascend':
    priority = -scores
  else:
    priority = scores
  if eligible is None:
    eligible = jnp.ones((n,), bool)
  take = min(num_per_class, n)

  def per_class(c):
    in_class = (labels == c) & eligible
    # lexsort's last key is the primary one: class members first, then by descending priority.
    order = jnp.lexsort((-priority, ~in_class))[:take]
    order = jnp.pad(order, (0, num_per_class - take))
    valid = jnp.arange(num_per_class) < jnp.sum(in_class)
    return jnp.where(valid, order, 0).astype(jnp.int32), valid

  return jax.vmap(per_class)(jnp.arange(num_classes))
