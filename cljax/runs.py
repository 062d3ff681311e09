"""Work-directory plumbing the RL scripts share: the config guard, learning curves, their plot."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform

import numpy as np

from cljax import compilations


class WorkdirError(ValueError):
  """A work directory that holds a run with a different config."""


def check_or_write_config(config, workdir: str, overridden=None, warn=print) -> None:
  """Writes `workdir/config.json`, or checks that an existing one (a run to resume) is the same.

  A run made before a config field existed has no value for it. When `overridden` (the dotted fields
  set on the command line, `console.overridden_fields`) is given, such a field left at its default is
  accepted: the run resumes with one line from `warn` naming the new fields, and `config.json` gains
  them. A new field set on the command line, a changed value, or a field the config no longer has
  still refuses the work directory."""
  path = os.path.join(workdir, 'config.json')
  resolved = json.loads(config.to_json_best_effort())
  if os.path.exists(path):
    with open(path, encoding='utf-8') as f:
      previous = json.load(f)
    old, new = _flatten(previous), _flatten(resolved)
    added = (
      []
      if overridden is None  # unknown: every new field counts as a change
      else sorted(k for k in set(new) - set(old) if not any(_within(k, o) for o in overridden))
    )
    changed = sorted(k for k in set(old) | set(new) if k not in added and old.get(k) != new.get(k))
    if changed:
      raise WorkdirError(
        f'{workdir} holds a run with a different config (fields {changed}); '
        'use a new --workdir or the same config to resume.'
      )
    if added:
      warn(
        f'{workdir} predates the config fields {added}; resuming with their defaults '
        f'({", ".join(f"{k}={new[k]!r}" for k in added)}).'
      )
      _write_json(path, resolved)
  else:
    os.makedirs(workdir, exist_ok=True)
    _write_json(path, resolved)


def _flatten(tree, prefix=''):
  """{'a': {'b': 1}} -> {'a.b': 1}; an empty dict stays a leaf."""
  if not isinstance(tree, dict) or not tree:
    return {prefix: tree}
  out = {}
  for key, value in tree.items():
    out.update(_flatten(value, f'{prefix}.{key}' if prefix else key))
  return out


def _within(field: str, override: str) -> bool:
  """Whether the command-line override `override` sets `field` (itself, or a group above it)."""
  return field == override or field.startswith(override + '.')


def _write_json(path, value):
  with open(path + '.tmp', 'w', encoding='utf-8') as f:
    json.dump(value, f, indent=2, sort_keys=True)
  os.replace(path + '.tmp', path)


def read_curve(path: str, key: str = 'eval_return') -> list[list]:
  """[[step, value], ...] of `key` from a metrics.jsonl, sorted by step, the last record of a step
  winning (a resumed run may have written a step twice)."""
  curve = {}
  with open(path, encoding='utf-8') as f:
    for line in f:
      record = json.loads(line)
      curve[int(record['step'])] = record.get(key)
  return [[step, curve[step]] for step in sorted(curve)]


def plot_curves(
  curves: dict[str, list],
  path: str,
  title: str,
  ylabel: str,
  hlines: dict[str, float] | None = None,
) -> None:
  """One line per named curve ([[x, y], ...]) and optional horizontal reference lines, as a PNG."""
  import matplotlib  # deferred: heavy, only for plots

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # deferred: heavy, only for plots

  fig, ax = plt.subplots(figsize=(5.5, 3.8))
  for name, curve in curves.items():
    ax.plot([x for x, _ in curve], [y for _, y in curve], marker='o', markersize=3, label=name)
  for (name, value), style in zip((hlines or {}).items(), ('--', ':', '-.')):
    ax.axhline(value, linestyle=style, linewidth=1, color='black', label=name)
  ax.set_xlabel('environment steps')
  ax.set_ylabel(ylabel)
  ax.set_title(title)
  ax.grid(alpha=0.3)
  if len(curves) > 1 or hlines:
    ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def _draw_bands(
  ax, curves: dict[str, list[list]], hlines: dict[str, float] | None, colors: dict | None = None
) -> None:
  for name, seeds in curves.items():
    x = np.asarray([p[0] for p in seeds[0]], float)
    y = np.asarray([[np.nan if p[1] is None else p[1] for p in curve] for curve in seeds], float)
    mean, std = np.nanmean(y, 0), np.nanstd(y, 0)
    color = None if colors is None else colors[name]
    (line,) = ax.plot(x, mean, linewidth=1.5, label=name, color=color)
    ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.15)
  for (name, value), style in zip((hlines or {}).items(), ('--', ':', '-.')):
    ax.axhline(value, linestyle=style, linewidth=1, color='black', label=name)
  ax.set_xlabel('environment steps')
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7, loc='best')


def plot_band_curves(
  curves: dict[str, list[list]],
  path: str,
  title: str,
  ylabel: str,
  hlines: dict[str, float] | None = None,
) -> None:
  """Mean ± std bands over seeds: each name maps to per-seed curves ([[x, y], ...], the same x), as a
  PNG; reference lines are drawn and named in the legend."""
  import matplotlib  # deferred: heavy, only for plots

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # deferred: heavy, only for plots

  fig, ax = plt.subplots(figsize=(6.5, 4.2))
  _draw_bands(ax, curves, hlines)
  ax.set_ylabel(ylabel)
  ax.set_title(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def plot_band_panels(
  panels: dict[str, tuple[dict[str, list[list]], dict[str, float]]],
  path: str,
  ylabel: str,
  log_x: bool = False,
) -> None:
  """`plot_band_curves` side by side: each panel title maps to (curves, hlines); one PNG. A curve's
  name has the same colour in every panel."""
  import matplotlib  # deferred: heavy, only for plots

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # deferred: heavy, only for plots

  fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False)
  names = dict.fromkeys(name for curves, _ in panels.values() for name in curves)
  cycle = plt.rcParams['axes.prop_cycle'].by_key()['color']
  colors = {name: cycle[i % len(cycle)] for i, name in enumerate(names)}
  for ax, (title, (curves, hlines)) in zip(axes[0], panels.items()):
    _draw_bands(ax, curves, hlines, colors)
    if log_x:
      ax.set_xscale('log')
    ax.set_title(title, fontsize=10)
  axes[0][0].set_ylabel(ylabel)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


VERSIONED_PACKAGES = (
  'jax',
  'jaxlib',
  'flax',
  'optax',
  'orbax-checkpoint',
  'chex',
  'numpy',
  'ml-collections',
  'gymnasium',
  'mujoco',
  'brax',
)


def package_versions() -> dict[str, str | None]:
  """Python's and the stack's package versions (None: not installed), for results.json."""
  versions = {'python': platform.python_version()}
  for name in VERSIONED_PACKAGES:
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      versions[name] = None
  return versions


def write_results(workdir: str, results: dict) -> str:
  """Writes `workdir/results.json` (with `versions`: `package_versions()`, and `compilation`: the
  executables this process compiled and their seconds, `cljax.compilations.stats()`, when counted)
  atomically; its path."""
  path = os.path.join(workdir, 'results.json')
  tmp = path + '.tmp'
  extra = {'versions': package_versions()}
  if compilations.stats() is not None:
    extra['compilation'] = compilations.stats()
  with open(tmp, 'w', encoding='utf-8') as f:
    json.dump({**results, **extra}, f, indent=2)
  os.replace(tmp, path)
  return path
