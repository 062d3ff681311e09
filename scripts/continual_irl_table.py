r"""Regenerates the continual inverse RL results (docs/continual-irl.md): every method of the config's
sweep on PointMaze-Goals, three seeds each, with the shipped config.

  python scripts/continual_irl_table.py --root runs/cirl \
      --out docs/results/cirl_pointmaze_goals.json --figure docs/cirl_pointmaze_goals.png

Runs (or resumes: a finished run only re-reads its outputs) `scripts/train_continual_irl.py
--config.method=<method> --workdir <root>/<method>` for each method in turn, then prints a markdown
table (mean ± std over seeds of each run's per-seed metrics; the policy check's fraction per seed),
writes every number to `--out` and draws each method's three matrices (EPIC to the true reward, AUC,
drift) in `--figure`. `goal` in the JSON is issue 17's: K-priors' or FROMP's EPIC forgetting at most
a third of fine-tuning's, and task 1's final reward training a policy to at least 80 % of its fresh
reward's return, on every seed.
"""

import json
import os
import subprocess
import sys

import numpy as np
from absl import flags

from cl import report
from cljax import console
from cljax.config import load_module
from envs import pointmaze

_CONFIG = flags.DEFINE_string(
  'config', 'configs/cirl/pointmaze_goals.py', 'The stream config (its `sweep` names the methods).'
)
_METHODS = flags.DEFINE_list(
  'methods', None, "Methods to run (default: the methods of the config file's sweep)."
)
_ROOT = flags.DEFINE_string('root', 'runs/cirl', 'Work directories: <root>/<method>.')
_OUT = flags.DEFINE_string('out', 'runs/cirl/results.json', 'Where to write all numbers.')
_FIGURE = flags.DEFINE_string('figure', None, 'Where to draw the matrices (PNG); none if unset.')
_OVERRIDES = flags.DEFINE_multi_string(
  'override', [], 'Extra `--config.<field>=<value>` flags for every run (e.g. a smaller budget).'
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# (row key, the per-seed metric it summarises, the table's heading)
COLUMNS = (
  ('average_epic', ('epic', 'average_epic'), 'average EPIC ↓'),
  ('epic_forgetting', ('epic', 'epic_forgetting'), 'EPIC forgetting ↓'),
  ('final_drift', ('epic', 'final_drift'), 'final drift ↓'),
  ('average_auc', ('auc', 'average_auc'), 'average AUC ↑'),
  ('auc_forgetting', ('auc', 'auc_forgetting'), 'AUC forgetting ↓'),
)


def sweep_methods(config_path: str) -> list[str]:
  """The `method` of every point of the config file's `sweep`."""
  points = []
  path, _, arg = config_path.partition(':')
  load_module(path).sweep(lambda **point: points.append(point), arg or None)
  return [p['method'] for p in points]


def row(results: dict) -> dict:
  """One method's figures: mean and std over seeds of each per-seed metric, and the policy check."""
  per_seed = results['per_seed'].values()
  out = {'method': results['method'], 'seeds': results['seeds']}
  for key, (group, name), _ in COLUMNS:
    values = [s['metrics'][group][name] for s in per_seed]
    out[key] = {'mean': float(np.mean(values)), 'std': float(np.std(values)), 'per_seed': values}
  out['by_barrier'] = by_barrier(results)
  check = results.get('final_policy_returns')
  if check:
    # Per seed, and of the seed-mean returns. A seed whose fresh reward trains no better than the
    # random policy has a ratio near 0 / 0 (large either way), so the goal asks it of every seed and
    # the mean of ratios is not given.
    out['task1_fraction'] = {
      'of_mean_returns': check['fraction'][0],
      'per_seed': [s['fraction'][0] for s in check['per_seed'].values()],
    }
    out['fraction'] = check['fraction']
    out['policy_returns'] = {k: check[k] for k in ('fresh', 'final', 'random')}
  return out


def by_barrier(results: dict) -> dict | None:
  """Where the reward is lost on PointMaze-Goals: the mean drift and AUC drop (AUC[j, j] − AUC[i, j])
  of task j after a later task i, split by whether task i has task j's barrier (gap side) or the
  other one; None for another stream."""
  if results['stream'] != 'PointMaze-Goals':
    return None
  barrier = [
    pointmaze.GOAL_TASKS[int(n.removeprefix(pointmaze.GOALS_PREFIX))][0] for n in results['tasks']
  ]
  drift = np.asarray(results['epic_drift_matrix'], dtype=float)
  auc = np.asarray(results['auc_matrix'], dtype=float)
  split = {'same': ([], []), 'other': ([], [])}
  for i in range(len(barrier)):
    for j in range(i):
      d, a = split['same' if barrier[i] == barrier[j] else 'other']
      d.append(drift[i, j])
      a.append(auc[j, j] - auc[i, j])
  return {
    kind: {'drift': float(np.mean(d)), 'auc_drop': float(np.mean(a)), 'entries': len(d)}
    for kind, (d, a) in split.items()
    if d
  }


def goal(rows: dict) -> dict:
  """Issue 17's goal, from the rows of finetune and K-priors / FROMP."""
  out = {}
  if 'finetune' in rows:
    bound = rows['finetune']['epic_forgetting']['mean'] / 3
    for method in ('kpriors', 'fromp'):
      if method in rows:
        f = rows[method]['epic_forgetting']['mean']
        # Without forgetting to cut (finetune's ≤ 0) the goal cannot be decided: None.
        out[f'{method}_epic_forgetting_within_a_third_of_finetune'] = (
          bool(f <= bound) if bound > 0 else None
        )
  for method, r in rows.items():
    if 'task1_fraction' in r:
      out[f'{method}_task1_fraction_at_least_0.8'] = bool(
        min(r['task1_fraction']['per_seed']) >= 0.8
      )
  return out


def table(rows: dict) -> str:
  head = ['method'] + [title for _, _, title in COLUMNS]
  head += ['drift after the other / the same gap side', 'task 1 policy, final / fresh, per seed']
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for method, r in rows.items():
    cells = [method] + [f'{r[k]["mean"]:.3f} ± {r[k]["std"]:.3f}' for k, _, _ in COLUMNS]
    split = r['by_barrier'] or {}
    cells.append(
      ' / '.join(f'{split[k]["drift"]:.3f}' if k in split else 'n/a' for k in ('other', 'same'))
    )
    cells.append(
      ' / '.join(f'{v:.2f}' for v in r['task1_fraction']['per_seed'])
      if 'task1_fraction' in r
      else 'n/a'
    )
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def draw(all_results: dict, path: str) -> None:
  """Each method's EPIC, AUC and drift matrices (mean over seeds), one row of heatmaps a method."""
  import matplotlib  # deferred: heavy, only for the figure

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # deferred: heavy, only for the figure

  kinds = (
    ('epic_matrix', 'EPIC to the true reward ↓'),
    ('auc_matrix', 'AUC ↑'),
    ('epic_drift_matrix', 'drift from the reward as learned ↓'),
  )
  fig, axes = plt.subplots(len(all_results), 3, figsize=(9, 2.6 * len(all_results)), squeeze=False)
  for i, (method, results) in enumerate(all_results.items()):
    for k, (key, title) in enumerate(kinds):
      ax = axes[i, k]
      report.draw_matrix(ax, results[key], fontsize=6)
      ax.tick_params(labelsize=7)
      ax.set_title(f'{method}: {title}', fontsize=8)
      if i == len(all_results) - 1:
        ax.set_xlabel('task measured', fontsize=7)
      if k == 0:
        ax.set_ylabel('after training task', fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def main(argv):
  del argv
  methods = _METHODS.value or sweep_methods(_CONFIG.value)
  all_results = {}
  for method in methods:
    workdir = os.path.join(_ROOT.value, method)
    cmd = [
      sys.executable,
      os.path.join(ROOT, 'scripts', 'train_continual_irl.py'),
      f'--config={_CONFIG.value}',
      f'--config.method={method}',
      *_OVERRIDES.value,
      f'--workdir={workdir}',
    ]
    print(f'{method}: {" ".join(cmd[1:])}', flush=True)
    proc = subprocess.run(cmd, cwd=ROOT)
    if proc.returncode != 0:
      raise SystemExit(proc.returncode)  # the run printed why; rerunning resumes it
    with open(os.path.join(workdir, 'results.json'), encoding='utf-8') as f:
      all_results[method] = json.load(f)
  rows = {m: row(r) for m, r in all_results.items()}
  out = {
    'config': _CONFIG.value,
    'overrides': _OVERRIDES.value,
    'env_steps_per_task': next(iter(all_results.values()))['env_steps_per_task'],
    'tasks': next(iter(all_results.values()))['tasks'],
    'rows': rows,
    'matrices': {
      m: {k: r[k] for k in ('epic_matrix', 'auc_matrix', 'epic_drift_matrix', 'epic_before')}
      for m, r in all_results.items()
    },
    'goal': goal(rows),
  }
  os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
  with open(_OUT.value, 'w', encoding='utf-8') as f:
    json.dump(out, f, indent=1)
  if _FIGURE.value:
    draw(all_results, _FIGURE.value)
  print(table(rows))
  print(f'goal: {out["goal"]}; wrote {_OUT.value}')


if __name__ == '__main__':
  console.run(main)
