"""The generic continual-learning trainer.

A `Learner` is four pure functions built from a model, a method and an optax optimizer. `run_stream`
drives them over a task stream for a batch of seeds at once: every function is `jax.vmap`-ed over the
leading seed axis of the state and keys and `jax.jit`-ed once, and one epoch is a `lax.scan` over
minibatches inside the compiled function. The host loop only moves task data to the device, evaluates
and reports.

Randomness: seed s uses `key_s = jax.random.key(seed_s)`; the initial params use `fold_in(key_s, 0)` and
task t uses `fold_in(key_s, t + 1)`, split into one key per epoch and one for consolidation. A run
resumed from the checkpoint taken after task t therefore repeats exactly what an uninterrupted run does.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from cl import ivon
from cl.methods.base import Method, TaskData, cross_entropy
from cl.models import Model, masked_logits
from cl.streams import TaskStream
from cljax import divergence
from cljax import mesh as mesh_lib
from cljax.distributed import to_host


@struct.dataclass
class TrainState:
  params: Any
  opt_state: Any
  method_state: Any
  step: jax.Array  # int32, optimizer steps taken over the whole run


@struct.dataclass
class RunState:
  """Everything a run needs to continue after `tasks_done` tasks; leading axis = seed."""

  train_state: TrainState
  accuracy_matrix: jax.Array  # [S, T, T], row i after task i, NaN where not reached yet
  val_accuracy_matrix: jax.Array  # [S, T, T] on the validation splits
  accuracy_before: jax.Array  # [S, T], before any training
  val_accuracy_before: jax.Array  # [S, T]
  tasks_done: jax.Array  # [] int32


class Variational(NamedTuple):
  """Marks the optimizer as IVON / VOGN: gradients are taken at weights sampled from its posterior."""

  mc_samples: int = 1
  hess_approx: str = 'price'  # 'price' | 'gradsq' (IVON) or 'ggn' (VOGN: per-example squared grads)


class Learner(NamedTuple):
  init: Callable[[jax.Array], TrainState]
  begin_task: Callable[[TrainState, TaskData], TrainState]
  train_epoch: Callable[[TrainState, TaskData, jax.Array, int | None], tuple[TrainState, dict]]
  consolidate: Callable[[TrainState, TaskData, jax.Array], TrainState]
  accuracy: Callable[[TrainState, jax.Array, jax.Array, jax.Array], jax.Array]


def make_learner(
  model: Model,
  method: Method,
  optimizer: optax.GradientTransformation,
  *,
  batch_size: int,
  reset_optimizer: bool = True,
  eval_batch_size: int = 1000,
  variational: Variational | None = None,
  eval_samples: int = 0,
  batch_sharding: jax.sharding.Sharding | None = None,
  state_constraint: Callable[[TrainState], TrainState] | None = None,
) -> Learner:
  """Builds the pure functions of one seed's training (vmap them for several seeds).

  `batch_sharding` (e.g. `cljax.mesh.data_sharding(mesh)`) splits every training minibatch's
  examples over a mesh's `data` axis (data parallelism: the per-example work is split, the gradient
  sums are reduced across devices by the compiler); under `compile_learner(..., mesh)` the seed axis
  goes over `seed` as well. `state_constraint` (e.g. `cljax.mesh.constrain_state` on a mesh with a
  `model` axis) is applied to the train state after every step, so that state the mesh splits stays
  split through the epoch's loop.

  With `variational` set, `optimizer` is `cl.ivon.ivon(...)` or `cl.ivon.vogn(...)`: each step draws
  `mc_samples` weights from the posterior held in the optimizer state, and the params are its mean.
  Accuracy is then computed from the mean (`eval_samples=0`) or from the softmax averaged over
  `eval_samples` posterior samples (drawn with a fixed key, so evaluation is deterministic).
  """
  if eval_samples and variational is None:
    raise ValueError('eval_samples > 0 needs a variational optimizer (ivon or vogn)')

  def init(key):
    params = model.init(key)
    return TrainState(
      params=params,
      opt_state=optimizer.init(params),
      method_state=method.init(params),
      step=jnp.zeros((), jnp.int32),
    )

  def begin_task(state, data):
    opt_state = optimizer.init(state.params) if reset_optimizer else state.opt_state
    if method.prepare_optimizer is not None:
      opt_state = method.prepare_optimizer(state.method_state, state.params, opt_state, data)
    return state.replace(opt_state=opt_state)

  def data_loss(params, x, y, mask):
    return cross_entropy(model.apply(params, x), y, mask)

  def variational_grads(state, batch, key, num_past):
    """Loss, regulariser and gradients at posterior samples, plus the optimizer's curvature input."""
    x, y, mask = batch
    sample_key, loss_key = jax.random.split(key)
    if variational.hess_approx == 'ggn':
      # VOGN: per-example squared gradients of the data loss at the sampled weights; the method's
      # regulariser (if any) is differentiated at the mean.
      loss, grads, hess = ivon.value_and_grad_and_sq_grad(
        lambda p, ex: data_loss(p, ex[0][None], ex[1][None], ex[2][None]),
        sample_key,
        state.params,
        state.opt_state,
        (x, y, mask),
        mc_samples=variational.mc_samples,
      )
      reg, reg_grads = jax.value_and_grad(method.loss)(
        state.params, state.method_state, loss_key, num_past
      )
      return loss, reg, jax.tree.map(jnp.add, grads, reg_grads), grads, {'hess_estimate': hess}

    def total(params):
      loss = data_loss(params, x, y, mask)
      reg = method.loss(params, state.method_state, loss_key, num_past)
      return loss + reg, (loss, reg)

    (_, (loss, reg)), grads, hess = ivon.value_and_grad_and_hess(
      total,
      sample_key,
      state.params,
      state.opt_state,
      mc_samples=variational.mc_samples,
      hess_approx=variational.hess_approx,
      has_aux=True,
    )
    # Aux comes back per MC sample; SI-style hooks see the total gradient (no separate data gradient).
    return jnp.mean(loss), jnp.mean(reg), grads, grads, {'hess_estimate': hess}

  def train_step(state, batch, key, num_past):
    x, y, mask = batch
    if variational is not None:
      loss, reg, grads, data_grads, extra = variational_grads(state, batch, key, num_past)
    else:
      loss, data_grads = jax.value_and_grad(data_loss)(state.params, x, y, mask)
      reg, reg_grads = jax.value_and_grad(method.loss)(
        state.params, state.method_state, key, num_past
      )
      grads = jax.tree.map(jnp.add, data_grads, reg_grads)
      extra = {}
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params, **extra)
    params = optax.apply_updates(state.params, updates)
    method_state = method.after_step(state.method_state, state.params, params, data_grads)
    new_state = TrainState(
      params=params, opt_state=opt_state, method_state=method_state, step=state.step + 1
    )
    return new_state, {'loss': loss, 'regularizer': reg}

  def train_epoch(state, data: TaskData, key, num_past=None):
    """One pass over `data` in random minibatches; `num_past` (static) goes to `method.loss`."""
    n = data.y.shape[0]
    b = min(batch_size, n)
    steps = n // b
    perm_key, step_key = jax.random.split(key)
    batches = jax.random.permutation(perm_key, n)[: steps * b].reshape(steps, b)

    def body(state, inputs):
      idx, k = inputs
      batch = (data.x[idx], data.y[idx], data.mask[idx])
      if batch_sharding is not None:
        batch = jax.lax.with_sharding_constraint(batch, batch_sharding)
      state, metrics = train_step(state, batch, k, num_past)
      if state_constraint is not None:
        state = state_constraint(state)
      return state, metrics

    state, metrics = jax.lax.scan(body, state, (batches, jax.random.split(step_key, steps)))
    return state, jax.tree.map(jnp.mean, metrics)

  def consolidate(state, data, key):
    return state.replace(
      method_state=method.consolidate(
        state.method_state, state.params, data, key, opt_state=state.opt_state
      )
    )

  def accuracy(state, x, y, mask):
    masked_apply = lambda p, xb: masked_logits(model.apply(p, xb), mask[None])
    if eval_samples:
      probs = ivon.predictive_probs(
        masked_apply, jax.random.key(0), state.params, state.opt_state, x, eval_samples
      )
      pred = jnp.argmax(probs, -1)
    else:
      pred = jax.lax.map(
        lambda xb: jnp.argmax(masked_apply(state.params, xb[None])[0]),
        x,
        batch_size=min(eval_batch_size, x.shape[0]),
      )
    return jnp.mean((pred == y).astype(jnp.float32))

  return Learner(
    init=init,
    begin_task=begin_task,
    train_epoch=train_epoch,
    consolidate=consolidate,
    accuracy=accuracy,
  )


def method_flags(method: Method) -> dict:
  """The keyword arguments of `run_stream` that a method decides."""
  return dict(cumulative=method.cumulative, static_task_count=method.static_task_count)


def task_keys(keys: jax.Array, task_index: int, epochs: int) -> tuple[jax.Array, jax.Array]:
  """Per-seed keys for one task: `[epochs, S]` epoch keys and `[S]` consolidation keys."""
  task = jax.vmap(lambda k: jax.random.fold_in(k, task_index + 1))(keys)
  split = jax.vmap(lambda k: jax.random.split(k, epochs + 1))(task)  # [S, epochs + 1]
  return jnp.swapaxes(split[:, :epochs], 0, 1), split[:, epochs]


def _place(x, mesh):
  """A host array on the device(s): whole on every device of `mesh` (a global array, which is what
  jit takes across processes), or on the default device."""
  if mesh is None:
    return jnp.asarray(x)
  return mesh_lib.replicate(np.asarray(x), mesh)


def training_data(stream: TaskStream, task_index: int, cumulative: bool, mesh=None) -> TaskData:
  """Task `task_index`'s training data, or the union of tasks 0..task_index when `cumulative`."""
  tasks = stream.tasks[: task_index + 1] if cumulative else [stream.tasks[task_index]]
  x = np.concatenate([t.x_train for t in tasks])
  y = np.concatenate([t.y_train for t in tasks]).astype(np.int32)
  mask = np.concatenate(
    [np.broadcast_to(t.output_mask, (len(t.y_train), stream.num_outputs)) for t in tasks]
  )
  return TaskData(
    x=_place(x, mesh),
    y=_place(y, mesh),
    mask=_place(mask, mesh),
    task_index=_place(np.asarray(task_index, np.int32), mesh),
  )


class CompiledLearner(NamedTuple):
  """The learner's functions, vmapped over seeds and jitted once."""

  init: Callable
  begin_task: Callable
  train_epoch: Callable
  consolidate: Callable
  accuracy: Callable


def compile_learner(
  learner: Learner,
  mesh: jax.sharding.Mesh | None = None,
  model_min_size: int | None = None,
  seed_batching: str = 'vmap',
) -> CompiledLearner:
  """`train_epoch(state, data, keys, num_past)` takes `num_past` as a static int (or None).

  With `mesh` (`cljax.mesh`), the seed axis of every function is mapped to the mesh's `seed`
  axis (`spmd_axis_name`, so constraints inside the learner get it too) and every output is split
  over it; the caller places the keys (`cljax.mesh.shard_leading`). On a mesh with a `model`
  axis the train state's leaves of at least `model_min_size` elements per seed are also split over
  it (`cljax.mesh.state_shardings`; build the learner with the matching `state_constraint`).

  `seed_batching` (`cljax.mesh.over_seeds`): 'vmap' batches the seeds (fast; seed i of n equals
  seed i alone to rounding, which training can amplify); 'map' runs one seed's computation per seed,
  so seed i is the same run bit for bit alone, in any group and on a mesh's `seed` axis."""
  mesh_lib.check_seed_batching(seed_batching, mesh)
  over = lambda fn, in_axes: mesh_lib.over_seeds(fn, in_axes, seed_batching, mesh)
  state_out = per_seed = None

  def jit(fn, out=None, **kw):
    """jax.jit; under a mesh with `out_shardings` (`out`, default: split over `seed`)."""
    if mesh is not None:
      kw['out_shardings'] = per_seed if out is None else out
    return jax.jit(fn, **kw)

  if mesh is not None:
    min_size = mesh_lib.DEFAULT_MIN_SIZE if model_min_size is None else model_min_size
    per_seed = mesh_lib.seed_sharding(mesh)
    # Shardings follow one seed's shapes, which do not depend on the number of seeds.
    state_out = mesh_lib.state_shardings(
      jax.eval_shape(learner.init, jax.random.key(0)), mesh, min_size
    )

  def train_epoch(state, data, keys, num_past):
    # One flag per seed for the divergence guard, computed here: no extra sync per step.
    def one(s, d, k):
      s, metrics = learner.train_epoch(s, d, k, num_past)
      return s, dict(metrics, params_finite=divergence.all_finite(s.params))

    return over(one, (0, None, 0))(state, data, keys)

  return CompiledLearner(
    init=jit(over(learner.init, (0,)), state_out),
    begin_task=jit(over(learner.begin_task, (0, None)), state_out),
    train_epoch=jit(train_epoch, (state_out, per_seed), static_argnums=3, donate_argnums=0),
    consolidate=jit(over(learner.consolidate, (0, None, 0)), state_out, donate_argnums=0),
    accuracy=jit(over(learner.accuracy, (0, None, None, None))),
  )


def _eval_sets(stream: TaskStream, split: str, mesh=None):
  """Device copies of every task's `split` ('test' or 'val') data, made once per run."""
  sets = []
  for task in stream.tasks:
    x, y = (task.x_test, task.y_test) if split == 'test' else (task.x_val, task.y_val)
    sets.append(
      (_place(x, mesh), _place(np.asarray(y, np.int32), mesh), _place(task.output_mask, mesh))
    )
  return sets


def _evaluate(compiled: CompiledLearner, state: TrainState, eval_sets) -> np.ndarray:
  """[S, T] accuracies of every seed on every task's evaluation set (gathered from every process)."""
  cols = [compiled.accuracy(state, x, y, mask) for x, y, mask in eval_sets]
  return np.stack([to_host(c) for c in cols], axis=1)


def init_run(
  compiled: CompiledLearner, stream: TaskStream, keys: jax.Array, eval_sets=None, mesh=None
) -> RunState:
  """Initial params for every seed and the accuracy row before any training.

  `eval_sets`: `(test, val)` device copies from `_eval_sets`, when the caller already has them.
  `mesh`: the mesh `keys` are placed on (`compile_learner(learner, mesh)`); host arrays go on it
  too (replicated), as a multi-process run needs."""
  test_sets, val_sets = eval_sets or (
    _eval_sets(stream, 'test', mesh),
    _eval_sets(stream, 'val', mesh),
  )
  init_keys = jax.vmap(lambda k: jax.random.fold_in(k, 0))(keys)
  state = compiled.init(init_keys)
  s, t = keys.shape[0], stream.num_tasks
  nan = np.full((s, t, t), np.nan, np.float32)
  before = _evaluate(compiled, state, test_sets)
  val_before = _evaluate(compiled, state, val_sets)
  return RunState(
    train_state=state,
    accuracy_matrix=_place(nan, mesh),
    val_accuracy_matrix=_place(nan, mesh),
    accuracy_before=_place(before, mesh),
    val_accuracy_before=_place(val_before, mesh),
    tasks_done=_place(np.zeros((), np.int32), mesh),
  )


def run_stream(
  learner: Learner | CompiledLearner,
  stream: TaskStream,
  keys: jax.Array,
  *,
  epochs: int,
  cumulative: bool = False,
  static_task_count: bool = False,
  run_state: RunState | None = None,
  progress_fn: Callable[[int, int, dict], None] = lambda *a: None,
  task_end_fn: Callable[[RunState], None] = lambda r: None,
  mesh=None,
  seeds=None,
  phases=None,
) -> RunState:
  """Trains every seed in `keys` ([S] typed keys) on the stream, task after task.

  Starts from `run_state` (e.g. restored from a checkpoint) when given, else from scratch.
  `cumulative` and `static_task_count` come from the method (`Method.cumulative`, ...): pass
  `**train.method_flags(method)`.
  `progress_fn(task_index, epoch, metrics)` is called after each epoch with per-seed metrics;
  `task_end_fn(run_state)` after each task (checkpointing goes there). Returns the final `RunState`.
  `mesh`: the mesh the learner was compiled for (`compile_learner`) and the keys placed on; the
  task data and the accuracy matrices are placed on it (replicated), which multi-process runs need.
  A non-finite loss term or parameter after an epoch raises `cljax.divergence.DivergenceError`
  naming the task, the epoch, the terms and the `seeds` (the seeds the keys were made from; default
  their indices), before that task's checkpoint. `phases` (a `cljax.timing.Phases`) gets the
  seconds of placing each task's data ('data'), training ('training': the task's start, its
  epochs and its consolidation) and evaluation ('evaluation'); compilation inside them is its own.
  """
  timed = phases or (lambda name: contextlib.nullcontext())
  compiled = learner if isinstance(learner, CompiledLearner) else compile_learner(learner, mesh)
  num_past_fn = (lambda t: t) if static_task_count else (lambda t: None)
  test_sets, val_sets = _eval_sets(stream, 'test', mesh), _eval_sets(stream, 'val', mesh)
  if run_state is None:
    run_state = init_run(compiled, stream, keys, (test_sets, val_sets), mesh)
  state = run_state.train_state
  for t in range(int(run_state.tasks_done), stream.num_tasks):
    with timed('data'):
      data = training_data(stream, t, cumulative, mesh)
    epoch_keys, consolidate_key = task_keys(keys, t, epochs)
    with timed('training'):
      state = compiled.begin_task(state, data)
    for epoch in range(epochs):
      with timed('training'):  # to_host waits for the epoch
        state, metrics = compiled.train_epoch(state, data, epoch_keys[epoch], num_past_fn(t))
        metrics = jax.tree.map(to_host, metrics)
      divergence.check(
        f'task {t + 1}, epoch {epoch + 1}',
        metrics,
        metrics.pop('params_finite'),
        seeds=range(keys.shape[0]) if seeds is None else seeds,
      )
      progress_fn(t, epoch, metrics)
    with timed('training'):
      state = jax.block_until_ready(compiled.consolidate(state, data, consolidate_key))
    del data
    with timed('evaluation'):
      test_row = _evaluate(compiled, state, test_sets)
      val_row = _evaluate(compiled, state, val_sets)
    matrix = np.array(to_host(run_state.accuracy_matrix))
    val_matrix = np.array(to_host(run_state.val_accuracy_matrix))
    matrix[:, t], val_matrix[:, t] = test_row, val_row
    run_state = RunState(
      train_state=state,
      accuracy_matrix=_place(matrix, mesh),
      val_accuracy_matrix=_place(val_matrix, mesh),
      accuracy_before=run_state.accuracy_before,
      val_accuracy_before=run_state.val_accuracy_before,
      tasks_done=_place(np.asarray(t + 1, np.int32), mesh),
    )
    task_end_fn(run_state)
  return run_state


def abstract_run_state(
  compiled: CompiledLearner, stream: TaskStream, keys: jax.Array, mesh=None
) -> RunState:
  """Shapes and dtypes of the `RunState` that `init_run` would build (a restore target); with `mesh`
  also its shardings (the train state split over `seed`, the accuracy matrices replicated)."""
  init_keys = jax.vmap(lambda k: jax.random.fold_in(k, 0))(keys)
  state = jax.eval_shape(compiled.init, init_keys)  # with `init`'s out_shardings under a mesh
  s, t = keys.shape[0], stream.num_tasks
  whole = None
  if mesh is not None:
    whole = mesh_lib.replicated(mesh)
  f32 = lambda *shape: jax.ShapeDtypeStruct(shape, jnp.float32, sharding=whole)
  return RunState(
    train_state=state,
    accuracy_matrix=f32(s, t, t),
    val_accuracy_matrix=f32(s, t, t),
    accuracy_before=f32(s, t),
    val_accuracy_before=f32(s, t),
    tasks_done=jax.ShapeDtypeStruct((), jnp.int32, sharding=whole),
  )
