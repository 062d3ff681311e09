"""Split Fashion-MNIST: 5 tasks of 2 classes, task-incremental (multi-head), MLP 784-256-256.

python scripts/train_cl.py --config configs/cl/split_fmnist.py --config.method=ewc --workdir ...
--config configs/cl/split_fmnist.py:quick   (tiny smoke run)
"""

from cl import config_defaults as common


def get_config(arg=None):
  c = common.base_config()
  c.dataset = 'fashion_mnist'
  c.stream = 'split'
  c.scenario = 'task'
  c.num_tasks = 5
  c.classes_per_task = 2
  c.hidden_sizes = (256, 256)
  c.epochs = 5
  c.ewc.ewc_lambda = 1000.0
  c.si.c = 1.0
  c.replay.memory_size = 1000
  common.apply_variant(c, arg)
  class_il = c.scenario == 'class'
  # The validation-chosen hyper-parameters of the results rows (docs/results.md) are the defaults (common.CHOSEN).
  return common.use_chosen(c, 'split_fmnist:class' if class_il else 'split_fmnist')


def sweep(add, arg=None):
  """Every method with three seeds (vmapped inside each run) and its validation-chosen
  hyper-parameter: the Split FMNIST rows of docs/results.md (`:class` for the class-incremental ones)."""
  class_il = arg is not None and 'class' in arg.split(',')
  common.baseline_sweep(add, 'split_fmnist:class' if class_il else 'split_fmnist')
