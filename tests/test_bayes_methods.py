"""Exact identities of the Bayes-duality methods: FROMP, FROMP-L2, K-priors, EWC+FR+replay, VCL."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cl import builders, dual, ivon, methods, metrics, models, train
from cl.methods.base import TaskData, cross_entropy
from cljax.config import load_module

split_digits = load_module('configs/cl/split_digits.py')


def mlp():
  return models.make_model('mlp', (6,), 4, hidden_sizes=(8,))


def task(num=60, classes=(0, 1), num_out=4, task_index=0, seed=0):
  rng = np.random.default_rng(seed)
  y = np.asarray(classes)[rng.integers(0, len(classes), num)]
  x = rng.normal(size=(num, 6)).astype(np.float32) + y[:, None]
  mask = np.zeros((num, num_out), bool)
  mask[:, list(classes)] = True
  return TaskData(
    x=jnp.asarray(x),
    y=jnp.asarray(y, jnp.int32),
    mask=jnp.asarray(mask),
    task_index=jnp.asarray(task_index, jnp.int32),
  )


def perturb(params, scale=0.3, seed=5):
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.key(seed), len(leaves))
  return jax.tree.unflatten(
    tree, [l + scale * jax.random.normal(k, l.shape) for l, k in zip(leaves, keys)]
  )


def grads_close(a, b, atol=1e-6, rtol=1e-5):
  for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(u, v, atol=atol, rtol=rtol)


def test_ewc_fr_replay_reconstructs_the_replay_gradient_on_m2():
  """With M₂ = M₁, temperature 1, τ = replay weight and no EWC, FR + error correction has exactly the
  gradient of the cross-entropy with the true labels on the memory (Daxberger et al., eq. 3)."""
  model = mlp()
  params = model.init(jax.random.key(0))
  method = methods.ewc_fr_replay(
    model.apply,
    input_shape=(6,),
    num_outputs=4,
    num_tasks=3,
    classes_per_task=2,
    memory_per_task=10,
    ewc_lambda=0.0,
    tau=0.7,
    replay_weight=0.7,
    m2_fraction=1.0,
    temperature=1.0,
  )
  data = task()
  state = method.consolidate(method.init(params), params, data, jax.random.key(1))
  mem = state.memory
  assert int(mem.num_tasks) == 1 and int(mem.valid[0].sum()) == 10
  theta = perturb(params)
  got = jax.grad(method.loss)(theta, state, jax.random.key(2), 1)
  replay = jax.grad(lambda p: 0.7 * cross_entropy(model.apply(p, mem.x[0]), mem.y[0], mem.mask[0]))(
    theta
  )
  grads_close(got, replay)


def test_kpriors_and_fromp_vanish_at_the_old_parameters():
  model = mlp()
  params = model.init(jax.random.key(0))
  data = task()
  for name in ('fromp', 'fromp_l2', 'kpriors'):
    if name == 'kpriors':
      method = methods.kpriors(
        model.apply,
        input_shape=(6,),
        num_outputs=4,
        num_tasks=2,
        classes_per_task=2,
        memory_per_task=10,
        tau=1.0,
        delta=0.1,
      )
    else:
      method = methods.fromp(
        model.apply,
        input_shape=(6,),
        num_outputs=4,
        num_tasks=2,
        classes_per_task=2,
        memory_per_task=10,
        tau=1.0,
        use_kernel=name == 'fromp',
      )
    state = method.consolidate(method.init(params), params, data, jax.random.key(1))
    g = jax.grad(method.loss)(params, state, jax.random.key(2), 1)
    # The function-space term has gradient J^T(σ(f(θ)) − σ(f(θ_old))) = 0 at θ_old; so has the
    # weight-space term.
    assert max(float(jnp.max(jnp.abs(l))) for l in jax.tree.leaves(g)) < 1e-5, name
    assert float(method.loss(perturb(params), state, jax.random.key(2), 1)) > 0.0, name


def test_fromp_memory_is_memorable_and_class_balanced():
  model = mlp()
  params = model.init(jax.random.key(0))
  data = task(num=80)
  method = methods.fromp(
    model.apply,
    input_shape=(6,),
    num_outputs=4,
    num_tasks=2,
    classes_per_task=2,
    memory_per_task=8,
    tau=1.0,
  )
  state = method.consolidate(method.init(params), params, data, jax.random.key(1))
  mem_y = np.asarray(state.memory.y[0])
  assert sorted(np.bincount(mem_y, minlength=4).tolist()) == [0, 0, 4, 4]
  # λ-descend: the stored points of each class are that class's top-λ examples.
  logits = model.apply(params, data.x)
  scores = np.asarray(dual.lambda_scores(logits, data.mask[0]))
  y = np.asarray(data.y)
  for c in (0, 1):
    top = np.sort(scores[y == c])[::-1][:4]
    stored = np.sort(
      np.asarray(
        dual.lambda_scores(model.apply(params, state.memory.x[0][mem_y == c]), data.mask[0])
      )
    )[::-1]
    np.testing.assert_allclose(stored, top, rtol=1e-5)
  # The kernel inverse is symmetric and the stored targets are the old softmax probabilities.
  kinv = np.asarray(state.kernel_inv[0])
  np.testing.assert_allclose(
    kinv, np.swapaxes(kinv, -1, -2), rtol=1e-3, atol=1e-3 * np.abs(kinv).max()
  )
  probs = jax.nn.softmax(models.masked_logits(model.apply(params, state.memory.x[0]), data.mask[0]))
  np.testing.assert_allclose(state.memory.targets[0], probs, atol=1e-6)


def test_fromp_l2_loss_by_hand():
  model = mlp()
  params = model.init(jax.random.key(0))
  data = task(num=40)
  method = methods.fromp(
    model.apply,
    input_shape=(6,),
    num_outputs=4,
    num_tasks=2,
    classes_per_task=2,
    memory_per_task=6,
    tau=3.0,
    use_kernel=False,
  )
  state = method.consolidate(method.init(params), params, data, jax.random.key(1))
  theta = perturb(params)
  x = state.memory.x[0]
  p_new = jax.nn.softmax(models.masked_logits(model.apply(theta, x), data.mask[0]))
  expected = 0.5 * 3.0 * float(jnp.sum((p_new - state.memory.targets[0]) ** 2)) / 40
  np.testing.assert_allclose(method.loss(theta, state, jax.random.key(0), 1), expected, rtol=1e-5)


def test_one_past_task_per_step_is_an_unbiased_estimate():
  model = mlp()
  params = model.init(jax.random.key(0))
  kw = dict(
    input_shape=(6,),
    num_outputs=4,
    num_tasks=3,
    classes_per_task=2,
    memory_per_task=6,
    tau=1.0,
    delta=0.0,
  )
  full = methods.kpriors(model.apply, tasks_per_step='all', **kw)
  one = methods.kpriors(model.apply, tasks_per_step='one', **kw)
  state = full.init(params)
  for t, classes in enumerate([(0, 1), (2, 3)]):
    state = full.consolidate(
      state, perturb(params, seed=t), task(classes=classes, task_index=t, seed=t), jax.random.key(t)
    )
  theta = perturb(params, seed=9)
  exact = float(full.loss(theta, state, jax.random.key(0), 2))
  draws = jax.vmap(lambda k: one.loss(theta, state, k, 2))(
    jax.random.split(jax.random.key(1), 4000)
  )
  assert len(set(np.round(np.asarray(draws), 4).tolist())) == 2  # one value per past task
  np.testing.assert_allclose(float(jnp.mean(draws)), exact, rtol=0.05)


def test_vcl_propagates_the_posterior_as_the_next_prior():
  model = mlp()
  params = model.init(jax.random.key(0))
  tx = ivon.ivon(0.1, 60.0, weight_decay=1e-2)
  opt_state = tx.init(params)
  opt_state = opt_state._replace(hess=jax.tree.map(lambda p: jnp.full_like(p, 0.5), params))
  method = methods.vcl()
  state = method.consolidate(
    method.init(params), params, task(), jax.random.key(0), opt_state=opt_state
  )
  fresh = tx.init(params)
  next_task = task(num=30)
  prepared = method.prepare_optimizer(state, params, fresh, next_task)
  assert float(prepared.ess) == 30.0
  grads_close(prepared.prior_mean, params, atol=0, rtol=0)
  # Absolute prior precision of task 2 = posterior precision after task 1 = 60 (0.5 + 0.01).
  for d in jax.tree.leaves(prepared.prior_prec):
    np.testing.assert_allclose(30.0 * d, 60.0 * 0.51, rtol=1e-5)
  # Before any task finished, the optimizer state is left as it is.
  untouched = method.prepare_optimizer(method.init(params), params, fresh, next_task)
  grads_close(untouched.prior_prec, fresh.prior_prec, atol=0, rtol=0)
  # A tempered prior scales the propagated precision by β and nothing else.
  tempered = methods.vcl(prior_scale=0.25).prepare_optimizer(state, params, fresh, next_task)
  for d, d1 in zip(jax.tree.leaves(tempered.prior_prec), jax.tree.leaves(prepared.prior_prec)):
    np.testing.assert_allclose(d, 0.25 * d1, rtol=1e-6)
  grads_close(tempered.prior_mean, params, atol=0, rtol=0)


def test_fromp_relative_jitter_bounds_the_kernel_inverse():
  model = mlp()
  params = model.init(jax.random.key(0))
  data = task(num=60)
  kw = dict(
    input_shape=(6,),
    num_outputs=4,
    num_tasks=2,
    classes_per_task=2,
    memory_per_task=10,
    tau=1.0,
    jitter=1e-6,
  )
  plain = methods.fromp(model.apply, relative_jitter=0.0, **kw)
  damped = methods.fromp(model.apply, relative_jitter=0.1, **kw)
  k0 = np.asarray(
    plain.consolidate(plain.init(params), params, data, jax.random.key(1)).kernel_inv[0], np.float64
  )
  k1 = np.asarray(
    damped.consolidate(damped.init(params), params, data, jax.random.key(1)).kernel_inv[0],
    np.float64,
  )
  for c in (0, 1):  # the task's two classes (the others are masked: identity blocks)
    kern = np.linalg.inv(k0[c])  # K + εI, recovered from the undamped inverse
    kern -= 1e-6 * np.eye(10)
    scale = np.trace(kern) / 10
    expected = np.linalg.inv(kern + (1e-6 + 0.1 * scale) * np.eye(10))
    np.testing.assert_allclose(k1[c], expected, rtol=2e-3, atol=1e-3 * np.abs(expected).max())
    # The largest eigenvalue of the inverse is at most 1 / (0.1 · mean diag K).
    assert np.linalg.eigvalsh(k1[c]).max() <= 1.0 / (0.1 * scale) * (1 + 1e-3)


@pytest.mark.parametrize('method', ['fromp', 'kpriors', 'ewc_fr_replay', 'vcl'])
def test_methods_train_and_reduce_forgetting_on_split_digits(method):
  results = {}
  for name in ('finetune', method):
    c = split_digits.get_config()
    c.method, c.num_seeds, c.epochs, c.scenario = name, 2, 5, 'class'
    if method == 'vcl':
      c.optimizer.name = 'ivon'  # fine-tune with IVON alone as the reference
    builders.validate_config(c)
    stream = builders.build_stream(c)
    learner, m = builders.build_learner(c, stream)
    rs = train.run_stream(
      learner, stream, builders.seed_keys(c), epochs=c.epochs, **train.method_flags(m)
    )
    results[name] = np.mean([metrics.forgetting(r) for r in np.asarray(rs.accuracy_matrix)])
  # Class-incremental digits: fine-tuning forgets old classes almost completely.
  assert results[method] < results['finetune'] - 0.1, results


def test_posterior_averaged_prediction():
  c = split_digits.get_config()
  c.method, c.num_tasks, c.epochs = 'vcl', 1, 5
  c.ivon.eval_samples = 16
  builders.validate_config(c)
  stream = builders.build_stream(c)
  learner, m = builders.build_learner(c, stream)
  rs = train.run_stream(
    learner, stream, builders.seed_keys(c), epochs=c.epochs, **train.method_flags(m)
  )
  assert float(rs.accuracy_matrix[0, 0, 0]) > 0.9
  c.ivon.eval_samples = 0
  mean_learner, _ = builders.build_learner(c, stream)
  task = stream.tasks[0]
  args = (jnp.asarray(task.x_test), jnp.asarray(task.y_test), jnp.asarray(task.output_mask))
  single = jax.tree.map(lambda a: a[0], rs.train_state)
  sampled = float(learner.accuracy(single, *args))
  assert sampled == float(learner.accuracy(single, *args))  # a fixed key: deterministic
  # The posterior is narrow after a task, so averaging over samples predicts almost like the mean.
  assert abs(sampled - float(mean_learner.accuracy(single, *args))) < 0.05
  with pytest.raises(ValueError, match='eval_samples > 0 needs a variational optimizer'):
    train.make_learner(
      models.make_model('mlp', (8, 8, 1), 10),
      methods.finetune(),
      None,
      batch_size=8,
      eval_samples=4,
    )


def test_vogn_trains_through_the_trainer():
  """The VOGN path: per-example squared gradients at sampled weights feed the curvature."""
  c = split_digits.get_config()
  c.method, c.num_tasks, c.epochs = 'finetune', 1, 5
  c.optimizer.name = 'vogn'
  builders.validate_config(c)
  stream = builders.build_stream(c)
  learner, m = builders.build_learner(c, stream)
  rs = train.run_stream(
    learner, stream, builders.seed_keys(c), epochs=c.epochs, **train.method_flags(m)
  )
  assert float(rs.accuracy_matrix[0, 0, 0]) > 0.9
  hess = jax.tree.leaves(rs.train_state.opt_state.hess)
  assert all(
    bool(jnp.all(h >= 0)) for h in hess
  )  # an EMA of squares from h0 = 1 stays non-negative


def test_sensitivity_selection_is_only_for_fromp():
  from cljax.config import ConfigError

  c = split_digits.get_config()
  c.method = 'kpriors'
  c.kpriors.selection = 'sensitivity'
  with pytest.raises(
    ConfigError,
    match=r"config.kpriors.selection must be one of \['lambda_descend', "
    r"'lambda_ascend', 'random'\], got 'sensitivity'",
  ):
    builders.validate_config(c)
  c.method = 'fromp'
  c.fromp.selection = 'sensitivity'
  builders.validate_config(c)


def test_fromp_sensitivity_selection_keeps_the_highest_scores():
  model = mlp()
  params = model.init(jax.random.key(0))
  data = task(num=50)
  method = methods.fromp(
    model.apply,
    input_shape=(6,),
    num_outputs=4,
    num_tasks=2,
    classes_per_task=2,
    memory_per_task=6,
    selection='sensitivity',
    ggn_num_examples=0,
  )
  state = method.consolidate(method.init(params), params, data, jax.random.key(1))
  variance = jax.tree.map(lambda p: 1.0 / p, state.precision)
  scores = np.asarray(
    dual.sensitivity_scores(model.apply, params, data.x, data.y, variance, data.mask[0])
  )
  y = np.asarray(data.y)
  stored = {tuple(np.asarray(r).round(6)) for r in state.memory.x[0]}
  for c in (0, 1):
    top = np.argsort(-scores[y == c])[:3]
    for i in np.flatnonzero(y == c)[top]:
      assert tuple(np.asarray(data.x[i]).round(6)) in stored


@pytest.mark.parametrize('name', ['fromp', 'kpriors', 'ewc_fr_replay'])
def test_one_past_task_per_step_needs_no_static_task_count(name):
  """Issue 16 item 3: with tasks_per_step='one' the count of finished tasks is the memory's own
  (traced), so a stream compiles one epoch function. Before any task has finished the loss and its
  gradient are exactly 0 (the empty slot stays finite); after two tasks the loss is the one a static
  count gives."""
  model = mlp()
  params = model.init(jax.random.key(0))
  kw = dict(input_shape=(6,), num_outputs=4, num_tasks=3, classes_per_task=2, memory_per_task=6)
  method = getattr(methods, name)(model.apply, tasks_per_step='one', **kw)
  assert not method.static_task_count
  assert getattr(methods, name)(model.apply, tasks_per_step='all', **kw).static_task_count
  theta = perturb(params, seed=9)
  state = method.init(params)
  value, grads = jax.value_and_grad(method.loss)(theta, state, jax.random.key(0), None)
  assert float(value) == 0.0
  assert all(float(jnp.max(jnp.abs(g))) == 0.0 for g in jax.tree.leaves(grads))
  for t, classes in enumerate([(0, 1), (2, 3)]):
    state = method.consolidate(
      state, perturb(params, seed=t), task(classes=classes, task_index=t, seed=t), jax.random.key(t)
    )
  traced = jax.jit(method.loss, static_argnums=3)(theta, state, jax.random.key(3), None)
  assert float(traced) > 0
  np.testing.assert_allclose(traced, method.loss(theta, state, jax.random.key(3), 2), rtol=1e-6)


@pytest.mark.parametrize('name', ['fromp', 'kpriors', 'ewc_fr_replay'])
def test_all_past_tasks_in_fixed_shapes_is_the_static_count_loss(name):
  """Issue 16 item 3: tasks_per_step='all_masked' evaluates every slot and weights unfinished tasks'
  by 0: no static count (one compile per stream), and the same loss and gradient as 'all' with the
  count given statically, before any task (exactly 0) and after two of three."""
  model = mlp()
  params = model.init(jax.random.key(0))
  kw = dict(input_shape=(6,), num_outputs=4, num_tasks=3, classes_per_task=2, memory_per_task=6)
  masked = getattr(methods, name)(model.apply, tasks_per_step='all_masked', **kw)
  static = getattr(methods, name)(model.apply, tasks_per_step='all', **kw)
  assert not masked.static_task_count
  theta = perturb(params, seed=9)
  state = masked.init(params)
  value, grads = jax.value_and_grad(masked.loss)(theta, state, jax.random.key(0), None)
  assert float(value) == 0.0
  assert all(float(jnp.max(jnp.abs(g))) == 0.0 for g in jax.tree.leaves(grads))
  for t, classes in enumerate([(0, 1), (2, 3)]):
    state = masked.consolidate(
      state, perturb(params, seed=t), task(classes=classes, task_index=t, seed=t), jax.random.key(t)
    )
  key = jax.random.key(3)
  value, grads = jax.jit(jax.value_and_grad(masked.loss), static_argnums=3)(theta, state, key, None)
  expected, expected_grads = jax.value_and_grad(static.loss)(theta, state, key, 2)
  assert float(expected) > 0
  np.testing.assert_allclose(value, expected, rtol=1e-5)
  for g, e in zip(jax.tree.leaves(grads), jax.tree.leaves(expected_grads)):
    np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-7)


def test_a_stream_of_equal_tasks_compiles_one_epoch_function_with_one_past_task_per_step():
  """The trainer compiles `train_epoch` once per distinct `num_past`: once for the stream with
  tasks_per_step='one' or 'all_masked', once per task with 'all' (the mirror)."""
  config = load_module('configs/cl/split_digits.py').get_config('quick')
  config.method, config.num_tasks, config.classes_per_task = 'kpriors', 3, 2
  config.max_train_examples_per_task = 64
  for tasks_per_step, compiles in (('one', 1), ('all_masked', 1), ('all', 3)):
    config.kpriors.tasks_per_step = tasks_per_step
    builders.validate_config(config)
    stream = builders.build_stream(config)
    learner, method = builders.build_learner(config, stream)
    compiled = train.compile_learner(learner)
    train.run_stream(
      compiled, stream, builders.seed_keys(config), epochs=1, **train.method_flags(method)
    )
    assert compiled.train_epoch._cache_size() == compiles, tasks_per_step
