"""Rotated Fashion-MNIST: 10 tasks rotated by 0, 18, ..., 162 degrees; domain-incremental, MLP 784-100-100.

python scripts/train_cl.py --config configs/cl/rotated_fmnist.py --config.method=online_ewc --workdir ...
"""

from cl import config_defaults as common


def get_config(arg=None):
  c = common.base_config()
  c.dataset = 'fashion_mnist'
  c.stream = 'rotated'
  c.scenario = 'domain'
  c.num_tasks = 10
  c.max_angle = 180.0
  c.hidden_sizes = (100, 100)
  c.epochs = 3
  c.ewc.ewc_lambda = 100.0
  c.replay.memory_size = 2000
  return common.apply_variant(c, arg)
