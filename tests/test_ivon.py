"""Tests for cl/ivon.py: closed-form posteriors, hand-computed steps, positivity, sampling, VCL priors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cl import ivon as ivon_lib

# ---------------------------------------------------------------------------------------------------------
# Shared problems.


def _linear_regression_problem(seed=0, n=200, noise_std=0.5, prior_prec=2.0):
  """Correlated features, so the exact posterior mean differs from any per-coordinate fit."""
  rng = np.random.default_rng(seed)
  mixing = np.array(
    [[1.0, 0.3, 0.0, 0.0], [0.0, 1.0, 0.2, 0.0], [0.0, 0.0, 1.5, 0.4], [0.0, 0.0, 0.0, 0.7]]
  )
  x = rng.normal(size=(n, 4)) @ mixing
  y = x @ rng.normal(size=4) + noise_std * rng.normal(size=n)
  precision = x.T @ x / noise_std**2 + prior_prec * np.eye(4)
  posterior_mean = np.linalg.solve(precision, x.T @ y / noise_std**2)
  return x, y, noise_std, prior_prec, precision, posterior_mean


def _train(opt, curvature, params, key, steps):
  """A whole run as a function of a key: lax.scan over `steps` updates.

  `curvature(params, state, key)` returns (grads, hess_estimate).
  """

  def step(carry, step_key):
    params, state = carry
    grads, hess = curvature(params, state, step_key)
    updates, state = opt.update(grads, state, params, hess_estimate=hess)
    return (optax.apply_updates(params, updates), state), None

  (params, state), _ = jax.lax.scan(step, (params, opt.init(params)), jax.random.split(key, steps))
  return params, state


def _linreg_ivon_run(problem, steps=6000, mc_samples=8):
  x, y, noise_std, prior_prec, _, _ = problem
  n = x.shape[0]
  xj, yj = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)

  def loss_fn(theta):
    return jnp.mean(0.5 * jnp.square(yj - xj @ theta['w'])) / noise_std**2

  def curvature(params, state, key):
    _, grads, hess = ivon_lib.value_and_grad_and_hess(loss_fn, key, params, state, mc_samples)
    return grads, hess

  schedule = optax.cosine_decay_schedule(0.1, steps, alpha=0.01)
  opt = ivon_lib.ivon(schedule, ess=n, beta2=0.999, weight_decay=prior_prec / n)

  def run(key):
    return _train(opt, curvature, {'w': jnp.zeros(4)}, key, steps)

  return run


# ---------------------------------------------------------------------------------------------------------
# 1. Bayesian linear regression: the mean-field VI optimum is known in closed form.


def test_ivon_linear_regression_converges_to_mean_field_posterior():
  problem = _linear_regression_problem()
  x, _, noise_std, prior_prec, precision, posterior_mean = problem
  params, state = jax.jit(_linreg_ivon_run(problem))(jax.random.key(0))

  # Mean = exact posterior mean (XᵀX/s² + δ₀I)⁻¹Xᵀy/s²; error measured in posterior standard deviations.
  posterior_std = np.sqrt(np.diag(np.linalg.inv(precision)))
  np.testing.assert_array_less(
    np.abs(np.asarray(params['w']) - posterior_mean), 0.05 * posterior_std
  )
  # Precision λ(h + δ) = diag(XᵀX)/s² + δ₀, the mean-field optimum for a quadratic loss.
  mean_field_prec = np.diag(x.T @ x) / noise_std**2 + prior_prec
  learned_prec = np.asarray(state.ess * (state.hess['w'] + state.prior_prec['w']))
  np.testing.assert_allclose(learned_prec, mean_field_prec, rtol=0.04)
  np.testing.assert_allclose(
    np.asarray(ivon_lib.posterior_std(state)['w']), 1 / np.sqrt(mean_field_prec), rtol=0.025
  )


def test_vogn_linear_regression_converges_to_mean_field_posterior():
  x, y, noise_std, prior_prec, precision, posterior_mean = _linear_regression_problem(seed=1)
  n = x.shape[0]
  xj, yj = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)

  def loss_fn(theta):
    return jnp.mean(0.5 * jnp.square(yj - xj @ theta['w'])) / noise_std**2

  def curvature(params, state, key):
    _, grads, _ = ivon_lib.value_and_grad_and_hess(loss_fn, key, params, state, mc_samples=8)
    # Per-example GGN x_i²/s² as the squared gradient of Λ^{1/2} f_i = x_iᵀθ/s.
    hess = ivon_lib.per_example_sq_grad_mean(lambda p, xi: xi @ p['w'] / noise_std, params, xj)
    return grads, hess

  steps = 6000
  opt = ivon_lib.vogn(
    optax.cosine_decay_schedule(0.1, steps, alpha=0.01),
    ess=n,
    beta2=0.999,
    weight_decay=prior_prec / n,
  )
  params, state = jax.jit(lambda key: _train(opt, curvature, {'w': jnp.zeros(4)}, key, steps))(
    jax.random.key(1)
  )

  np.testing.assert_allclose(
    np.asarray(state.hess['w']), np.mean(x**2, 0) / noise_std**2, rtol=0.01
  )
  mean_field_prec = np.diag(x.T @ x) / noise_std**2 + prior_prec
  np.testing.assert_allclose(
    np.asarray(state.ess * (state.hess['w'] + state.prior_prec['w'])), mean_field_prec, rtol=0.01
  )
  posterior_std = np.sqrt(np.diag(np.linalg.inv(precision)))
  np.testing.assert_array_less(
    np.abs(np.asarray(params['w']) - posterior_mean), 0.05 * posterior_std
  )


# ---------------------------------------------------------------------------------------------------------
# 2. Logistic regression: with a large ess the posterior is nearly a point mass at the MAP.


def _newton_map(x, y, prior_prec, iterations=50):
  """Float64 Newton on Σ_i [softplus(x_iᵀθ) − y_i x_iᵀθ] + (δ₀/2)‖θ‖²."""
  theta = np.zeros(x.shape[1])
  for _ in range(iterations):
    p = 1 / (1 + np.exp(-x @ theta))
    grad = x.T @ (p - y) + prior_prec * theta
    hess = (x * (p * (1 - p))[:, None]).T @ x + prior_prec * np.eye(x.shape[1])
    theta = theta - np.linalg.solve(hess, grad)
  return theta


def test_ivon_logistic_regression_mean_matches_newton_map():
  rng = np.random.default_rng(2)
  n, d, prior_prec = 200, 3, 1.0
  x = rng.normal(size=(n, d))
  y = (rng.uniform(size=n) < 1 / (1 + np.exp(-x @ np.array([1.5, -1.0, 0.5])))).astype(np.float64)
  theta_map = _newton_map(x, y, prior_prec)
  xj, yj = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)

  def loss_fn(theta):
    z = xj @ theta['w']
    return jnp.mean(jax.nn.softplus(z) - yj * z)

  def curvature(params, state, key):
    _, grads, hess = ivon_lib.value_and_grad_and_hess(loss_fn, key, params, state, mc_samples=4)
    return grads, hess

  steps = 4000
  ess = 1e4 * n  # σ ≈ 1e-3: E_q[∇ℓ̄] equals ∇ℓ̄(m) to O(σ²)
  opt = ivon_lib.ivon(
    optax.cosine_decay_schedule(0.1, steps, alpha=0.01),
    ess=ess,
    beta2=0.999,
    weight_decay=prior_prec / n,
  )
  params, _ = jax.jit(lambda key: _train(opt, curvature, {'w': jnp.zeros(d)}, key, steps))(
    jax.random.key(2)
  )
  np.testing.assert_allclose(np.asarray(params['w']), theta_map, rtol=5e-4, atol=5e-4)


# ---------------------------------------------------------------------------------------------------------
# 3. Positivity of the Riemannian-corrected curvature.


def _hess_trajectory(opt, params, hess_estimates):
  def step(state, hess):
    zeros = jax.tree.map(jnp.zeros_like, params)
    _, state = opt.update(zeros, state, params, hess_estimate=hess)
    return state, state.hess

  return jax.lax.scan(step, opt.init(params), hess_estimates)


def test_ivon_hess_stays_positive_under_adversarial_estimates():
  beta2, hess_init, weight_decay, steps = 0.999, 1.0, 1e-4, 500
  params = {'a': jnp.zeros(3), 'b': {'c': jnp.zeros((2, 2))}}
  opt = ivon_lib.ivon(0.1, ess=10.0, beta2=beta2, hess_init=hess_init, weight_decay=weight_decay)
  adversarial = jax.tree.map(lambda p: jnp.full((steps,) + p.shape, -1e6), params)
  _, hess = jax.jit(lambda h: _hess_trajectory(opt, params, h))(adversarial)
  for leaf in jax.tree.leaves(hess):
    assert np.all(np.isfinite(leaf)) and np.all(leaf > 0)

  # Without the correction the plain EMA goes negative at once: the test can fail.
  plain = hess_init
  for _ in range(steps):
    plain = beta2 * plain + (1 - beta2) * -1e6
  assert plain < -1e5


@pytest.mark.parametrize('beta2', [0.999, 0.9, 0.5])
@pytest.mark.parametrize('weight_decay', [0.0, 1.0])
def test_ivon_precision_stays_positive_under_random_adversarial_estimates(beta2, weight_decay):
  # s = h + δ obeys s' ≥ s/2 > 0 for any ĥ; with δ = 0 that is h > 0 itself.
  steps, size = 1000, 256
  params = {'w': jnp.zeros(size)}
  opt = ivon_lib.ivon(0.1, ess=10.0, beta2=beta2, weight_decay=weight_decay)
  choices = jnp.array([-1e6, 1e6, -1e3, 0.0, -1e-3])
  estimates = {'w': jax.random.choice(jax.random.key(3), choices, (steps, size))}
  _, hess = jax.jit(lambda h: _hess_trajectory(opt, params, h))(estimates)
  hess = np.asarray(hess['w'])
  assert np.all(np.isfinite(hess))
  assert np.all(hess + weight_decay > 0)
  if weight_decay == 0.0:
    assert np.all(hess > 0)


# ---------------------------------------------------------------------------------------------------------
# 4. One step, by hand.


def test_ivon_one_step_matches_hand_computation():
  beta1, beta2, lr, hess_init, clip_radius, ess = 0.8, 0.9, 0.5, 0.7, 0.3, 50.0
  m = {'a': np.array([0.3, -1.2, 2.0], np.float32), 'b': np.array([[0.5]], np.float32)}
  g = {'a': np.array([0.4, -0.1, 3.0], np.float32), 'b': np.array([[-2.0]], np.float32)}
  h_hat = {'a': np.array([-3.0, 0.2, 5.0], np.float32), 'b': np.array([[-0.5]], np.float32)}
  gbar = {'a': np.array([0.1, 0.2, -0.3], np.float32), 'b': np.array([[0.05]], np.float32)}
  h = {'a': np.array([0.9, 0.4, 2.0], np.float32), 'b': np.array([[1.5]], np.float32)}
  mu0 = {'a': np.array([0.1, 0.0, -0.5], np.float32), 'b': np.array([[1.0]], np.float32)}
  delta = {'a': np.array([0.01, 0.3, 0.05], np.float32), 'b': np.array([[0.2]], np.float32)}
  count = 3
  state = ivon_lib.IVONState(
    count=jnp.asarray(count, jnp.int32),
    momentum=gbar,
    hess=h,
    prior_mean=mu0,
    prior_prec=delta,
    ess=jnp.asarray(ess, jnp.float32),
  )
  schedule = lambda c: lr / (1.0 + c)  # evaluated at the count before the step
  weight_decay = (
    0.02  # the hyper-parameter δ that rescales the step; the state's δ is per parameter
  )
  opt = ivon_lib.ivon(
    schedule,
    ess=ess,
    beta1=beta1,
    beta2=beta2,
    hess_init=hess_init,
    clip_radius=clip_radius,
    weight_decay=weight_decay,
  )
  updates, new_state = jax.jit(opt.update)(g, state, m, hess_estimate=h_hat)

  t = count + 1
  alpha = lr / (1.0 + count)
  clipped = []
  for k in m:
    gbar_new = beta1 * gbar[k] + (1 - beta1) * g[k]
    h_new = (
      beta2 * h[k]
      + (1 - beta2) * h_hat[k]
      + 0.5 * (1 - beta2) ** 2 * (h[k] - h_hat[k]) ** 2 / (h[k] + delta[k])
    )
    direction = (gbar_new / (1 - beta1**t) + delta[k] * (m[k] - mu0[k])) / (h_new + delta[k])
    expected = -alpha * (hess_init + weight_decay) * np.clip(direction, -clip_radius, clip_radius)
    np.testing.assert_allclose(np.asarray(new_state.momentum[k]), gbar_new, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(new_state.hess[k]), h_new, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(updates[k]), expected, rtol=1e-6)
    clipped.extend(np.abs(direction).ravel() > clip_radius)
  assert any(clipped) and not all(clipped)  # both branches of the clip are exercised
  assert int(new_state.count) == t
  np.testing.assert_equal(np.asarray(new_state.prior_mean['a']), mu0['a'])

  # Without rescaling, debiasing and the clip, and VOGN's plain EMA.
  plain = ivon_lib.ivon(lr, ess=ess, beta1=beta1, beta2=beta2, rescale_lr=False, debias=False)
  updates, _ = plain.update(g, state, m, hess_estimate=h_hat)
  vogn = ivon_lib.vogn(lr, ess=ess, beta1=beta1, beta2=beta2, debias=False)
  vogn_updates, vogn_state = vogn.update(g, state, m, hess_estimate=h_hat)
  for k in m:
    gbar_new = beta1 * gbar[k] + (1 - beta1) * g[k]
    h_new = (
      beta2 * h[k]
      + (1 - beta2) * h_hat[k]
      + 0.5 * (1 - beta2) ** 2 * (h[k] - h_hat[k]) ** 2 / (h[k] + delta[k])
    )
    expected = -lr * (gbar_new + delta[k] * (m[k] - mu0[k])) / (h_new + delta[k])
    np.testing.assert_allclose(np.asarray(updates[k]), expected, rtol=1e-6)
    h_ema = beta2 * h[k] + (1 - beta2) * h_hat[k]
    np.testing.assert_allclose(np.asarray(vogn_state.hess[k]), h_ema, rtol=1e-6)
    np.testing.assert_allclose(
      np.asarray(vogn_updates[k]),
      -lr * (gbar_new + delta[k] * (m[k] - mu0[k])) / (h_ema + delta[k]),
      rtol=1e-6,
    )


def test_init_defaults_and_official_rule_with_scalar_weight_decay():
  params = {'w': jnp.ones((2, 3)), 'b': jnp.ones(3)}
  opt = ivon_lib.ivon(0.1, ess=7, hess_init=0.5, weight_decay=1e-3)
  state = opt.init(params)
  assert state.count.dtype == jnp.int32 and int(state.count) == 0
  assert state.ess.dtype == jnp.float32 and float(state.ess) == 7.0
  np.testing.assert_equal(np.asarray(state.hess['w']), 0.5)
  np.testing.assert_equal(np.asarray(state.prior_mean['w']), 0.0)
  np.testing.assert_allclose(np.asarray(state.prior_prec['b']), 1e-3)
  # First step from init: the official rule with δ m (μ₀ = 0), debias 1 − β₁ = 0.1.
  g = {'w': jnp.full((2, 3), 0.2), 'b': jnp.full(3, -0.4)}
  h_hat = {'w': jnp.full((2, 3), 0.3), 'b': jnp.full(3, 0.1)}
  updates, _ = opt.update(g, state, params, hess_estimate=h_hat)
  for k, gk, hk in (('w', 0.2, 0.3), ('b', -0.4, 0.1)):
    h_new = 0.99999 * 0.5 + 1e-5 * hk + 0.5 * 1e-10 * (0.5 - hk) ** 2 / (0.5 + 1e-3)
    expected = -0.1 * (0.5 + 1e-3) * (0.1 * gk / 0.1 + 1e-3 * 1.0) / (h_new + 1e-3)
    np.testing.assert_allclose(np.asarray(updates[k]), expected, rtol=1e-5)


def test_update_from_noise_equals_explicit_estimate():
  params = {'w': jnp.array([0.2, -0.3])}
  opt = ivon_lib.ivon(0.1, ess=20.0)
  state = opt.init(params)
  _, noise = ivon_lib.sample_parameters(jax.random.key(4), params, state)
  g = {'w': jnp.array([1.0, 2.0])}
  price = ivon_lib.hessian_estimate(g, noise, state)
  sigma = ivon_lib.posterior_std(state)['w']
  # ĝ ⊙ ε/σ = ĝ ⊙ (θ − m)/σ².
  np.testing.assert_allclose(
    np.asarray(price['w']), np.asarray(g['w'] * noise['w'] * sigma / sigma**2), rtol=1e-6
  )
  # The official option: λ ĝ² (team-approx-bayes/ivon multiplies its squared-gradient mean by ess).
  np.testing.assert_allclose(
    np.asarray(ivon_lib.hessian_estimate(g, noise, state, 'gradsq')['w']), [20.0, 80.0]
  )
  a = opt.update(g, state, params, hess_estimate=price)
  b = opt.update(g, state, params, noise=noise)
  jax.tree.map(np.testing.assert_array_equal, a, b)
  with pytest.raises(ValueError):
    opt.update(g, state, params)
  with pytest.raises(ValueError):
    ivon_lib.ivon(0.1, ess=1.0, hess_approx='exact')
  vogn = ivon_lib.vogn(0.1, ess=20.0)
  with pytest.raises(ValueError, match='VOGN needs hess_estimate='):
    vogn.update(g, vogn.init(params), params, noise=noise)


def test_update_compiles_once():
  traces = []
  opt = ivon_lib.ivon(0.1, ess=10.0)

  @jax.jit
  def step(params, state, g, h):
    traces.append(None)
    updates, state = opt.update(g, state, params, hess_estimate=h)
    return optax.apply_updates(params, updates), state

  params = {'w': jnp.zeros(3)}
  state = opt.init(params)
  for i in range(3):
    params, state = step(params, state, {'w': jnp.full(3, float(i))}, {'w': jnp.ones(3)})
  assert len(traces) == 1


# ---------------------------------------------------------------------------------------------------------
# 5. Sampling.


def test_sample_parameters_moments_and_keys():
  params = {'a': jnp.array([0.5, -2.0]), 'b': {'c': jnp.array([[3.0]])}}
  opt = ivon_lib.ivon(0.1, ess=4.0, hess_init=0.25, weight_decay=0.0)
  state = opt.init(params)._replace(
    hess={'a': jnp.array([0.25, 4.0]), 'b': {'c': jnp.array([[1.0]])}}
  )
  sigma = ivon_lib.posterior_std(state)
  np.testing.assert_allclose(np.asarray(sigma['a']), [1.0, 0.25])  # 1/sqrt(4 h)
  np.testing.assert_allclose(np.asarray(sigma['b']['c']), [[0.5]])

  num = 20000
  keys = jax.random.split(jax.random.key(5), num)
  theta, noise = jax.jit(jax.vmap(ivon_lib.sample_parameters, in_axes=(0, None, None)))(
    keys, params, state
  )
  for t, e, m, s in zip(
    jax.tree.leaves(theta), jax.tree.leaves(noise), jax.tree.leaves(params), jax.tree.leaves(sigma)
  ):
    t, e, m, s = map(np.asarray, (t, e, m, s))
    np.testing.assert_array_less(np.abs(t.mean(0) - m), 4 * s / np.sqrt(num))
    np.testing.assert_allclose(t.std(0), s, rtol=0.03)
    np.testing.assert_allclose(t, m + s * e, rtol=1e-6, atol=1e-6)

  first, _ = ivon_lib.sample_parameters(jax.random.key(6), params, state)
  again, _ = ivon_lib.sample_parameters(jax.random.key(6), params, state)
  other, _ = ivon_lib.sample_parameters(jax.random.key(7), params, state)
  jax.tree.map(np.testing.assert_array_equal, first, again)
  for u, v in zip(jax.tree.leaves(first), jax.tree.leaves(other)):
    assert not np.any(np.asarray(u) == np.asarray(v))
  # The leaves get independent noise.
  assert not np.allclose(np.asarray(noise['a'][:, 0]), np.asarray(noise['b']['c'][:, 0, 0]))


def test_value_and_grad_and_hess_averages_samples():
  params = {'w': jnp.array([0.3, -0.7])}
  opt = ivon_lib.ivon(0.1, ess=5.0, weight_decay=0.0)
  state = opt.init(params)
  loss_fn = lambda theta: (jnp.sum(theta['w'] ** 3), theta['w'][0])
  key = jax.random.key(8)
  (loss, aux), grads, hess = ivon_lib.value_and_grad_and_hess(
    loss_fn, key, params, state, mc_samples=3, has_aux=True
  )
  losses, gs, hs, thetas = [], [], [], []
  for k in jax.random.split(key, 3):
    theta, noise = ivon_lib.sample_parameters(k, params, state)
    g = {'w': 3 * theta['w'] ** 2}
    losses.append(np.sum(np.asarray(theta['w']) ** 3))
    gs.append(np.asarray(g['w']))
    hs.append(np.asarray(ivon_lib.hessian_estimate(g, noise, state)['w']))
    thetas.append(float(theta['w'][0]))
  np.testing.assert_allclose(float(loss), np.mean(losses), rtol=1e-5)
  np.testing.assert_allclose(np.asarray(grads['w']), np.mean(gs, 0), rtol=1e-5)
  np.testing.assert_allclose(np.asarray(hess['w']), np.mean(hs, 0), rtol=1e-5)
  np.testing.assert_allclose(np.asarray(aux), thetas, rtol=1e-6)


def test_per_example_helpers_match_loops():
  rng = np.random.default_rng(9)
  x = jnp.asarray(rng.normal(size=(5, 3)), jnp.float32)
  y = jnp.asarray(rng.normal(size=5), jnp.float32)
  params = {'w': jnp.array([0.1, 0.2, -0.3])}
  per_example = lambda p, ex: 0.5 * (ex[1] - ex[0] @ p['w']) ** 2
  sq = ivon_lib.per_example_sq_grad_mean(per_example, params, (x, y))
  grads = [np.asarray(jax.grad(per_example)(params, (x[i], y[i]))['w']) for i in range(5)]
  np.testing.assert_allclose(np.asarray(sq['w']), np.mean(np.square(grads), 0), rtol=1e-5)

  state = ivon_lib.vogn(0.1, ess=5.0).init(params)
  key = jax.random.key(10)
  loss, g, h = ivon_lib.value_and_grad_and_sq_grad(per_example, key, params, state, (x, y), 2)
  theta = [ivon_lib.sample_parameters(k, params, state)[0] for k in jax.random.split(key, 2)]
  mean_loss = lambda p: jnp.mean(jax.vmap(per_example, in_axes=(None, 0))(p, (x, y)))
  np.testing.assert_allclose(float(loss), np.mean([mean_loss(t) for t in theta]), rtol=1e-5)
  np.testing.assert_allclose(
    np.asarray(g['w']), np.mean([jax.grad(mean_loss)(t)['w'] for t in theta], 0), rtol=1e-5
  )
  np.testing.assert_allclose(
    np.asarray(h['w']),
    np.mean([ivon_lib.per_example_sq_grad_mean(per_example, t, (x, y))['w'] for t in theta], 0),
    rtol=1e-5,
  )


def test_predictions():
  w = jnp.array([[1.0, -1.0, 0.5], [0.2, 0.3, -0.4]])
  params = {'w': w}
  apply_fn = lambda p, x: x @ p['w']
  x = jnp.array([[1.0, 2.0], [-0.5, 0.3]])
  np.testing.assert_allclose(
    np.asarray(ivon_lib.predict_mean(apply_fn, params, x)), np.asarray(x @ w)
  )
  broad = ivon_lib.ivon(0.1, ess=1.0, weight_decay=0.0).init(params)
  probs = ivon_lib.predictive_probs(apply_fn, jax.random.key(11), params, broad, x, num_samples=16)
  np.testing.assert_allclose(np.asarray(probs.sum(-1)), 1.0, rtol=1e-5)
  key = jax.random.key(11)
  manual = np.mean(
    [
      jax.nn.softmax(apply_fn(ivon_lib.sample_parameters(k, params, broad)[0], x))
      for k in jax.random.split(key, 16)
    ],
    0,
  )
  np.testing.assert_allclose(np.asarray(probs), manual, rtol=1e-5)
  narrow = ivon_lib.ivon(0.1, ess=1e10).init(params)
  np.testing.assert_allclose(
    np.asarray(ivon_lib.predictive_probs(apply_fn, key, params, narrow, x, 4)),
    np.asarray(jax.nn.softmax(x @ w)),
    rtol=1e-3,
  )


# ---------------------------------------------------------------------------------------------------------
# 6. Variational continual learning: the posterior becomes the prior.


@pytest.mark.parametrize('new_ess', [None, 30.0])
def test_posterior_as_prior(new_ess):
  params = {'a': jnp.array([0.4, -1.0]), 'b': {'c': jnp.array([[2.0]])}}
  opt = ivon_lib.ivon(0.1, ess=100.0, weight_decay=1e-2)
  state = opt.init(params)
  state = state._replace(
    hess={'a': jnp.array([0.5, 3.0]), 'b': {'c': jnp.array([[0.1]])}},
    count=jnp.asarray(7, jnp.int32),
  )
  new = ivon_lib.posterior_as_prior(state, params, new_ess)
  expected_ess = 100.0 if new_ess is None else new_ess
  assert float(new.ess) == expected_ess
  jax.tree.map(np.testing.assert_array_equal, new.prior_mean, params)
  # The absolute prior precision λ'δ' of the next task is the posterior precision λ(h + δ) of this one.
  posterior_prec = jax.tree.map(lambda h, d: state.ess * (h + d), state.hess, state.prior_prec)
  prior_prec = jax.tree.map(lambda d: new.ess * d, new.prior_prec)
  jax.tree.map(
    lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6),
    prior_prec,
    posterior_prec,
  )
  # count, momentum and h are kept.
  assert int(new.count) == 7
  jax.tree.map(np.testing.assert_array_equal, new.hess, state.hess)
  jax.tree.map(np.testing.assert_array_equal, new.momentum, state.momentum)


def test_with_prior_scalar_and_pytree_and_pulls_mean_to_prior():
  params = {'a': jnp.array([0.0, 0.0])}
  opt = ivon_lib.ivon(0.05, ess=10.0)
  state = ivon_lib.with_prior(opt.init(params), {'a': jnp.array([1.0, -2.0])}, 0.5, ess=20.0)
  np.testing.assert_array_equal(np.asarray(state.prior_prec['a']), [0.5, 0.5])
  assert float(state.ess) == 20.0
  state2 = ivon_lib.with_prior(state, state.prior_mean, {'a': jnp.array([0.1, 0.2])})
  np.testing.assert_allclose(np.asarray(state2.prior_prec['a']), [0.1, 0.2])
  # With zero data gradients the mean moves to μ₀.
  zeros = {'a': jnp.zeros(2)}

  def step(carry, _):
    p, s = carry
    u, s = opt.update(zeros, s, p, hess_estimate=zeros)
    return (optax.apply_updates(p, u), s), None

  (params, _), _ = jax.lax.scan(step, (params, state), None, length=2000)
  np.testing.assert_allclose(np.asarray(params['a']), [1.0, -2.0], atol=1e-3)


def test_posterior_as_prior_under_jit_and_vmap():
  params = {'w': jnp.ones((3, 2))}
  state = ivon_lib.ivon(0.1, ess=10.0).init(params)
  stacked_params = jax.tree.map(lambda p: jnp.stack([p, 2 * p]), params)
  stacked_state = jax.tree.map(lambda s: jnp.stack([s, s]), state)
  new = jax.jit(jax.vmap(ivon_lib.posterior_as_prior, in_axes=(0, 0, None)))(
    stacked_state, stacked_params, 5.0
  )
  np.testing.assert_array_equal(np.asarray(new.prior_mean['w'][1]), 2.0)
  np.testing.assert_allclose(np.asarray(new.prior_prec['w']), 10.0 * (1.0 + 1e-4) / 5.0, rtol=1e-6)


# ---------------------------------------------------------------------------------------------------------
# 7. Seeds in parallel.


def test_vmap_over_seeds_equals_per_seed_runs():
  problem = _linear_regression_problem(seed=3)
  run = _linreg_ivon_run(problem, steps=300, mc_samples=2)
  keys = jax.random.split(jax.random.key(12), 3)
  batched_params, batched_state = jax.jit(jax.vmap(run))(keys)
  single = jax.jit(run)
  for i in range(3):
    params, state = single(keys[i])
    np.testing.assert_allclose(
      np.asarray(batched_params['w'][i]), np.asarray(params['w']), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
      np.asarray(batched_state.hess['w'][i]), np.asarray(state.hess['w']), rtol=1e-5, atol=1e-6
    )
  assert not np.allclose(np.asarray(batched_params['w'][0]), np.asarray(batched_params['w'][1]))
