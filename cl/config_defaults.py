"""Defaults shared by the continual-learning configs; each config file overrides what it needs."""

import ml_collections

from cl.hparams import BASELINES, BAYES_DUALITY, METHOD_DEFAULTS


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  # Data and stream.
  c.dataset = 'fashion_mnist'  # fashion_mnist | mnist | digits | blobs
  c.data_dir = ''  # directory with the IDX files; '' = Debian package dir or cache
  c.download = False  # download (SHA-256 verified) when the files are nowhere on disk
  c.stream = 'split'  # split | permuted | rotated
  c.scenario = 'task'  # split: task | class; permuted/rotated: domain
  c.num_tasks = 5
  c.classes_per_task = 2
  c.max_angle = 180.0  # rotated streams: task t rotates by t * max_angle / num_tasks
  c.val_fraction = 0.1  # validation split carved from each task's training data
  c.max_train_examples_per_task = 0  # 0 = all; a cap for quick runs
  c.max_test_examples_per_task = 0  # 0 = all
  # Model.
  c.model = 'mlp'  # mlp | cnn
  c.hidden_sizes = (256, 256)
  c.channels = (32, 64)
  c.dense_size = 256
  # Method.
  c.method = 'finetune'  # one of cl.hparams.METHODS
  c.ewc = ml_collections.ConfigDict(
    dict(ewc_lambda=100.0, gamma=1.0, fisher_num_examples=1024, fisher_type='sampled')
  )
  c.si = ml_collections.ConfigDict(dict(c=1.0, xi=1e-3))
  c.replay = ml_collections.ConfigDict(
    dict(memory_size=1000, batch_size=128, weight=1.0, selection='class_balanced')
  )
  c.vcl = ml_collections.ConfigDict(
    dict(prior_scale=1.0)
  )  # β: prior precision β·P_t; 1 = exact VCL
  for name, defaults in METHOD_DEFAULTS.items():  # fromp, kpriors, ewc_fr_replay
    c[name] = ml_collections.ConfigDict(defaults)
  # Optimisation. optimizer.name 'auto' = adam, or ivon for method vcl. IVON / VOGN take their
  # learning rate and the rest from c.ivon; adam / sgd use optimizer.learning_rate.
  c.optimizer = ml_collections.ConfigDict(dict(name='auto', learning_rate=1e-3, momentum=0.9))
  c.ivon = ml_collections.ConfigDict(
    dict(
      learning_rate=0.1,
      ess=0.0,  # λ; 0 = the current task's number of training examples
      hess_init=1.0,
      beta1=0.9,
      beta2=0.99999,
      weight_decay=1e-4,
      clip_radius=float('inf'),
      mc_samples=1,
      hess_approx='price',
      eval_samples=0,
    )
  )  # 0: predict with the posterior mean; S > 0: softmax averaged over S samples
  c.batch_size = 128
  c.epochs = 5
  c.reset_optimizer = True  # fresh optimizer state at the start of each task
  # Seeds.
  c.seed = 0
  c.num_seeds = 1  # seeds seed, seed+1, ... trained together with jax.vmap
  c.seed_batching = 'vmap'  # vmap (fast) | map: seed i bit-identical alone or in any group
  c.data_seed = 0  # the stream's random choices (permutations, validation split),
  # shared by every seed: seed i trains on the same stream alone or in a group
  # Device mesh (cljax/mesh.py): seeds split over `seed`, minibatch examples over `data`, each
  # seed's state leaves of >= model_min_size elements over `model` (for models too large for one
  # device); -1 = all remaining devices. num_seeds must be a multiple of the seed axis.
  c.mesh = ml_collections.ConfigDict(
    dict(enabled=False, seed=-1, data=1, model=1, model_min_size=2**14)
  )
  # Checkpoints: one per task boundary; the newest `keep_checkpoints` stay on disk (0: every one).
  # A one-seed Split-FMNIST checkpoint is about 7 MB (the model, the optimizer and the method's
  # per-task state, times the number of seeds).
  c.keep_checkpoints = 2
  # Reporting.
  c.joint_reference = ''  # results.json of a `joint` run on the same stream -> intransigence
  return c


VARIANTS = ('', 'quick', 'class', 'class,quick')


def apply_variant(c, arg):
  """`quick`: a tiny run for smoke tests (few examples, one epoch); `class`: class-incremental split
  (single head); `class,quick`: both."""
  if arg in (None, ''):
    return c
  if arg not in VARIANTS:
    raise ValueError(f'config variant must be one of {list(VARIANTS)}, got {arg!r}')
  parts = arg.split(',')
  if 'class' in parts:
    if c.stream != 'split':
      raise ValueError(f"config variant 'class' needs a split stream, this config has {c.stream!r}")
    c.scenario = 'class'
  if 'quick' in parts:
    c.max_train_examples_per_task = 512
    c.max_test_examples_per_task = 256
    c.epochs = 1
    c.ewc.fisher_num_examples = 128
    c.replay.memory_size = 100
    c.replay.batch_size = 32
    c.batch_size = 64
  return c


# The results table (docs/results.md): each method's main hyper-parameter as chosen on the validation splits by
# scripts/cl_results_table.py (docs/results/cl_results.json); a sweep with these reruns the table.
CHOSEN = {
  'split_fmnist': {
    'ewc': {'ewc.ewc_lambda': 1000.0},
    'online_ewc': {'ewc.ewc_lambda': 1000.0},
    'si': {'si.c': 10.0},
    'vcl': {'vcl.prior_scale': 0.3},
    'fromp': {'fromp.tau': 10000.0},
    'fromp_l2': {'fromp.tau': 10000.0},
    'kpriors': {'kpriors.tau': 3.0},
    'ewc_fr_replay': {'ewc_fr_replay.tau': 3.0, 'ewc_fr_replay.replay_weight': 3.0},
  },
  'split_fmnist:class': {
    'ewc': {'ewc.ewc_lambda': 1.0},
    'online_ewc': {'ewc.ewc_lambda': 10000.0},
    'si': {'si.c': 100.0},
    'vcl': {'vcl.prior_scale': 1.0},
    'fromp': {'fromp.tau': 100000.0},
    'fromp_l2': {'fromp.tau': 10000.0},
    'kpriors': {'kpriors.tau': 1.0},
    'ewc_fr_replay': {'ewc_fr_replay.tau': 1.0, 'ewc_fr_replay.replay_weight': 1.0},
  },
  'permuted_fmnist': {
    'ewc': {'ewc.ewc_lambda': 100.0},
    'online_ewc': {'ewc.ewc_lambda': 10.0},
    'si': {'si.c': 0.01},
    'vcl': {'vcl.prior_scale': 0.1},
    # FROMP and K-priors: tau x memory per task searched at 10 epochs per task (docs/results.md);
    # FROMP-L2 keeps the 3-epoch search's tau and 200 points per task.
    'fromp': {'fromp.tau': 1000.0, 'fromp.memory_per_task': 500},
    'fromp_l2': {'fromp.tau': 10000.0, 'fromp.memory_per_task': 200},
    'kpriors': {'kpriors.tau': 1.0, 'kpriors.memory_per_task': 500},
    'ewc_fr_replay': {'ewc_fr_replay.tau': 0.3, 'ewc_fr_replay.replay_weight': 0.3},
  },
}


def use_chosen(c, benchmark: str) -> ml_collections.ConfigDict:
  """Makes `CHOSEN[benchmark]` the defaults of config `c`, so that the documented command for a method
  reproduces its row: every field chosen for some method becomes a typed placeholder (None), and
  `c.chosen.<method>.<group>.<field>` holds each method's value; `cl.builders.resolve_chosen` (run by
  `validate_config`) fills the placeholders of `c.method`. A value given on the command line or set in
  code before that wins. (`ewc` and `online_ewc` share `ewc.*`, `fromp` and `fromp_l2` share `fromp.*`,
  with different chosen values: hence per method, not per field.)"""
  c.chosen = ml_collections.ConfigDict()
  for method, fields in CHOSEN[benchmark].items():
    per_group = {}
    for dotted, value in fields.items():
      group, name = dotted.split('.')
      c[group][name] = ml_collections.config_dict.placeholder(type(value))
      per_group.setdefault(group, {})[name] = value
    c.chosen[method] = per_group
  return c


def baseline_sweep(add, benchmark: str, num_seeds: int = 3):
  """Every baseline and Bayes-duality method, `num_seeds` seeds each (vmapped inside one run), with
  the hyper-parameters `CHOSEN` for `benchmark`: `scripts/sweep.py` then regenerates the docs' (docs/results.md)
  rows of that benchmark (without redoing the validation search)."""
  for method in BASELINES + BAYES_DUALITY:
    add(method=method, num_seeds=num_seeds, **CHOSEN[benchmark].get(method, {}))
