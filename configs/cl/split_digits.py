"""Split digits (scikit-learn's bundled 8x8 digits): 5 tasks of 2 classes; seconds on a CPU.

Good for smoke tests and notebooks; `--config.scenario=class` gives the class-incremental version.
"""

from cl import config_defaults as common


def get_config(arg=None):
  c = common.base_config()
  c.dataset = 'digits'
  c.stream = 'split'
  c.scenario = 'task'
  c.num_tasks = 5
  c.classes_per_task = 2
  c.hidden_sizes = (64, 64)
  c.batch_size = 32
  c.epochs = 10
  c.val_fraction = 0.1
  c.ewc.ewc_lambda = 100.0
  c.ewc.fisher_num_examples = 256
  c.replay.memory_size = 100
  c.replay.batch_size = 32
  return common.apply_variant(c, arg)


def sweep(add, arg=None):
  """Four baselines, two seeds each (vmapped inside each run): the sweep the tests submit to SLURM."""
  del arg
  for method in ('finetune', 'ewc', 'si', 'replay'):
    add(method=method, num_seeds=2)
