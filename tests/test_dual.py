"""Exact identities for the dual quantities in `cl.dual`: Jacobians, GGN, kernels, sites, memory, K-priors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from cl import dual, models

NUM_IN, NUM_HIDDEN, NUM_OUT = 3, 5, 4


def tiny_mlp_params(key):
  k1, k2, k3, k4 = jax.random.split(key, 4)
  return {
    'hidden': {
      'w': jax.random.normal(k1, (NUM_IN, NUM_HIDDEN)),
      'b': 0.1 * jax.random.normal(k2, (NUM_HIDDEN,)),
    },
    'head': {
      'w': jax.random.normal(k3, (NUM_HIDDEN, NUM_OUT)),
      'b': 0.1 * jax.random.normal(k4, (NUM_OUT,)),
    },
  }


def tiny_mlp_apply(params, x):
  h = jnp.tanh(x @ params['hidden']['w'] + params['hidden']['b'])
  return h @ params['head']['w'] + params['head']['b']


def real_mlp():
  model = models.make_model('mlp', (NUM_IN,), NUM_OUT, hidden_sizes=(NUM_HIDDEN,))
  return model.apply, model.init(jax.random.key(7))


def brute_jacobian(apply_fn, params, x):
  """[N, C, P] by forward-mode differentiation of the whole output vector, no vmap, no chunks."""
  flat, unravel = ravel_pytree(params)
  return np.asarray(jax.jacfwd(lambda theta: apply_fn(unravel(theta), x))(flat))


def np_masked_softmax(logits, mask):
  logits = np.asarray(logits, np.float64)
  mask = np.broadcast_to(np.asarray(mask, bool), logits.shape)
  probs = np.zeros_like(logits)
  for i in range(logits.shape[0]):
    z = logits[i, mask[i]]
    e = np.exp(z - z.max())
    probs[i, mask[i]] = e / e.sum()
  return probs


def np_curvatures(probs):
  return np.stack([np.diag(p) - np.outer(p, p) for p in probs])


def data(n=7, seed=0):
  rng = np.random.default_rng(seed)
  x = jnp.asarray(rng.normal(size=(n, NUM_IN)), jnp.float32)
  y = jnp.asarray(rng.integers(0, NUM_OUT, size=n), jnp.int32)
  mask = rng.random((n, NUM_OUT)) < 0.6
  mask[np.arange(n), np.asarray(y)] = True  # labels are always allowed
  mask[:, 0] = True  # every row has at least two classes
  return x, y, jnp.asarray(mask)


@pytest.fixture(params=['handwritten', 'make_model'])
def net(request):
  if request.param == 'handwritten':
    return tiny_mlp_apply, tiny_mlp_params(jax.random.key(0))
  return real_mlp()


# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize('chunk_size', [1, 3, 7, 64])
def test_jacobians_match_brute_force(net, chunk_size):
  apply_fn, params = net
  x, _, _ = data(n=7)
  expected = brute_jacobian(apply_fn, params, x)
  flat = dual.flat_jacobians(apply_fn, params, x, chunk_size=chunk_size)
  assert flat.shape == expected.shape
  np.testing.assert_allclose(flat, expected, rtol=1e-5, atol=1e-6)
  tree = dual.jacobians(apply_fn, params, x, chunk_size=chunk_size)
  for leaf, p in zip(jax.tree.leaves(tree), jax.tree.leaves(params)):
    assert leaf.shape == (7, NUM_OUT) + p.shape


@pytest.mark.parametrize('mask_kind', ['none', 'shared', 'per_example'])
def test_diagonal_ggn_matches_brute_force(net, mask_kind):
  apply_fn, params = net
  x, _, per_example_mask = data(n=7)
  mask = {
    'none': None,
    'shared': jnp.array([True, False, True, True]),
    'per_example': per_example_mask,
  }[mask_kind]
  jac = brute_jacobian(apply_fn, params, x).astype(np.float64)
  probs = np_masked_softmax(apply_fn(params, x), np.ones(NUM_OUT, bool) if mask is None else mask)
  expected = np.einsum('icp,icd,idp->p', jac, np_curvatures(probs), jac)
  ggn = dual.diagonal_ggn(apply_fn, params, x, mask, chunk_size=3)
  assert jax.tree.structure(ggn) == jax.tree.structure(params)
  np.testing.assert_allclose(ravel_pytree(ggn)[0], expected, rtol=1e-4, atol=1e-6)
  assert np.all(ravel_pytree(ggn)[0] >= 0)


def test_masked_classes_contribute_nothing_to_ggn():
  params = tiny_mlp_params(jax.random.key(0))
  x, _, _ = data(n=7)
  mask = jnp.array([True, False, True, False])

  def apply_perturbed(p, xb):
    # Masked-out logits now depend strongly on the parameters; the GGN must not see it.
    extra = jnp.sum(p['hidden']['w'] ** 3) * jnp.sum(xb, axis=1, keepdims=True)
    return tiny_mlp_apply(p, xb) + jnp.where(mask, 0.0, 10.0 * extra)

  a = dual.diagonal_ggn(tiny_mlp_apply, params, x, mask, chunk_size=4)
  b = dual.diagonal_ggn(apply_perturbed, params, x, mask, chunk_size=4)
  for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(u, v, rtol=1e-6, atol=1e-7)


def test_diagonal_ggn_jits_and_vmaps_over_seeds():
  x, _, mask = data(n=5)
  seeds = jax.vmap(tiny_mlp_params)(jax.random.split(jax.random.key(3), 2))
  fn = jax.jit(jax.vmap(lambda p: dual.diagonal_ggn(tiny_mlp_apply, p, x, mask, chunk_size=2)))
  batched = fn(seeds)
  for s in range(2):
    single = dual.diagonal_ggn(tiny_mlp_apply, jax.tree.map(lambda a: a[s], seeds), x, mask)
    for u, v in zip(jax.tree.leaves(batched), jax.tree.leaves(single)):
      np.testing.assert_allclose(u[s], v, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('use_mask', [False, True])
def test_kernel_matches_brute_force_and_is_psd(net, use_mask):
  apply_fn, params = net
  x, _, per_example_mask = data(n=6)
  mask = per_example_mask if use_mask else None
  flat_params, unravel = ravel_pytree(params)
  variance_flat = np.abs(np.random.default_rng(1).normal(size=flat_params.shape)) + 0.1
  variance = unravel(jnp.asarray(variance_flat, jnp.float32))
  jac = brute_jacobian(apply_fn, params, x).astype(np.float64)
  expected = np.einsum('icp,p,jcp->cij', jac, variance_flat, jac)
  if use_mask:
    m = np.asarray(mask, np.float64)
    expected *= np.einsum('ic,jc->cij', m, m)
  k = np.asarray(dual.kernel(apply_fn, params, x, variance, mask, chunk_size=4))
  assert k.shape == (NUM_OUT, 6, 6)
  np.testing.assert_allclose(k, expected, rtol=1e-4, atol=1e-5)
  np.testing.assert_array_equal(k, np.swapaxes(k, 1, 2))
  for c in range(NUM_OUT):
    assert np.linalg.eigvalsh(k[c].astype(np.float64)).min() > -1e-4 * max(1.0, np.abs(k[c]).max())
  if use_mask:
    masked_rows = ~np.asarray(mask).T  # [C, M]
    assert np.all(k[masked_rows] == 0)


def test_probability_kernel_uses_softmax_jacobians():
  params = tiny_mlp_params(jax.random.key(2))
  x, _, mask = data(n=5)
  flat_params, unravel = ravel_pytree(params)
  variance_flat = np.linspace(0.1, 1.0, flat_params.size)
  variance = unravel(jnp.asarray(variance_flat, jnp.float32))
  probs_fn = lambda p, xb: dual.masked_softmax(tiny_mlp_apply(p, xb), mask)
  jac = brute_jacobian(probs_fn, params, x).astype(np.float64)
  expected = np.einsum('icp,p,jcp->cij', jac, variance_flat, jac)
  k = dual.kernel(tiny_mlp_apply, params, x, variance, mask, outputs='probs')
  np.testing.assert_allclose(k, expected, rtol=1e-4, atol=1e-6)


def test_residuals_and_curvatures_identities():
  x, y, mask = data(n=9)
  logits = tiny_mlp_apply(tiny_mlp_params(jax.random.key(1)), x)
  for m in (None, mask):
    r, lam = dual.residuals_and_curvatures(logits, y, m)
    r, lam = np.asarray(r), np.asarray(lam)
    probs = np_masked_softmax(logits, np.ones(NUM_OUT, bool) if m is None else m)
    np.testing.assert_allclose(r, probs - np.eye(NUM_OUT)[np.asarray(y)], atol=1e-6)
    np.testing.assert_allclose(lam, np_curvatures(probs), atol=1e-6)
    np.testing.assert_allclose(lam.sum(-1), 0.0, atol=1e-6)
    np.testing.assert_allclose(r.sum(-1), 0.0, atol=1e-6)
    np.testing.assert_array_equal(lam, np.swapaxes(lam, 1, 2))
    assert np.linalg.eigvalsh(lam.astype(np.float64)).min() > -1e-6
    np.testing.assert_allclose(
      dual.lambda_scores(logits, m), np.trace(lam, axis1=1, axis2=2), rtol=1e-5, atol=1e-7
    )
  off = ~np.asarray(mask)
  assert np.all(r[off] == 0)
  assert np.all(lam[off] == 0)
  assert np.all(np.swapaxes(lam, 1, 2)[off] == 0)


def test_soft_label_cross_entropy_value_and_logit_gradient():
  x, y, mask = data(n=6)
  logits = tiny_mlp_apply(tiny_mlp_params(jax.random.key(4)), x)
  targets = dual.masked_softmax(2.0 * jax.random.normal(jax.random.key(5), logits.shape), mask)
  grad = jax.grad(lambda f: dual.soft_label_cross_entropy(f, targets, mask).sum())(logits)
  np.testing.assert_allclose(grad, dual.masked_softmax(logits, mask) - targets, atol=1e-6)
  # With one-hot targets it is the ordinary (masked) cross-entropy.
  onehot = jax.nn.one_hot(y, NUM_OUT)
  log_probs = np.log(np_masked_softmax(logits, mask)[np.arange(6), np.asarray(y)])
  np.testing.assert_allclose(
    dual.soft_label_cross_entropy(logits, onehot, mask), -log_probs, rtol=1e-5
  )


def test_predictive_variance_and_sensitivity_match_brute_force(net):
  apply_fn, params = net
  x, y, mask = data(n=7)
  flat_params, unravel = ravel_pytree(params)
  variance_flat = np.abs(np.random.default_rng(2).normal(size=flat_params.shape))
  variance = unravel(jnp.asarray(variance_flat, jnp.float32))
  jac = brute_jacobian(apply_fn, params, x).astype(np.float64)
  expected_var = np.einsum('icp,p->ic', jac**2, variance_flat) * np.asarray(mask)
  v = dual.predictive_variance(apply_fn, params, x, variance, mask, chunk_size=3)
  np.testing.assert_allclose(v, expected_var, rtol=1e-4, atol=1e-6)
  assert np.all(np.asarray(v)[~np.asarray(mask)] == 0)
  probs = np_masked_softmax(apply_fn(params, x), mask)
  residuals = probs - np.eye(NUM_OUT)[np.asarray(y)]
  expected = np.sum(np.abs(residuals) * expected_var, axis=-1)
  s = dual.sensitivity_scores(apply_fn, params, x, y, variance, mask, chunk_size=3)
  np.testing.assert_allclose(s, expected, rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------------------------------------


def selection_data():
  rng = np.random.default_rng(0)
  labels = np.concatenate([np.full(10, 0), np.full(8, 1), np.full(2, 3), np.full(9, 2)])
  rng.shuffle(labels)  # class 3 has 2 examples, class 4 none
  scores = rng.random(labels.size).astype(np.float32)
  return jnp.asarray(scores), jnp.asarray(labels, jnp.int32)


select = jax.jit(dual.select_memory, static_argnames=('num_classes', 'num_per_class', 'rule'))


@pytest.mark.parametrize('rule', ['lambda_descend', 'sensitivity', 'lambda_ascend'])
def test_select_memory_takes_exact_top_k_per_class(rule):
  scores, labels = selection_data()
  idx, valid = select(jax.random.key(0), scores, labels, num_classes=5, num_per_class=4, rule=rule)
  assert idx.shape == (5, 4) and idx.dtype == jnp.int32 and valid.shape == (5, 4)
  s, lab = np.asarray(scores), np.asarray(labels)
  sign = 1.0 if rule == 'lambda_ascend' else -1.0
  for c in range(5):
    members = np.flatnonzero(lab == c)
    expected = members[np.argsort(sign * s[members], kind='stable')][:4]
    k = len(expected)
    np.testing.assert_array_equal(valid[c], np.arange(4) < k)
    np.testing.assert_array_equal(idx[c, :k], expected)
  assert np.asarray(valid).sum(1).tolist() == [4, 4, 4, 2, 0]


def test_select_memory_random_is_class_balanced_and_key_dependent():
  scores, labels = selection_data()
  lab = np.asarray(labels)
  picks = []
  for seed in range(3):
    idx, valid = select(
      jax.random.key(seed), scores, labels, num_classes=5, num_per_class=4, rule='random'
    )
    idx, valid = np.asarray(idx), np.asarray(valid)
    for c in range(5):
      chosen = idx[c][valid[c]]
      assert np.all(lab[chosen] == c) and len(set(chosen.tolist())) == len(chosen)
    picks.append(idx)
  assert not np.array_equal(picks[0], picks[1]) or not np.array_equal(picks[0], picks[2])


def test_select_memory_respects_eligibility_and_traces_once():
  scores, labels = selection_data()
  traces = []

  @jax.jit
  def fn(scores, eligible):
    traces.append(None)
    return dual.select_memory(
      jax.random.key(0), scores, labels, num_classes=5, num_per_class=3, eligible=eligible
    )

  eligible = jnp.asarray(np.arange(labels.size) % 2 == 0)
  idx, valid = fn(scores, eligible)
  chosen = np.asarray(idx)[np.asarray(valid)]
  assert np.all(np.asarray(eligible)[chosen])
  fn(scores[::-1], eligible)
  assert len(traces) == 1


def test_select_memory_rejects_unknown_rule():
  scores, labels = selection_data()
  with pytest.raises(ValueError):
    dual.select_memory(
      jax.random.key(0), scores, labels, num_classes=5, num_per_class=2, rule='top'
    )


# ------------------------------------------------------------------------------------------------


def test_kprior_gradient_reconstruction_is_exact_for_multinomial_logistic_regression():
  """Khan & Swaroop (2021): with the full old data, ∇K(θ) = ∇[Σ_i CE(y_i, f_i(θ)) + δ/2‖θ‖²] for a GLM."""
  rng = np.random.default_rng(0)
  n, d, c, delta = 40, 3, 4, 0.5
  x = rng.normal(size=(n, d))
  y = rng.integers(0, c, size=n)
  xa = np.concatenate([x, np.ones((n, 1))], axis=1)  # θ = [W; b], shape [d + 1, c]
  onehot = np.eye(c)[y]

  def softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)

  theta = np.zeros((d + 1, c))
  for _ in range(50):  # Newton on the strictly convex old objective
    probs = softmax(xa @ theta)
    grad = xa.T @ (probs - onehot) + delta * theta
    hess = np.einsum('id,ie,ick->dcek', xa, xa, np_curvatures(probs)).reshape((d + 1) * c, -1)
    theta -= np.linalg.solve(hess + delta * np.eye((d + 1) * c), grad.ravel()).reshape(d + 1, c)
  assert np.abs(xa.T @ (softmax(xa @ theta) - onehot) + delta * theta).max() < 1e-12

  def apply(params, inputs):
    return inputs @ params['w'] + params['b']

  def split(t):
    return {'w': jnp.asarray(t[:d]), 'b': jnp.asarray(t[d])}

  with jax.enable_x64(True):
    xj, yj = jnp.asarray(x), jnp.asarray(y)

    def old_objective(params):
      ce = -jnp.take_along_axis(jax.nn.log_softmax(apply(params, xj)), yj[:, None], 1).sum()
      return ce + 0.5 * delta * sum(jnp.sum(p**2) for p in jax.tree.leaves(params))

    def kprior(params, params_old):
      soft_labels = jax.nn.softmax(apply(params_old, xj))
      fn_term = dual.soft_label_cross_entropy(apply(params, xj), soft_labels).sum()
      weight_term = sum(
        jnp.sum((p - q) ** 2) for p, q in zip(jax.tree.leaves(params), jax.tree.leaves(params_old))
      )
      return fn_term + 0.5 * delta * weight_term

    def max_gradient_gap(params, params_old):
      g_old = ravel_pytree(jax.grad(old_objective)(params))[0]
      g_k = ravel_pytree(jax.grad(kprior)(params, params_old))[0]
      assert g_k.dtype == jnp.float64
      return float(jnp.max(jnp.abs(g_old - g_k)))

    params_old = split(theta)
    not_optimal = split(theta + 0.3 * rng.normal(size=theta.shape))
    for _ in range(4):
      params = split(theta + rng.normal(size=theta.shape))
      assert max_gradient_gap(params, params_old) < 1e-6
      assert max_gradient_gap(params, not_optimal) > 1e-3
  assert jnp.ones(1).dtype == jnp.float32  # x64 did not leak into other tests


def _temp_bytes(fn, *args):
  return jax.jit(fn).lower(*args).compile().memory_analysis().temp_size_in_bytes


def test_kernel_never_holds_all_the_jacobians():
  """The kernel is built one class at a time: its working memory is well under the M·C·P Jacobians
  (at 500 points and 10 classes those are 1.8 GB per seed for Permuted FMNIST's MLP). The mirror: the
  Gram of all Jacobians at once holds at least them."""
  m, d, h, c = 256, 64, 128, 10
  keys = jax.random.split(jax.random.key(0), 3)
  params = {
    'w1': jax.random.normal(keys[0], (d, h)) / 8,
    'w2': jax.random.normal(keys[1], (h, c)) / 8,
  }
  apply_fn = lambda p, x: jnp.tanh(x @ p['w1']) @ p['w2']
  variance = jax.tree.map(jnp.ones_like, params)
  x = jax.random.normal(keys[2], (m, d))
  all_jacobians = 4 * m * c * (d * h + h * c)

  def all_at_once(p, v, x):
    features = dual.flat_jacobians(apply_fn, p, x) * jnp.sqrt(ravel_pytree(v)[0])
    return jnp.einsum('icp,jcp->cij', features, features)

  kernel = lambda p, v, x: dual.kernel(apply_fn, p, x, v)
  assert _temp_bytes(kernel, params, variance, x) < 0.3 * all_jacobians
  assert _temp_bytes(all_at_once, params, variance, x) >= all_jacobians
  np.testing.assert_allclose(
    kernel(params, variance, x), all_at_once(params, variance, x), rtol=1e-4, atol=1e-4
  )
