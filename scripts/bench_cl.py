r"""Training throughput of the continual-learning trainer, and each method's cost per step.

  python scripts/bench_cl.py [--epochs=3] [--batch_size=128] [--step_cost_methods=fromp,kpriors,...]

Prints one JSON line: training examples per second (summed over seeds) of fine-tuning for one seed and
for `--num_seeds` seeds trained together with jax.vmap, and their ratio, and for the same seeds run one
after another inside the jit (`seed_batching='map'`: each seed bit for bit its run alone); then, for every method in
`--step_cost_methods`, its time per training step (one seed) divided by fine-tuning's, measured in the
same process on the last task of the stream after the method has consolidated all earlier tasks (so
memories and penalties are full). The memory methods in `--one_task_per_step_methods` are measured a
second time with `tasks_per_step=one`. Every ratio is the median over `--repeats` back-to-back pairs
(method, fine-tuning). Split Fashion-MNIST, MLP 784-256-256; compilation is excluded (one
warm-up epoch first).

`consolidate_s_last_task` gives, for every memory method in `--consolidate_methods`, the seconds of its
consolidation at the last task boundary (one seed, four tasks already in memory, compiled first,
median of `--repeats`) with `targets='previous'` (the default: every past memory's predictions, and
FROMP's kernels, recomputed) and with `targets='task_end'` (the new task's only), and their ratio.

`fromp_consolidate_temp_mib` is the working memory (XLA's memory analysis of the compiled function,
no run) of FROMP's consolidation on Permuted FMNIST's shipped config (10 classes, 500 points per
task, MLP 784-100-100) for `--num_seeds_permuted` vmapped seeds, next to `all_jacobians_mib`, the
size of the memory's M·C·P Jacobians for those seeds (what building the kernels from all Jacobians
at once would hold).

Compute against the machine: `matmul_peak_flop_per_s` is the best FLOP/s of a jitted 2048² float32
matmul in this process (`cljax.flops`); `epoch_step_flops` a fine-tuning step's FLOPs (XLA's cost
analysis of the epoch function compiled on one minibatch: one step); `epoch_1_seed_flop_per_s` /
`epoch_{N}_seeds_vmapped_flop_per_s` that times the measured steps per second, and
`epoch_1_seed_fraction_of_peak` / `epoch_{N}_seeds_vmapped_fraction_of_peak` their share of the peak.

`--breakdown`: instead, where the wall-clock of the README's quick-start command goes. Runs
`scripts/train_cl.py --config configs/cl/split_fmnist.py --config.method=ewc` twice in fresh
processes sharing a fresh compilation cache (cold: empty cache; warm: the second run) and prints one
JSON line with each run's seconds by phase (its results.json `time`: imports, data, setup,
compilation, training, evaluation, checkpoints, report, other) and compilation counts
(`compilation`), and `wall_over_training_cold` / `_warm`.
"""

import json
import time

from absl import flags

from cljax import breakdown, console, flops
from cljax.config import load_module

_STEP_COST = flags.DEFINE_list(
  'step_cost_methods',
  ['ewc', 'online_ewc', 'si', 'replay', 'vcl', 'fromp', 'fromp_l2', 'kpriors', 'ewc_fr_replay'],
  'Methods whose cost per step relative to fine-tuning is measured.',
)
_ONE_TASK = flags.DEFINE_list(
  'one_task_per_step_methods',
  ['fromp', 'fromp_l2', 'kpriors', 'ewc_fr_replay'],
  "Memory methods measured again with tasks_per_step=one (one past task's memory per step, the "
  "unbiased estimate of the sum over past tasks) instead of the config's setting.",
)
_EPOCHS = flags.DEFINE_integer('epochs', 3, 'Timed epochs (after one warm-up epoch).')
_BATCH = flags.DEFINE_integer('batch_size', 128, 'Minibatch size.')
_SEEDS = flags.DEFINE_integer('num_seeds', 8, 'Seeds in the vmapped measurement.')
_REPEATS = flags.DEFINE_integer('repeats', 3, 'Timings per ratio; the median is reported.')
_CONSOLIDATE = flags.DEFINE_list(
  'consolidate_methods',
  ['fromp', 'kpriors'],
  'Memory methods whose last-boundary consolidation is timed with targets previous and task_end.',
)
_SEEDS_PERMUTED = flags.DEFINE_integer(
  'num_seeds_permuted', 3, "Seeds of the FROMP consolidation's memory analysis (Permuted FMNIST)."
)
_BREAKDOWN = breakdown.define_flags(
  'train_cl.py',
  ['--config', 'configs/cl/split_fmnist.py', '--config.method=ewc'],
  "the README's quick-start command",
)


def main(argv):
  del argv
  if _BREAKDOWN():
    return
  import jax
  import numpy as np

  from cl import builders, train

  split_fmnist = load_module('configs/cl/split_fmnist.py')

  config = split_fmnist.get_config()
  config.batch_size = _BATCH.value
  builders.validate_config(config)
  stream = builders.build_stream(config)
  last = stream.num_tasks - 1
  data = train.training_data(stream, last, cumulative=False)
  n = int(data.y.shape[0])
  steps = n // config.batch_size

  def consolidated(method, num_seeds, seed_batching='vmap', **method_fields):
    """(compiled learner, its method, seed keys, state) after the method consolidated every task
    before the last, as a real run would (no training needed); `method_fields` override the method's
    sub-config."""
    config.method, config.num_seeds = method, num_seeds
    run_config = config.copy_and_resolve_references()
    for field, value in method_fields.items():
      run_config[{'fromp_l2': 'fromp'}.get(method, method)][field] = value
    learner, m = builders.build_learner(run_config, stream)
    compiled = train.compile_learner(learner, seed_batching=seed_batching)
    keys = builders.seed_keys(run_config)
    state = compiled.init(keys)
    for t in range(last):
      past = train.training_data(stream, t, cumulative=False)
      state = compiled.begin_task(state, past)
      state = compiled.consolidate(state, past, keys)
    return compiled, m, keys, state

  def epoch_timer(method, num_seeds, tasks_per_step=None, seed_batching='vmap'):
    """A function timing `--epochs` training epochs on the last task (seconds per epoch), after the
    method consolidated every earlier task; compiled and warmed up once here."""
    compiled, m, keys, state = consolidated(
      method,
      num_seeds,
      seed_batching,
      **({'tasks_per_step': tasks_per_step} if tasks_per_step else {}),
    )
    state = compiled.begin_task(state, data)
    num_past = last if m.static_task_count else None
    epoch_keys = jax.vmap(lambda k: jax.random.split(k, _EPOCHS.value + 1))(keys)
    state, _ = compiled.train_epoch(state, data, epoch_keys[:, 0], num_past)  # compile + warm-up
    jax.block_until_ready(state)

    current = [state]  # train_epoch donates its state: each timing continues from the last one

    def seconds_per_epoch():
      s = current[0]
      start = time.perf_counter()
      for e in range(_EPOCHS.value):
        s, _ = compiled.train_epoch(s, data, epoch_keys[:, e + 1], num_past)
      jax.block_until_ready(s)
      current[0] = s
      return (time.perf_counter() - start) / _EPOCHS.value

    return seconds_per_epoch

  def median_ratio(timer, base_timer):
    """Median over `--repeats` of (method time / fine-tuning time), each pair timed back to back, so
    that load changes on a shared machine hit both sides of a ratio alike."""
    return float(np.median([timer() / base_timer() for _ in range(_REPEATS.value)]))

  base_timer = epoch_timer('finetune', 1)
  many_timer = epoch_timer('finetune', _SEEDS.value)
  base = float(np.median([base_timer() for _ in range(_REPEATS.value)]))
  many_over_one = median_ratio(many_timer, base_timer)
  mapped_over_one = median_ratio(
    epoch_timer('finetune', _SEEDS.value, seed_batching='map'), base_timer
  )
  one_rate = steps * config.batch_size / base
  many_rate = _SEEDS.value * one_rate / many_over_one
  mapped_rate = _SEEDS.value * one_rate / mapped_over_one
  record = {
    'benchmark': 'cl_train_throughput',
    'dataset': 'split_fashion_mnist_task5',
    'model': 'mlp_784_256_256',
    'batch_size': config.batch_size,
    'examples_per_task': n,
    'backend': jax.default_backend(),
    'device': str(jax.devices()[0].device_kind),
    'repeats': _REPEATS.value,
    'examples_per_sec_1_seed': round(one_rate, 1),
    f'examples_per_sec_{_SEEDS.value}_seeds_vmapped': round(many_rate, 1),
    'vmapped_over_single_ratio': round(many_rate / one_rate, 3),
    f'examples_per_sec_{_SEEDS.value}_seeds_mapped': round(mapped_rate, 1),  # seed_batching='map'
    'mapped_over_vmapped_ratio': round(mapped_rate / many_rate, 3),
    'memory_per_task': config.fromp.memory_per_task,
    'step_cost_vs_finetune': {},
    'step_cost_vs_finetune_one_past_task_per_step': {},
  }
  record.update(epoch_flop_figures(config, stream, data, one_rate, many_rate))
  for method in _STEP_COST.value:
    record['step_cost_vs_finetune'][method] = round(
      median_ratio(epoch_timer(method, 1), base_timer), 3
    )
  for method in _ONE_TASK.value:
    record['step_cost_vs_finetune_one_past_task_per_step'][method] = round(
      median_ratio(epoch_timer(method, 1, 'one'), base_timer), 3
    )

  def consolidate_seconds(method, targets):
    """Median seconds of the last boundary's consolidation, after the earlier ones (compiled)."""
    compiled, _, keys, state = consolidated(method, 1, targets=targets)
    jax.block_until_ready(state)
    times = []
    for _ in range(_REPEATS.value):
      copy = jax.tree.map(lambda x: x.copy(), state)  # consolidate donates its state
      start = time.perf_counter()
      jax.block_until_ready(compiled.consolidate(copy, data, keys))
      times.append(time.perf_counter() - start)
    return float(np.median(times))

  record['consolidate_s_last_task'] = {}
  for method in _CONSOLIDATE.value:
    previous, task_end = (
      consolidate_seconds(method, 'previous'),
      consolidate_seconds(method, 'task_end'),
    )
    record['consolidate_s_last_task'][method] = {
      'previous': round(previous, 3),
      'task_end': round(task_end, 3),
      'ratio': round(previous / task_end, 2),
    }
  record.update(fromp_consolidate_memory(_SEEDS_PERMUTED.value))
  print(json.dumps(record))


def epoch_flop_figures(config, stream, data, one_rate, many_rate):
  """FLOP/s of fine-tuning's epoch for 1 seed and `--num_seeds` vmapped, against the matmul peak."""
  from cl import builders, train

  config = config.copy_and_resolve_references()
  config.method, config.num_seeds = 'finetune', 1
  learner, _ = builders.build_learner(config, stream)
  compiled = train.compile_learner(learner)
  keys = builders.seed_keys(config)
  state = compiled.init(keys)
  b = config.batch_size
  one_batch = data.replace(x=data.x[:b], y=data.y[:b], mask=data.mask[:b])
  step_flops = flops.compiled_flops(
    compiled.train_epoch.lower(state, one_batch, keys, None).compile()
  )
  peak = flops.matmul_peak()
  return {
    'matmul_peak_flop_per_s': peak,
    'epoch_step_flops': step_flops,
    **flops.figures('epoch_1_seed', step_flops, one_rate / b, peak),
    **flops.figures(f'epoch_{_SEEDS.value}_seeds_vmapped', step_flops, many_rate / b, peak),
  }


def fromp_consolidate_memory(num_seeds):
  """{fromp_consolidate_temp_mib, all_jacobians_mib, ...} for Permuted FMNIST's FROMP (compiled, not run)."""
  import jax

  from cl import builders, train

  config = load_module('configs/cl/permuted_fmnist.py').get_config()
  config.method, config.num_seeds = 'fromp', num_seeds
  builders.validate_config(config)
  stream = builders.build_stream(config)
  learner, _ = builders.build_learner(config, stream)
  compiled = train.compile_learner(learner)
  keys = builders.seed_keys(config)
  state = compiled.init(keys)
  data = train.training_data(stream, 0, cumulative=False)
  analysis = compiled.consolidate.lower(state, data, keys).compile().memory_analysis()
  num_params = sum(p.size for p in jax.tree.leaves(state.params)) // num_seeds
  points, classes = config.fromp.memory_per_task, stream.num_outputs
  mib = lambda b: round(b / 2**20, 1)
  return {
    'fromp_consolidate_seeds': num_seeds,
    'fromp_consolidate_memory_per_task': points,
    'fromp_consolidate_temp_mib': mib(analysis.temp_size_in_bytes),
    'all_jacobians_mib': mib(4 * num_seeds * points * classes * num_params),
  }


if __name__ == '__main__':
  console.run(main)
