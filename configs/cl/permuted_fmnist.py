"""Permuted Fashion-MNIST: 10 tasks (task 1 unpermuted), domain-incremental, MLP 784-100-100.

python scripts/train_cl.py --config configs/cl/permuted_fmnist.py --config.method=si --workdir ...
"""

from cl import config_defaults as common


def get_config(arg=None):
  c = common.base_config()
  c.dataset = 'fashion_mnist'
  c.stream = 'permuted'
  c.scenario = 'domain'
  c.num_tasks = 10
  c.hidden_sizes = (100, 100)
  c.epochs = 10  # the papers use more passes per task than 3 (issue 13)
  c.ewc.ewc_lambda = 100.0
  c.si.c = 1.0
  c.replay.memory_size = 2000
  # Memory methods: 200 points per task as in FROMP's permuted-MNIST setting (2000 in all, like replay),
  # and one past task's memory per step (an unbiased estimate of the sum; keeps the step cost flat).
  for name in ('fromp', 'kpriors', 'ewc_fr_replay'):
    c[name].memory_per_task = 200
    c[name].tasks_per_step = 'one'
  common.apply_variant(c, arg)
  # The validation-chosen hyper-parameters of the results rows (docs/results.md) are the defaults (common.CHOSEN).
  return common.use_chosen(c, 'permuted_fmnist')


def sweep(add, arg=None):
  """Every method with three seeds (vmapped inside each run) and its validation-chosen
  hyper-parameter: the Permuted FMNIST rows of docs/results.md."""
  del arg
  common.baseline_sweep(add, 'permuted_fmnist')
