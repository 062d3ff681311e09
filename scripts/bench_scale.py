r"""How seed-parallel training scales over devices: one device against all of them.

  python scripts/bench_scale.py [--fake_devices=8] [--num_seeds=8]

Prints one JSON line (the only line on stdout) with, for one mesh of 1 device and one of all N devices
(`cljax.mesh`, seeds split over the `seed` axis):
  cl_seed_epochs_per_s_1dev / _alldev  continual learning (Split digits, MLP 64-64, EWC): seeds × epochs
                                       trained per second by the compiled `train_epoch`
                                       (`--num_seeds` seeds vmapped);
  irl_seed_steps_per_s_1dev / _alldev OPIRL on PointMaze-Left (configs/irl/pointmaze.py, official sizes):
                                       seeds × environment steps per second of one compiled period of
                                       `--irl_steps` steps with its updates;
  cl_speedup, irl_speedup              the all-device rate over the 1-device rate;
  cl_big_state_mib_per_device_1dev / _model, cl_big_temp_mib_per_device_1dev / _model
                                       memory of one seed of a large MLP (`--big_hidden` × 2 hidden
                                       units, EWC, Adam) on one device, and on a mesh whose `model`
                                       axis holds all N devices (`config.mesh.model`): the train state
                                       on the first device, and the compiled `train_epoch`'s
                                       temporaries per device (XLA's memory analysis);
  model_state_memory_ratio             1dev state over model-split state (ideally N);
and the context (backend, device kind, N, seeds, `*_compile_s`: the first call's seconds, compilation
and one run). The rates exclude compilation (each function is compiled and run once before the timed
calls; the copies of a donated state are made outside the timing); each is the best of `--repeats`.

On a CPU, `--fake_devices=N` (the default 8 when the backend is CPU) splits the host into N XLA devices
that share the same cores, so the speedup measures only the overhead of partitioning (expect about 1,
or less on 2 cores); on a machine with N accelerators the same script measures real scaling.
"""

import json
import os

from absl import app, flags

from cljax import console
from cljax.config import load_module

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_FAKE = flags.DEFINE_integer(
  'fake_devices',
  8,
  'CPU only: XLA host devices to create (0: leave the XLA_FLAGS as they are).',
  lower_bound=0,
)
_SEEDS = flags.DEFINE_integer(
  'num_seeds', 8, 'Seeds trained together (a multiple of the devices).', lower_bound=1
)
_IRL_STEPS = flags.DEFINE_integer(
  'irl_steps', 500, 'Environment steps of the timed OPIRL period.', lower_bound=1
)
_BIG_HIDDEN = flags.DEFINE_integer(
  'big_hidden',
  2048,
  'Hidden units (two layers) of the MLP whose memory is split over the model axis.',
  lower_bound=1,
)
_REPEATS = flags.DEFINE_integer(
  'repeats', 2, 'Timed calls per figure (the best is kept).', lower_bound=1
)


def _best_time(fn, repeats, setup=tuple):
  """Best wall seconds of `fn(*setup())` over `repeats` calls; `setup` runs outside the timing."""
  import jax

  from cljax import timing

  best = float('inf')
  for _ in range(repeats):
    args = jax.block_until_ready(setup())
    best = min(best, timing.timed_call(fn, *args)[1])
  return best


def cl_rate(mesh, num_seeds, repeats):
  """Seed-epochs per second of the compiled CL train_epoch on `mesh`."""
  import jax
  import jax.numpy as jnp

  from cl import builders, train

  split_digits = load_module('configs/cl/split_digits.py')

  config = split_digits.get_config()
  config.update(method='ewc', num_seeds=num_seeds, num_tasks=2)
  stream = builders.build_stream(config)
  learner, _ = builders.build_learner(config, stream, mesh)
  compiled = builders.compile_learner(config, learner, mesh)
  keys = builders.seed_keys(config, mesh)
  state = compiled.init(keys)
  data = train.training_data(stream, 0, False, mesh)
  epoch_keys, _ = train.task_keys(keys, 0, 1)
  # train_epoch donates its state: each call gets its own copy, made before the clock starts.
  fresh = lambda: (jax.tree.map(jnp.copy, state),)
  epoch = lambda s: compiled.train_epoch(s, data, epoch_keys[0], None)
  compile_s = _best_time(epoch, 1, fresh)  # the first call compiles
  seconds = _best_time(epoch, repeats, fresh)
  return num_seeds / seconds, compile_s


def cl_big_memory(mesh, hidden):
  """(MiB of one seed's train state on the mesh's first device, MiB of temporaries per device of the
  compiled train_epoch) for an MLP with two `hidden`-unit layers."""
  import jax

  from cl import builders, train

  split_digits = load_module('configs/cl/split_digits.py')

  config = split_digits.get_config()
  config.update(method='ewc', num_seeds=1, num_tasks=2, hidden_sizes=(hidden, hidden))
  stream = builders.build_stream(config)
  learner, _ = builders.build_learner(config, stream, mesh)
  compiled = builders.compile_learner(config, learner, mesh)
  keys = builders.seed_keys(config, mesh)
  state = compiled.init(keys)
  first = mesh.devices.flat[0]
  state_bytes = sum(
    shard.data.nbytes
    for leaf in jax.tree.leaves(state)
    for shard in leaf.addressable_shards
    if shard.device == first
  )
  data = train.training_data(stream, 0, False, mesh)
  epoch_keys, _ = train.task_keys(keys, 0, 1)
  analysis = (
    compiled.train_epoch.lower(state, data, epoch_keys[0], None).compile().memory_analysis()
  )
  return state_bytes / 2**20, analysis.temp_size_in_bytes / 2**20


def irl_rate(mesh, num_seeds, steps, repeats):
  """Seed-steps per second of one compiled OPIRL period on PointMaze-Left on `mesh`."""
  from cljax import mesh as mesh_lib

  pointmaze = load_module('configs/irl/pointmaze.py')
  from irl import builders as irl_builders
  from irl import train as irl_train

  config = pointmaze.get_config()
  config.loop.update(
    num_env_steps=steps,
    eval_every=steps,
    start_steps=0,
    update_after=1,
    replay_capacity=max(steps, 1_000),
    eval_episodes=1,
  )
  built = irl_builders.build(config)
  init, period_fn = irl_train.built_seed_functions(built, mesh)
  carry = init(mesh_lib.shard_leading(irl_train.seed_keys(list(range(num_seeds))), mesh))
  compile_s = _best_time(lambda: period_fn(carry, 0), 1)  # the first call compiles
  seconds = _best_time(lambda: period_fn(carry, 0), repeats)
  return num_seeds * steps / seconds, compile_s


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if _FAKE.value and os.environ.get('JAX_PLATFORMS', 'cpu') == 'cpu':
    os.environ['XLA_FLAGS'] = (
      os.environ.get('XLA_FLAGS', '') + f' --xla_force_host_platform_device_count={_FAKE.value}'
    )
  import jax

  from cljax import mesh as mesh_lib

  n = jax.device_count()
  if _SEEDS.value % n:
    raise app.UsageError(f'--num_seeds ({_SEEDS.value}) must be a multiple of the {n} devices')
  record = {
    'benchmark': 'scale',
    'backend': jax.default_backend(),
    'device_kind': str(jax.devices()[0].device_kind),
    'num_devices': n,
    'num_seeds': _SEEDS.value,
    'irl_steps': _IRL_STEPS.value,
    'big_hidden': _BIG_HIDDEN.value,
  }
  meshes = {
    '1dev': mesh_lib.make_mesh(1, 1, devices=jax.devices()[:1]),
    'alldev': mesh_lib.make_mesh(-1, 1),
  }
  for suffix, mesh in meshes.items():
    rate, compile_s = cl_rate(mesh, _SEEDS.value, _REPEATS.value)
    record[f'cl_seed_epochs_per_s_{suffix}'], record[f'cl_compile_s_{suffix}'] = rate, compile_s
    rate, compile_s = irl_rate(mesh, _SEEDS.value, _IRL_STEPS.value, _REPEATS.value)
    record[f'irl_seed_steps_per_s_{suffix}'], record[f'irl_compile_s_{suffix}'] = rate, compile_s
  for suffix, mesh in (('1dev', meshes['1dev']), ('model', mesh_lib.make_mesh(1, 1, model=-1))):
    state_mib, temp_mib = cl_big_memory(mesh, _BIG_HIDDEN.value)
    record[f'cl_big_state_mib_per_device_{suffix}'] = state_mib
    record[f'cl_big_temp_mib_per_device_{suffix}'] = temp_mib
  record['model_state_memory_ratio'] = (
    record['cl_big_state_mib_per_device_1dev'] / record['cl_big_state_mib_per_device_model']
  )
  record['cl_speedup'] = record['cl_seed_epochs_per_s_alldev'] / record['cl_seed_epochs_per_s_1dev']
  record['irl_speedup'] = (
    record['irl_seed_steps_per_s_alldev'] / record['irl_seed_steps_per_s_1dev']
  )
  print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in record.items()}))


if __name__ == '__main__':
  console.run(main)
