r"""Training throughput of the continual-learning trainer: one seed against 8 seeds vmapped.

  python scripts/bench_cl.py [--method=finetune] [--epochs=3] [--batch_size=128]

Prints one JSON line: training examples per second (summed over seeds) for one seed and for
`--num_seeds` seeds trained together with jax.vmap, and their ratio, on the first task of Split
Fashion-MNIST with an MLP 784-256-256. Compilation is excluded (one warm-up epoch first).
"""

import json
import os
import sys
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_METHOD = flags.DEFINE_string('method', 'finetune', 'Method whose training step is timed.')
_EPOCHS = flags.DEFINE_integer('epochs', 3, 'Timed epochs (after one warm-up epoch).')
_BATCH = flags.DEFINE_integer('batch_size', 128, 'Minibatch size.')
_SEEDS = flags.DEFINE_integer('num_seeds', 8, 'Seeds in the vmapped measurement.')


def main(argv):
  del argv
  import jax
  from configs.cl import split_fmnist
  from cl import builders, train

  config = split_fmnist.get_config()
  config.method = _METHOD.value
  config.batch_size = _BATCH.value
  builders.validate_config(config)
  stream = builders.build_stream(config)
  data = train.training_data(stream, 0, cumulative=False)
  n = int(data.y.shape[0])
  steps = n // config.batch_size

  def measure(num_seeds):
    config.num_seeds = num_seeds
    learner, _ = builders.build_learner(config, stream)
    compiled = train.compile_learner(learner)
    keys = builders.seed_keys(config)
    state = compiled.init(keys)
    epoch_keys = jax.vmap(lambda k: jax.random.split(k, _EPOCHS.value + 1))(keys)
    state, _ = compiled.train_epoch(state, data, epoch_keys[:, 0])  # compile + warm-up
    jax.block_until_ready(state)
    start = time.perf_counter()
    for e in range(_EPOCHS.value):
      state, _ = compiled.train_epoch(state, data, epoch_keys[:, e + 1])
    jax.block_until_ready(state)
    elapsed = time.perf_counter() - start
    return num_seeds * steps * config.batch_size * _EPOCHS.value / elapsed

  one = measure(1)
  many = measure(_SEEDS.value)
  print(json.dumps({
      'benchmark': 'cl_train_throughput',
      'dataset': 'split_fashion_mnist_task1',
      'model': 'mlp_784_256_256',
      'method': config.method,
      'batch_size': config.batch_size,
      'examples_per_task': n,
      'backend': jax.default_backend(),
      'device': str(jax.devices()[0].device_kind),
      'examples_per_sec_1_seed': round(one, 1),
      f'examples_per_sec_{_SEEDS.value}_seeds_vmapped': round(many, 1),
      'vmapped_over_single_ratio': round(many / one, 3),
  }))


if __name__ == '__main__':
  app.run(main)
