r"""Regenerates the continual-learning results table (docs/results.md): every baseline on Split and Permuted Fashion-MNIST.

  python scripts/cl_results_table.py --out runs/cl_results.json

For each benchmark config and each method, trains `--num_seeds` seeds together (jax.vmap) and reports
the test average accuracy and forgetting as mean ± std over seeds. With `--tune` (the default), the
main hyper-parameter of each regularised method (see GRIDS in cl/hparams.py) is first chosen from a
grid by the final *validation* average accuracy (validation splits are carved from the training data;
test data are never used for the choice). On Permuted FMNIST the memory methods' grid is τ × memory
size per task (MEMORY_GRIDS, ibid.). Each grid point's validation score is saved as it finishes, in
`<out>.tuning` keyed by the whole config, so a killed run resumes its search. Prints a markdown table
and writes everything to `--out`.
"""

import hashlib
import json
import os
import time

from absl import flags

from cl.hparams import GRIDS, MEMORY_GROUPS, METHODS, describe, get_field, grid_points, set_point
from cljax import console
from cljax.config import load_module

_BENCHMARKS = flags.DEFINE_list(
  'benchmarks',
  ['split_fmnist', 'split_fmnist:class', 'permuted_fmnist'],
  'Config names under configs/cl/, with an optional :variant.',
)
_METHODS = flags.DEFINE_list(
  'methods',
  list(METHODS),
  'Methods to run.',
)
_SEEDS = flags.DEFINE_integer('num_seeds', 3, 'Seeds per run (vmapped).')
_TUNE_SEEDS = flags.DEFINE_integer(
  'tune_seeds',
  None,
  'Seeds per validation run of the search (seeds 0, 1, ...; default --num_seeds): fewer make the '
  'search cheaper, the reported rows still train --num_seeds seeds.',
  lower_bound=1,
)
_TUNE = flags.DEFINE_bool('tune', True, 'Choose regularisation strengths on the validation split.')
_OUT = flags.DEFINE_string('out', 'runs/cl_results.json', 'Where to write all numbers.')
_MERGE = flags.DEFINE_bool(
  'merge',
  False,
  'Keep the entries already in --out that this run does not '
  'redo (e.g. re-run one method) and print the table of all of them.',
)


def main(argv):
  del argv

  import numpy as np

  from cl import builders, metrics, train

  def run(config, stream):
    builders.validate_config(config)
    learner, method = builders.build_learner(config, stream)
    rs = train.run_stream(
      learner,
      stream,
      builders.seed_keys(config),
      epochs=config.epochs,
      **train.method_flags(method),
    )
    return np.asarray(rs.accuracy_matrix), np.asarray(rs.val_accuracy_matrix)

  all_results = {}
  if _MERGE.value and os.path.exists(_OUT.value):
    with open(_OUT.value, encoding='utf-8') as f:
      all_results = json.load(f)
  header = [
    '| benchmark | method | hyper-parameter (chosen on validation) | average accuracy (%) '
    '| forgetting (%) |',
    '|---|---|---|---|---|',
  ]

  def row(key):
    bench, name = key.rsplit('/', 1)
    r = all_results[key]
    acc, fgt = r['average_accuracy'], r['forgetting']
    return (
      f'| {bench} | {name} | {r["hyperparameter"] or "-"} | {100 * np.mean(acc):.1f} ± '
      f'{100 * np.std(acc):.1f} | {100 * np.mean(fgt):.1f} ± {100 * np.std(fgt):.1f} |'
    )

  tuning_path = _OUT.value + '.tuning'
  tuning_cache = {}
  if os.path.exists(tuning_path):
    with open(tuning_path, encoding='utf-8') as f:
      tuning_cache = json.load(f)

  def save_tuning():
    os.makedirs(os.path.dirname(os.path.abspath(tuning_path)), exist_ok=True)
    with open(tuning_path + '.tmp', 'w', encoding='utf-8') as f:
      json.dump(tuning_cache, f, indent=1)
    os.replace(tuning_path + '.tmp', tuning_path)

  def save():
    os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
    with open(_OUT.value, 'w', encoding='utf-8') as f:
      json.dump(all_results, f, indent=1)

  for bench in _BENCHMARKS.value:
    name_, _, variant = bench.partition(':')
    module = load_module(f'configs/cl/{name_}.py')
    get_config = lambda: module.get_config(variant or None)
    base = get_config()
    base.num_seeds = _SEEDS.value
    stream = builders.build_stream(base)
    for name in _METHODS.value:
      config = get_config()
      config.num_seeds = _SEEDS.value
      config.method = name
      builders.validate_config(config)
      chosen, tuning = '', {}
      if _TUNE.value and name in GRIDS:
        points = grid_points(bench, name)
        for point in points:
          set_point(config, point)
          config.num_seeds = _TUNE_SEEDS.value or _SEEDS.value
          # Keyed by the whole config: a killed run's grid points are not redone, a changed config's are.
          digest = hashlib.sha256(config.to_json(sort_keys=True).encode()).hexdigest()[:16]
          key = f'{bench}/{name}/{describe(point)}/{digest}'
          if key not in tuning_cache:
            _, val = run(config, stream)
            tuning_cache[key] = float(np.mean([metrics.average_accuracy(v) for v in val]))
            save_tuning()
          tuning[describe(point)] = tuning_cache[key]
        best = max(points, key=lambda p: tuning[describe(p)])
        set_point(config, best)
        config.num_seeds = _SEEDS.value
        chosen = describe(best)
      elif name in GRIDS:  # --notune: the config's value (a benchmark's default is its chosen one)
        builders.validate_config(config)
        fields = grid_points(bench, name)[0]
        chosen = describe({f: get_field(config, f if isinstance(f, str) else f[0]) for f in fields})
      start = time.time()
      test, _ = run(config, stream)
      acc = [metrics.average_accuracy(r) for r in test]
      fgt = [metrics.forgetting(r) for r in test]
      all_results[f'{bench}/{name}'] = {
        'hyperparameter': chosen,
        'tuned': bool(tuning),
        'validation_tuning': tuning,
        'validation_seeds': (_TUNE_SEEDS.value or _SEEDS.value) if tuning else 0,
        'average_accuracy': acc,
        'forgetting': fgt,
        'accuracy_matrices': test.tolist(),
        'seeds': list(range(config.seed, config.seed + config.num_seeds)),
        'seconds': time.time() - start,
        'epochs': config.epochs,
      }
      group = MEMORY_GROUPS.get(name)
      if group and 'targets' in config[group]:
        all_results[f'{bench}/{name}']['targets'] = config[group].targets
      print(row(f'{bench}/{name}'), flush=True)
      save()
  print('\n'.join(header + [row(key) for key in all_results]))


if __name__ == '__main__':
  console.run(main)
