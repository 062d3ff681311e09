"""From a config to the objects of a run: checks, stream, model, method, optimizer, learner.

`validate_config` runs before any data is read or anything is compiled; every error names the config
field and the values it allows.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import optax

from cl import data as cl_data
from cl import ivon, methods, models, streams, train
from cljax import mesh as mesh_lib
from cljax.config import ConfigError, check_choice, check_positive, check_range

OPTIMIZERS = ('auto', 'adam', 'sgd', 'ivon', 'vogn')


def optimizer_name(config) -> str:
  """The optimizer a config resolves to: 'auto' means ivon for method vcl and adam otherwise."""
  name = config.optimizer.name
  if name == 'auto':
    return 'ivon' if config.method == 'vcl' else 'adam'
  return name


HESS_APPROX = {'ivon': ('price', 'gradsq'), 'vogn': ('ggn',)}


def resolve_chosen(config) -> None:
  """Fills, in place, each hyper-parameter the config left None with the value chosen for
  `config.method` in `config.chosen` (`configs/cl/common.use_chosen`: a benchmark's validation-chosen
  values as its defaults). A no-op for configs without `chosen`."""
  chosen = config.get('chosen')
  if not chosen or config.method not in chosen:
    return
  for group, fields in chosen[config.method].items():
    for name, value in fields.items():
      if config[group][name] is None:
        config[group][name] = value


def validate_config(config) -> None:
  """Raises `ConfigError` naming the first bad field. Resolves the chosen defaults first
  (`resolve_chosen`)."""
  resolve_chosen(config)
  check_choice('dataset', config.dataset, cl_data.DATASETS)
  check_choice('stream', config.stream, streams.STREAMS)
  allowed_scenarios = ('task', 'class') if config.stream == 'split' else ('domain',)
  check_choice('scenario', config.scenario, allowed_scenarios)
  check_choice('model', config.model, models.MODELS)
  check_choice('method', config.method, methods.METHODS)
  check_choice('optimizer.name', config.optimizer.name, OPTIMIZERS)
  check_positive('optimizer.learning_rate', config.optimizer.learning_rate)
  check_positive('num_tasks', config.num_tasks, integer=True)
  check_positive('classes_per_task', config.classes_per_task, integer=True)
  check_positive('batch_size', config.batch_size, integer=True)
  check_positive('keep_checkpoints', config.keep_checkpoints, integer=True, allow_zero=True)
  check_positive('epochs', config.epochs, integer=True, allow_zero=True)
  check_positive('num_seeds', config.num_seeds, integer=True)
  check_positive('seed', config.seed, integer=True, allow_zero=True)
  check_positive('data_seed', config.data_seed, integer=True, allow_zero=True)
  check_range('val_fraction', config.val_fraction, 0.0, 0.5)
  check_positive(
    'max_train_examples_per_task', config.max_train_examples_per_task, integer=True, allow_zero=True
  )
  check_positive(
    'max_test_examples_per_task', config.max_test_examples_per_task, integer=True, allow_zero=True
  )
  if config.model == 'mlp':
    if not config.hidden_sizes or not all(
      isinstance(h, int) and h > 0 for h in config.hidden_sizes
    ):
      raise ConfigError(
        f'config.hidden_sizes must be a non-empty tuple of positive integers, '
        f'got {config.hidden_sizes!r}'
      )
  if config.method in ('ewc', 'online_ewc'):
    check_positive('ewc.ewc_lambda', config.ewc.ewc_lambda, allow_zero=True)
    check_positive('ewc.fisher_num_examples', config.ewc.fisher_num_examples, integer=True)
    check_choice('ewc.fisher_type', config.ewc.fisher_type, methods.FISHER_TYPES)
    check_range('ewc.gamma', config.ewc.gamma, 0.0, 1.0)
  if config.method == 'si':
    check_positive('si.c', config.si.c, allow_zero=True)
    check_positive('si.xi', config.si.xi)
  if optimizer_name(config) in ('ivon', 'vogn'):
    c = config.ivon
    check_positive('ivon.learning_rate', c.learning_rate)
    check_positive('ivon.ess', c.ess, allow_zero=True)
    check_positive('ivon.hess_init', c.hess_init)
    check_range('ivon.beta1', c.beta1, 0.0, 1.0)
    check_range('ivon.beta2', c.beta2, 0.0, 1.0)
    check_positive('ivon.weight_decay', c.weight_decay)
    check_positive('ivon.clip_radius', c.clip_radius)
    check_positive('ivon.mc_samples', c.mc_samples, integer=True)
    check_positive('ivon.eval_samples', c.eval_samples, integer=True, allow_zero=True)
    if optimizer_name(config) == 'ivon':
      check_choice('ivon.hess_approx', c.hess_approx, HESS_APPROX['ivon'])
  if config.method == 'vcl':
    check_choice('optimizer.name (method vcl)', config.optimizer.name, ('auto', 'ivon', 'vogn'))
    if not config.reset_optimizer:
      raise ConfigError(
        'config.reset_optimizer must be True for method vcl (each task starts IVON '
        'afresh with the propagated prior), got False'
      )
  memory_config = {
    'fromp': 'fromp',
    'fromp_l2': 'fromp',
    'kpriors': 'kpriors',
    'ewc_fr_replay': 'ewc_fr_replay',
  }.get(config.method)
  if memory_config:
    c = config[memory_config]
    # The sensitivity score needs FROMP's posterior variance; the other methods keep none.
    rules = [r for r in methods.SELECTION_RULES if memory_config == 'fromp' or r != 'sensitivity']
    check_positive(f'{memory_config}.memory_per_task', c.memory_per_task, integer=True)
    check_positive(f'{memory_config}.tau', c.tau, allow_zero=True)
    check_choice(f'{memory_config}.selection', c.selection, rules)
    check_choice(f'{memory_config}.tasks_per_step', c.tasks_per_step, methods.TASKS_PER_STEP)
    check_choice(f'{memory_config}.targets', c.targets, methods.TARGETS)
  if config.method == 'vcl':
    check_range('vcl.prior_scale', config.vcl.prior_scale, 0.0, 1.0)
  if config.method in ('fromp', 'fromp_l2'):
    check_positive('fromp.prior_precision', config.fromp.prior_precision)
    check_positive('fromp.jitter', config.fromp.jitter)
    check_positive('fromp.relative_jitter', config.fromp.relative_jitter, allow_zero=True)
    check_positive(
      'fromp.ggn_num_examples', config.fromp.ggn_num_examples, integer=True, allow_zero=True
    )
  if config.method == 'kpriors':
    check_positive('kpriors.delta', config.kpriors.delta, allow_zero=True)
  if config.method == 'ewc_fr_replay':
    c = config.ewc_fr_replay
    check_positive('ewc_fr_replay.ewc_lambda', c.ewc_lambda, allow_zero=True)
    check_positive('ewc_fr_replay.replay_weight', c.replay_weight, allow_zero=True)
    check_range('ewc_fr_replay.m2_fraction', c.m2_fraction, 0.0, 1.0)
    check_positive('ewc_fr_replay.temperature', c.temperature)
    check_positive('ewc_fr_replay.fisher_num_examples', c.fisher_num_examples, integer=True)
    check_choice('ewc_fr_replay.fisher_type', c.fisher_type, methods.FISHER_TYPES)
  if config.method == 'replay':
    check_positive('replay.memory_size', config.replay.memory_size, integer=True)
    check_positive('replay.batch_size', config.replay.batch_size, integer=True)
    check_positive('replay.weight', config.replay.weight, allow_zero=True)
    check_choice('replay.selection', config.replay.selection, methods.MEMORY_SELECTIONS)


def _subsample(x, y, limit, rng):
  if not limit or len(y) <= limit:
    return x, y
  idx = np.sort(rng.permutation(len(y))[:limit])
  return x[idx], y[idx]


def build_stream(config) -> streams.TaskStream:
  """The task stream; its random choices (class order, permutations, validation split, subsampling)
  follow `config.data_seed`, which every seed of a run shares, so seed i trains on the same stream
  alone or in any group of seeds."""
  dataset = cl_data.load_dataset(
    config.dataset, data_dir=config.data_dir or None, download=config.download
  )
  if config.stream == 'split':
    stream = streams.split_stream(
      dataset,
      classes_per_task=config.classes_per_task,
      num_tasks=config.num_tasks,
      scenario=config.scenario,
      val_fraction=config.val_fraction,
      seed=config.data_seed,
    )
  elif config.stream == 'permuted':
    stream = streams.permuted_stream(
      dataset, num_tasks=config.num_tasks, val_fraction=config.val_fraction, seed=config.data_seed
    )
  else:
    stream = streams.rotated_stream(
      dataset,
      num_tasks=config.num_tasks,
      max_angle=config.max_angle,
      val_fraction=config.val_fraction,
      seed=config.data_seed,
    )
  if config.max_train_examples_per_task or config.max_test_examples_per_task:
    rng = np.random.default_rng(config.data_seed)
    tasks = []
    for task in stream.tasks:
      x_train, y_train = _subsample(
        task.x_train, task.y_train, config.max_train_examples_per_task, rng
      )
      x_test, y_test = _subsample(task.x_test, task.y_test, config.max_test_examples_per_task, rng)
      tasks.append(
        dataclasses.replace(task, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
      )
    stream = dataclasses.replace(stream, tasks=tuple(tasks))
  return stream


def build_optimizer(config, stream: streams.TaskStream):
  """`(optimizer, variational)`: an optax transform, and `train.Variational` for IVON / VOGN."""
  c = config.optimizer
  name = optimizer_name(config)
  if name == 'adam':
    return optax.adam(c.learning_rate), None
  if name == 'sgd':
    return optax.sgd(c.learning_rate, momentum=c.momentum or None), None
  v = config.ivon
  # The initial ess; VCL (and any method with prepare_optimizer) may reset it per task.
  ess = v.ess or float(len(stream.tasks[0].y_train))
  # IVON (its Hessian estimate from config.ivon.hess_approx) or VOGN (the per-example GGN).
  make, hess_approx = (ivon.ivon, v.hess_approx) if name == 'ivon' else (ivon.vogn, 'ggn')
  tx = make(
    v.learning_rate,
    ess,
    hess_init=v.hess_init,
    beta1=v.beta1,
    beta2=v.beta2,
    weight_decay=v.weight_decay,
    clip_radius=v.clip_radius,
  )
  return tx, train.Variational(mc_samples=v.mc_samples, hess_approx=hess_approx)


def build_learner(
  config, stream: streams.TaskStream, mesh=None
) -> tuple[train.Learner, methods.Method]:
  """The learner and its method; with a `mesh` whose `data` axis has several devices, training
  minibatches are split over it (`train.make_learner(batch_sharding=...)`); with a `model` axis, the
  train state's large leaves are kept split over it (`cljax.mesh.constrain_state`; compile with
  `compile_learner(config, learner, mesh)`, which uses the same `config.mesh.model_min_size`)."""
  resolve_chosen(config)
  model = models.make_model(
    config.model,
    stream.input_shape,
    stream.num_outputs,
    hidden_sizes=tuple(config.hidden_sizes),
    channels=tuple(config.channels),
    dense_size=config.dense_size,
  )
  method = methods.make_method(
    config,
    model.apply,
    input_shape=stream.input_shape,
    num_outputs=stream.num_outputs,
    num_tasks=stream.num_tasks,
    classes_per_task=len(stream.tasks[0].classes),
  )
  optimizer, variational = build_optimizer(config, stream)
  eval_samples = config.ivon.eval_samples if variational is not None else 0
  batch_sharding = state_constraint = None
  if mesh is not None and mesh.shape['data'] > 1:
    batch_sharding = mesh_lib.data_sharding(mesh)
  if mesh_lib.shards_model(mesh):
    min_size = mesh_lib.min_size_from_config(config.mesh)
    state_constraint = lambda state: mesh_lib.constrain_state(state, mesh, min_size)
  learner = train.make_learner(
    model,
    method,
    optimizer,
    batch_size=config.batch_size,
    reset_optimizer=config.reset_optimizer,
    variational=variational,
    eval_samples=eval_samples,
    batch_sharding=batch_sharding,
    state_constraint=state_constraint,
  )
  return learner, method


def compile_learner(config, learner: train.Learner, mesh=None) -> train.CompiledLearner:
  """`train.compile_learner` with the config's `mesh.model_min_size` and `seed_batching`."""
  return train.compile_learner(
    learner, mesh, mesh_lib.min_size_from_config(config.mesh), config.seed_batching
  )


def seed_keys(config, mesh=None) -> jax.Array:
  """[num_seeds] typed keys for seeds config.seed, config.seed + 1, ...; split over the mesh's
  `seed` axis when one is given."""
  keys = jax.vmap(jax.random.key)(np.arange(config.seed, config.seed + config.num_seeds))
  if mesh is None:
    return keys
  mesh_lib.check_seeds(config.num_seeds, mesh)
  return mesh_lib.shard_leading(keys, mesh)


def build_mesh(config):
  """`config.mesh` to a mesh (or None), checked against `num_seeds` and `seed_batching`; ConfigError
  otherwise."""
  mesh = mesh_lib.from_config(config.mesh)
  if mesh is not None:
    mesh_lib.check_seeds(config.num_seeds, mesh)
  mesh_lib.check_seed_batching(config.seed_batching, mesh)
  return mesh
