"""Previous-model targets and kernels (issue 13, item 1): with three tasks, so two lie in the past, the
stored predictions of every past memory, FROMP's per-class K⁻¹ and its loss are those of θ_{t−1}
(checked against NumPy), and K-priors reconstructs the past full-data gradient of a GLM exactly."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from test_bayes_methods import perturb

from cl import methods, models
from cl.methods.base import TaskData

NUM_OUT = 6
TASK_CLASSES = [(0, 1), (2, 3), (4, 5)]


def mlp():
  return models.make_model('mlp', (5,), NUM_OUT, hidden_sizes=(7,))


def task(t, per_class=4, seed=None):
  """Task t: `per_class` examples of each of its two classes (balanced, so a memory of 2·per_class
  holds all of them), task-IL head mask."""
  rng = np.random.default_rng(t if seed is None else seed)
  classes = TASK_CLASSES[t]
  y = np.repeat(np.asarray(classes), per_class)
  x = rng.normal(size=(len(y), 5)).astype(np.float32) + 0.5 * (y[:, None] % 2)
  mask = np.zeros((len(y), NUM_OUT), bool)
  mask[:, list(classes)] = True
  return TaskData(
    x=jnp.asarray(x),
    y=jnp.asarray(y, jnp.int32),
    mask=jnp.asarray(mask),
    task_index=jnp.asarray(t, jnp.int32),
  )


def np_softmax(logits, mask):
  z = np.where(mask, logits, -np.inf)
  z = z - z.max(-1, keepdims=True)
  e = np.where(mask, np.exp(z), 0.0)
  return e / e.sum(-1, keepdims=True)


def after_two_tasks(method, model, thetas):
  """The method's state after tasks 0 and 1, finished at thetas[0] and thetas[1]."""
  state = method.init(thetas[0])
  for t in range(2):
    state = method.consolidate(state, thetas[t], task(t), jax.random.key(10 + t))
  return state


def memory_methods(model, targets):
  kw = dict(
    input_shape=(5,),
    num_outputs=NUM_OUT,
    num_tasks=3,
    classes_per_task=2,
    memory_per_task=4,
    targets=targets,
  )
  return {
    'fromp': methods.fromp(model.apply, **kw),
    'fromp_l2': methods.fromp(model.apply, use_kernel=False, **kw),
    'kpriors': methods.kpriors(model.apply, **kw),
    'ewc_fr_replay': methods.ewc_fr_replay(model.apply, fisher_num_examples=8, **kw),
  }


@pytest.mark.parametrize('name', ['fromp', 'fromp_l2', 'kpriors', 'ewc_fr_replay'])
def test_targets_are_the_previous_models_softmax_on_every_stored_point(name):
  model = mlp()
  thetas = [model.init(jax.random.key(0)), perturb(model.init(jax.random.key(0)), seed=1)]
  previous = after_two_tasks(memory_methods(model, 'previous')[name], model, thetas).memory
  task_end = after_two_tasks(memory_methods(model, 'task_end')[name], model, thetas).memory
  assert int(previous.num_tasks) == 2
  for slot in range(2):
    x, mask = np.asarray(previous.x[slot]), np.asarray(previous.mask[slot])
    at_previous = np_softmax(np.asarray(model.apply(thetas[1], x), np.float64), mask)
    np.testing.assert_allclose(previous.targets[slot], at_previous, atol=1e-6)
    # The mirror: `task_end` keeps the predictions of the model that finished the slot's own task,
    # which differ from θ_{t−1}'s for the older slot (so the check above can fail).
    at_own_end = np_softmax(np.asarray(model.apply(thetas[slot], x), np.float64), mask)
    np.testing.assert_allclose(task_end.targets[slot], at_own_end, atol=1e-6)
    if slot == 0:
      assert np.max(np.abs(np.asarray(task_end.targets[0]) - at_previous)) > 1e-2
  assert not np.any(np.asarray(previous.targets[2]))  # the unused slot


def probs_jacobian(model, params, x, mask):
  """[M, C, P] Jacobian of the masked softmax outputs with respect to the flat parameters."""
  flat, unravel = ravel_pytree(params)
  probs = lambda f: jax.nn.softmax(models.masked_logits(model.apply(unravel(f), x), mask))
  return np.asarray(jax.jacrev(probs)(flat), np.float64)


def np_diagonal_ggn(model, params, data):
  """Σ_i diag(J_iᵀ Λ_i J_i) with logit Jacobians J_i and Λ_i = diag(p_i) − p_i p_iᵀ (masked softmax)."""
  flat, unravel = ravel_pytree(params)
  x, mask = np.asarray(data.x), np.asarray(data.mask)
  jac = np.asarray(jax.jacrev(lambda f: model.apply(unravel(f), data.x))(flat), np.float64)
  p = np_softmax(np.asarray(model.apply(params, x), np.float64), mask)
  ggn = np.zeros(flat.shape[0])
  for i in range(len(x)):
    lam = np.diag(p[i]) - np.outer(p[i], p[i])
    ggn += np.einsum('cp,cd,dp->p', jac[i], lam, jac[i])
  return ggn


@pytest.mark.parametrize('targets', ['previous', 'task_end'])
def test_fromp_kernel_weighted_loss_by_hand_with_two_past_tasks(targets):
  """(τ / 2N) Σ_s Σ_c Δ_{s,c}ᵀ K_{s,c}⁻¹ Δ_{s,c} in NumPy: with 'previous', K_s and m_s^old of both past
  tasks at θ₁ (the model that finished task 1) under Σ = 1 / (δ₀ + GGN₀(θ₀) + GGN₁(θ₁)); with
  'task_end', task 0's at θ₀ under 1 / (δ₀ + GGN₀(θ₀))."""
  model = mlp()
  base = model.init(jax.random.key(0))
  thetas = [perturb(base, seed=1), perturb(base, seed=2)]
  tau, delta0, jitter, rel = 3.0, 1e-2, 1e-4, 0.1
  method = methods.fromp(
    model.apply,
    input_shape=(5,),
    num_outputs=NUM_OUT,
    num_tasks=3,
    classes_per_task=2,
    memory_per_task=4,
    tau=tau,
    prior_precision=delta0,
    jitter=jitter,
    relative_jitter=rel,
    ggn_num_examples=0,
    targets=targets,
  )
  state = after_two_tasks(method, model, thetas)
  ggn = [np_diagonal_ggn(model, thetas[t], task(t)) for t in range(2)]
  precision_after = [delta0 + ggn[0], delta0 + ggn[0] + ggn[1]]
  np.testing.assert_allclose(ravel_pytree(state.precision)[0], precision_after[1], rtol=1e-4)

  theta = perturb(base, seed=3)
  n = task(1).y.shape[0]
  expected = 0.0
  for s in range(2):
    at = 1 if targets == 'previous' else s
    variance = 1.0 / precision_after[at]
    x, mask = state.memory.x[s], np.asarray(state.memory.mask[s])
    old = np_softmax(np.asarray(model.apply(thetas[at], np.asarray(x)), np.float64), mask)
    new = np_softmax(np.asarray(model.apply(theta, np.asarray(x)), np.float64), mask)
    jac = probs_jacobian(model, thetas[at], x, state.memory.mask[s])  # [M, C, P]
    for c in range(NUM_OUT):
      kern = jac[:, c] @ np.diag(variance) @ jac[:, c].T
      kern = kern * np.outer(mask[:, c], mask[:, c])
      kern += (jitter + rel * np.trace(kern) / len(x)) * np.eye(len(x))
      diff = new[:, c] - old[:, c]
      expected += diff @ np.linalg.solve(kern, diff)
  expected *= 0.5 * tau / n
  got = float(method.loss(theta, state, jax.random.key(0), 2))
  np.testing.assert_allclose(got, expected, rtol=2e-3)


def linear_model(in_dim=5):
  """A GLM: multinomial logistic regression, logits = x W + b."""

  def init(key):
    return {'w': 0.1 * jax.random.normal(key, (in_dim, NUM_OUT)), 'b': jnp.zeros(NUM_OUT)}

  return models.Model(init=init, apply=lambda p, x: x @ p['w'] + p['b'])


@pytest.mark.parametrize('targets', ['previous', 'task_end'])
def test_kpriors_reconstructs_the_past_full_data_gradient_of_a_glm(targets):
  """K-priors' claim (Khan & Swaroop 2021): for a GLM whose memory holds every past example, the
  gradient of Σ_s mean_{M_s} CE(σ(f(θ_old)), f(θ)) + (δ/2)‖θ − θ_old‖² equals that of the past
  objective Σ_s mean_{D_s} CE(y, f(θ)) + (δ/2)‖θ‖² at any θ, when θ_old is its minimiser. That needs
  every past task's soft labels at θ_old: with 'task_end', task 0's come from θ₀ and it fails."""
  model = linear_model()
  delta = 0.5
  data = [task(0), task(1)]

  def past_objective(params):
    total = 0.0
    for d in data:
      logp = jax.nn.log_softmax(models.masked_logits(model.apply(params, d.x), d.mask))
      total = total - jnp.mean(jnp.take_along_axis(logp, d.y[:, None], axis=-1))
    return total + 0.5 * delta * sum(jnp.sum(p**2) for p in jax.tree.leaves(params))

  # θ_old: the minimiser (strictly convex), by Newton's method on the flat parameters.
  flat, unravel = ravel_pytree(model.init(jax.random.key(0)))
  objective = lambda f: past_objective(unravel(f))
  for _ in range(20):
    flat = flat - jnp.linalg.solve(jax.hessian(objective)(flat), jax.grad(objective)(flat))
  theta_old = unravel(flat)
  assert float(jnp.max(jnp.abs(jax.grad(objective)(flat)))) < 1e-5

  method = methods.kpriors(
    model.apply,
    input_shape=(5,),
    num_outputs=NUM_OUT,
    num_tasks=3,
    classes_per_task=2,
    memory_per_task=8,
    tau=1.0,
    delta=delta,
    selection='random',
    targets=targets,
  )
  theta0 = perturb(model.init(jax.random.key(1)), scale=1.0, seed=7)
  state = method.init(theta0)
  state = method.consolidate(state, theta0, data[0], jax.random.key(1))
  state = method.consolidate(state, theta_old, data[1], jax.random.key(2))
  assert bool(jnp.all(state.memory.valid[:2]))  # the memories hold every past example

  theta = perturb(theta_old, scale=0.5, seed=3)
  got = ravel_pytree(jax.grad(method.loss)(theta, state, jax.random.key(0), 2))[0]
  want = jax.grad(objective)(ravel_pytree(theta)[0])
  if targets == 'previous':
    np.testing.assert_allclose(got, want, atol=2e-5)
  else:
    assert float(jnp.max(jnp.abs(got - want))) > 1e-2


def test_previous_targets_refresh_every_stored_fromp_kernel():
  """After task 1, slot 0's K⁻¹ changes under 'previous' (recomputed at θ₁, under the new precision)
  and not under 'task_end'."""
  model = mlp()
  base = model.init(jax.random.key(0))
  kw = dict(
    input_shape=(5,),
    num_outputs=NUM_OUT,
    num_tasks=3,
    classes_per_task=2,
    memory_per_task=4,
    ggn_num_examples=0,
  )
  kinv = {}
  for targets in ('previous', 'task_end'):
    method = methods.fromp(model.apply, targets=targets, **kw)
    after_one = method.consolidate(
      method.init(base), perturb(base, seed=1), task(0), jax.random.key(10)
    )
    after_two = method.consolidate(after_one, perturb(base, seed=2), task(1), jax.random.key(11))
    # Slot 0's head classes (0, 1); the other classes' blocks are the identity over the jitter.
    kinv[targets] = (
      np.asarray(after_one.kernel_inv[0, :2]),
      np.asarray(after_two.kernel_inv[0, :2]),
    )
  np.testing.assert_array_equal(*kinv['task_end'])
  before, after = kinv['previous']
  assert np.max(np.abs(after - before)) > 0.1 * np.max(np.abs(before))


def test_unknown_targets_is_a_clear_error():
  model = mlp()
  with pytest.raises(
    ValueError, match=r"targets must be one of \['previous', 'task_end'\], got 'old'"
  ):
    methods.kpriors(
      model.apply,
      input_shape=(5,),
      num_outputs=NUM_OUT,
      num_tasks=3,
      classes_per_task=2,
      targets='old',
    )
