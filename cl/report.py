"""Turning a finished run into results: metrics per seed, `results.json` content, the heatmap."""

from __future__ import annotations

import json

import numpy as np

from cl import metrics


def seed_results(
  accuracy_matrix, accuracy_before, val_accuracy_matrix=None, joint_accuracy=None
) -> dict:
  """One seed's results dict: the matrices as lists of rows plus every metric from `cl.metrics`
  (`intransigence` too when `joint_accuracy`, the joint reference's a*_k per task, is given)."""
  R = np.asarray(accuracy_matrix, np.float64)
  before = np.asarray(accuracy_before, np.float64)
  out = {'accuracy_matrix': R.tolist(), 'accuracy_before': before.tolist()}
  out.update(metrics.compute_all(R, before, joint_accuracy))
  if val_accuracy_matrix is not None:
    out['val_accuracy_matrix'] = np.asarray(val_accuracy_matrix, np.float64).tolist()
  return out


SCALARS = (
  'average_accuracy',
  'backward_transfer',
  'forward_transfer',
  'forgetting',
  'learning_accuracy',
)


def results_json(run_state, seeds, joint_accuracy=None) -> dict:
  """`results.json`: the first seed's results at the top level; with several seeds also `per_seed`
  (one dict per seed, with its `seed`) and `mean` / `std` of every scalar metric over seeds."""
  R = np.asarray(run_state.accuracy_matrix)
  before = np.asarray(run_state.accuracy_before)
  val = np.asarray(run_state.val_accuracy_matrix)
  per_seed = [
    dict(seed=int(s), **seed_results(R[i], before[i], val[i], joint_accuracy))
    for i, s in enumerate(seeds)
  ]
  out = dict(per_seed[0])
  if len(per_seed) > 1:
    out['per_seed'] = per_seed
    scalars = [k for k in SCALARS + ('intransigence',) if k in out]
    out['mean'] = {k: _nanstat(np.mean, [r[k] for r in per_seed]) for k in scalars}
    out['std'] = {k: _nanstat(np.std, [r[k] for r in per_seed]) for k in scalars}
  return out


def joint_reference_accuracy(path: str, num_tasks: int) -> np.ndarray:
  """a*_k for intransigence: the diagonal of a `joint` run's accuracy matrix (mean over its seeds).

  A joint run at task k has trained on the union of tasks 1..k, so its R[k, k] is RWalk's reference."""
  with open(path, encoding='utf-8') as f:
    ref = json.load(f)
  rows = [r['accuracy_matrix'] for r in ref.get('per_seed', [ref])]
  diag = np.mean([np.diag(np.asarray(r, np.float64)) for r in rows], axis=0)
  if diag.shape != (num_tasks,):
    raise ValueError(
      f'config.joint_reference {path} has {diag.shape[0]} tasks, this run has {num_tasks}'
    )
  return diag


def _nanstat(fn, values):
  if any(v is None for v in values):
    return None
  return float(fn(values))


def format_matrix(R, before=None) -> str:
  R = np.asarray(R)
  t = R.shape[0]
  lines = ['            ' + ' '.join(f'task{j + 1:>3}' for j in range(t))]
  if before is not None:
    lines.append('before    ' + ' '.join(f'{v:8.4f}' for v in np.asarray(before)))
  for i in range(t):
    lines.append(
      f'after {i + 1:>3} ' + ' '.join('     nan' if np.isnan(v) else f'{v:8.4f}' for v in R[i])
    )
  return '\n'.join(lines)


def draw_matrix(ax, R, fontsize: float = 7):
  """R (values in [0, 1], NaN left blank) as a heatmap on the matplotlib axes `ax`, each entry
  printed ×100, tasks numbered from 1; returns the image (for a colorbar)."""
  R = np.asarray(R, dtype=float)
  im = ax.imshow(R, vmin=0.0, vmax=1.0, cmap='viridis')
  for i in range(R.shape[0]):
    for j in range(R.shape[1]):
      if not np.isnan(R[i, j]):
        ax.text(
          j,
          i,
          f'{100 * R[i, j]:.0f}',
          ha='center',
          va='center',
          fontsize=fontsize,
          color='white' if R[i, j] < 0.6 else 'black',
        )
  ax.set_xticks(range(R.shape[1]), [str(j + 1) for j in range(R.shape[1])])
  ax.set_yticks(range(R.shape[0]), [str(i + 1) for i in range(R.shape[0])])
  return im


def plot_accuracy_matrix(R, path: str, title: str = '', label: str = 'test accuracy') -> None:
  """Heatmap of R (rows: after training task i; columns: accuracy on task j, or the measure
  `label` names, in [0, 1], printed ×100) saved to `path`."""
  import matplotlib  # deferred: heavy, only for plots

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # deferred: heavy, only for plots

  R = np.asarray(R)
  t = R.shape[0]
  fig, ax = plt.subplots(figsize=(1.0 + 0.6 * t, 0.8 + 0.6 * t))
  im = draw_matrix(ax, R)
  ax.set_xlabel('evaluated on task')
  ax.set_ylabel('after training task')
  ax.set_title(title, fontsize=9)
  fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=label)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
