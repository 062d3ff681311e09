"""Exact checks of the baselines' pieces: losses, Fisher, EWC/online EWC/SI state updates, replay memory."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cl import methods, models
from cl.methods.base import TaskData, cross_entropy


def linear_model(num_in=3, num_out=4):
  def init(key):
    return {'w': jax.random.normal(key, (num_in, num_out)), 'b': jnp.zeros(num_out)}

  def apply(params, x):
    return x.reshape(x.shape[0], -1) @ params['w'] + params['b']

  return models.Model(init=init, apply=apply)


def task_data(x, y, num_out, classes=None, task_index=0):
  mask = np.zeros((len(y), num_out), bool)
  mask[:, list(classes if classes is not None else range(num_out))] = True
  return TaskData(
    x=jnp.asarray(x, jnp.float32),
    y=jnp.asarray(y, jnp.int32),
    mask=jnp.asarray(mask),
    task_index=jnp.asarray(task_index, jnp.int32),
  )


def test_masked_cross_entropy_matches_formula():
  logits = jnp.array([[1.0, 2.0, 3.0, 4.0], [0.5, -1.0, 2.0, 0.0]])
  mask = jnp.array([[True, True, False, False], [False, False, True, True]])
  y = jnp.array([1, 2])
  # Row 0: softmax over (1, 2) -> -log(e^2/(e^1+e^2)); row 1 over (2, 0) -> -log(e^2/(e^2+e^0)).
  expected = np.mean([-np.log(np.e**2 / (np.e + np.e**2)), -np.log(np.e**2 / (np.e**2 + 1))])
  np.testing.assert_allclose(cross_entropy(logits, y, mask), expected, rtol=1e-6)


def test_model_masked_prediction_uses_only_task_logits():
  model = models.make_model('mlp', (8, 8, 1), 10, hidden_sizes=(16,))
  params = model.init(jax.random.key(0))
  x = jax.random.normal(jax.random.key(1), (32, 8, 8, 1))
  mask = jnp.zeros(10, bool).at[jnp.array([4, 5])].set(True)
  pred = jnp.argmax(models.masked_logits(model.apply(params, x), mask), -1)
  assert set(np.asarray(pred).tolist()) <= {4, 5}


def test_two_seeds_give_different_initial_params_and_same_seed_same():
  for name, shape in (('mlp', (8, 8, 1)), ('cnn', (8, 8, 1))):
    model = models.make_model(name, shape, 10, hidden_sizes=(16,), channels=(4,), dense_size=8)
    a, b = model.init(jax.random.key(0)), model.init(jax.random.key(1))
    a2 = model.init(jax.random.key(0))
    assert any(not np.allclose(u, v) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(a2)):
      np.testing.assert_array_equal(u, v)


def test_empirical_fisher_equals_mean_squared_per_example_gradients():
  model = linear_model()
  params = model.init(jax.random.key(0))
  rng = np.random.default_rng(0)
  x = rng.normal(size=(8, 3)).astype(np.float32)
  y = rng.integers(0, 4, size=8)
  data = task_data(x, y, 4)
  fisher = methods.diagonal_fisher(
    model.apply,
    params,
    data,
    jax.random.key(1),
    num_examples=8,
    fisher_type='empirical',
    chunk_size=4,
  )
  # By hand: grad of log softmax(x W + b)[y] wrt W is x (onehot(y) - p)^T; wrt b is onehot(y) - p.
  logits = x @ np.asarray(params['w'])
  p = np.exp(logits - logits.max(1, keepdims=True))
  p /= p.sum(1, keepdims=True)
  r = np.eye(4)[y] - p
  expected_w = np.mean([np.outer(x[i], r[i]) ** 2 for i in range(8)], axis=0)
  expected_b = np.mean(r**2, axis=0)
  np.testing.assert_allclose(fisher['w'], expected_w, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(fisher['b'], expected_b, rtol=1e-5, atol=1e-7)


def test_sampled_fisher_respects_head_mask():
  model = linear_model()
  params = model.init(jax.random.key(0))
  x = np.random.default_rng(1).normal(size=(16, 3)).astype(np.float32)
  data = task_data(x, np.zeros(16, int), 4, classes=[0, 1])
  fisher = methods.diagonal_fisher(
    model.apply, params, data, jax.random.key(2), num_examples=16, fisher_type='sampled'
  )
  # Masked-out logits get exactly zero gradient, so their Fisher entries are exactly zero.
  np.testing.assert_array_equal(fisher['b'][2:], 0.0)
  assert np.all(fisher['b'][:2] > 0)


def test_ewc_keeps_one_penalty_per_task():
  model = linear_model()
  params = model.init(jax.random.key(0))
  method = methods.ewc(
    model.apply, num_tasks=3, ewc_lambda=2.0, fisher_num_examples=8, fisher_type='empirical'
  )
  state = method.init(params)
  assert float(method.loss(params, state, None)) == 0.0
  x = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
  data = task_data(x, np.arange(8) % 4, 4)
  state = method.consolidate(state, params, data, jax.random.key(1))
  params2 = jax.tree.map(lambda p: p + 0.1, params)
  state = method.consolidate(state, params2, data, jax.random.key(2))
  assert int(state.num_penalties) == 2
  f1 = methods.diagonal_fisher(
    model.apply, params, data, jax.random.key(1), num_examples=8, fisher_type='empirical'
  )
  f2 = methods.diagonal_fisher(
    model.apply, params2, data, jax.random.key(2), num_examples=8, fisher_type='empirical'
  )
  theta = jax.tree.map(lambda p: p - 0.3, params)
  expected = 0.0
  for f, anchor in ((f1, params), (f2, params2)):
    expected += sum(float(jnp.sum(f[k] * (theta[k] - anchor[k]) ** 2)) for k in ('w', 'b'))
  np.testing.assert_allclose(method.loss(theta, state, None), 0.5 * 2.0 * expected, rtol=1e-5)


def test_online_ewc_accumulates_fisher_with_decay():
  model = linear_model()
  params = model.init(jax.random.key(0))
  method = methods.online_ewc(
    model.apply, ewc_lambda=1.0, gamma=0.5, fisher_num_examples=8, fisher_type='empirical'
  )
  x = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
  data = task_data(x, np.arange(8) % 4, 4)
  state = method.consolidate(method.init(params), params, data, jax.random.key(1))
  params2 = jax.tree.map(lambda p: p * 1.5, params)
  state = method.consolidate(state, params2, data, jax.random.key(1))
  f1 = methods.diagonal_fisher(
    model.apply, params, data, jax.random.key(1), num_examples=8, fisher_type='empirical'
  )
  f2 = methods.diagonal_fisher(
    model.apply, params2, data, jax.random.key(1), num_examples=8, fisher_type='empirical'
  )
  np.testing.assert_allclose(state.fisher['w'], 0.5 * f1['w'] + f2['w'], rtol=1e-6)
  np.testing.assert_array_equal(state.anchor['w'], params2['w'])


def test_si_path_integral_and_importance():
  method = methods.si(si_c=3.0, xi=0.1)
  p0 = {'w': jnp.array([1.0, 2.0])}
  state = method.init(p0)
  # Two steps: g=(1,-2), θ: (1,2)->(0.5,2.5)->(0.25,3.0) with g=(0.5,-1) on the second step.
  p1 = {'w': jnp.array([0.5, 2.5])}
  p2 = {'w': jnp.array([0.25, 3.0])}
  state = method.after_step(state, p0, p1, {'w': jnp.array([1.0, -2.0])})
  state = method.after_step(state, p1, p2, {'w': jnp.array([0.5, -1.0])})
  # ω = -(1*-0.5 + 0.5*-0.25, -2*0.5 + -1*0.5) = (0.625, 1.5)
  np.testing.assert_allclose(state.path_integral['w'], [0.625, 1.5])
  state = method.consolidate(state, p2, None, None)
  # Δ = (-0.75, 1.0): Ω = (0.625/(0.5625+0.1), 1.5/(1+0.1))
  omega = np.array([0.625 / 0.6625, 1.5 / 1.1])
  np.testing.assert_allclose(state.importance['w'], omega, rtol=1e-6)
  np.testing.assert_array_equal(state.path_integral['w'], 0.0)
  theta = {'w': jnp.array([0.0, 0.0])}
  np.testing.assert_allclose(
    method.loss(theta, state, None), 3.0 * np.sum(omega * np.array([0.25, 3.0]) ** 2), rtol=1e-6
  )


def _replay(selection, memory_size, num_tasks=3, num_out=4):
  model = linear_model(num_out=num_out)
  return model, methods.replay(
    model.apply,
    input_shape=(3,),
    num_outputs=num_out,
    num_tasks=num_tasks,
    memory_size=memory_size,
    replay_batch_size=8,
    selection=selection,
  )


def test_class_balanced_memory_is_balanced_over_task_classes():
  model, method = _replay('class_balanced', memory_size=12)
  params = model.init(jax.random.key(0))
  state = method.init(params)
  assert float(method.loss(params, state, jax.random.key(0))) == 0.0
  rng = np.random.default_rng(0)
  # Task 0: classes 0/1, 50 examples each; task 1: classes 2/3, 30 + 70 examples.
  x0 = rng.normal(size=(100, 3)).astype(np.float32)
  y0 = np.repeat([0, 1], 50)
  state = method.consolidate(state, params, task_data(x0, y0, 4, [0, 1], 0), jax.random.key(1))
  assert int(state.count) == 12
  np.testing.assert_array_equal(np.bincount(np.asarray(state.y), minlength=4), [6, 6, 0, 0])
  x1 = rng.normal(size=(100, 3)).astype(np.float32) + 10.0
  y1 = np.concatenate([np.full(30, 2), np.full(70, 3)])
  state = method.consolidate(state, params, task_data(x1, y1, 4, [2, 3], 1), jax.random.key(2))
  np.testing.assert_array_equal(np.bincount(np.asarray(state.y), minlength=4), [3, 3, 3, 3])
  # Every stored row is a real example of its label, with that task's head mask.
  xs, ys, masks = np.asarray(state.x), np.asarray(state.y), np.asarray(state.mask)
  for xi, yi, mi in zip(xs, ys, masks):
    pool = x0[y0 == yi] if yi < 2 else x1[y1 == yi]
    assert np.any(np.all(pool == xi, axis=1))
    assert mi.tolist() == ([True, True, False, False] if yi < 2 else [False, False, True, True])
  assert float(method.loss(params, state, jax.random.key(3))) > 0.0


def test_reservoir_memory_is_a_uniform_sample_of_the_stream():
  model, method = _replay('reservoir', memory_size=20)
  params = model.init(jax.random.key(0))
  x0 = np.zeros((60, 3), np.float32)
  x1 = np.ones((140, 3), np.float32)
  d0 = task_data(x0, np.zeros(60), 4, task_index=0)
  d1 = task_data(x1, np.ones(140), 4, task_index=1)

  def run(key):
    k0, k1 = jax.random.split(key)
    state = method.consolidate(method.init(params), params, d0, k0)
    first_count = state.count
    state = method.consolidate(state, params, d1, k1)
    return first_count, state.count, jnp.mean(state.y == 0)

  first, count, frac0 = jax.jit(jax.vmap(run))(jax.random.split(jax.random.key(0), 400))
  assert np.all(np.asarray(first) == 20) and np.all(np.asarray(count) == 20)
  # Each of the 200 examples is kept with probability 20/200, so task 0's share is 60/200 = 0.3.
  assert abs(float(jnp.mean(frac0)) - 0.3) < 0.02


def test_reservoir_keeps_everything_while_memory_is_not_full():
  model, method = _replay('reservoir', memory_size=50)
  params = model.init(jax.random.key(0))
  x = np.arange(30 * 3, dtype=np.float32).reshape(30, 3)
  state = method.consolidate(
    method.init(params), params, task_data(x, np.arange(30) % 4, 4), jax.random.key(0)
  )
  assert int(state.count) == 30
  stored = np.asarray(state.x)[:30]
  assert sorted(map(tuple, stored)) == sorted(map(tuple, x))


def test_unknown_selection_is_rejected():
  with pytest.raises(
    ValueError, match=r"selection must be one of \['class_balanced', 'reservoir'\]"
  ):
    methods.replay(
      lambda p, x: x,
      input_shape=(3,),
      num_outputs=4,
      num_tasks=2,
      memory_size=4,
      replay_batch_size=2,
      selection='fifo',
    )
