r"""Sweeps declared in config files, run locally or as one SLURM job array, collected into one table.

A config file declares a sweep as a function that calls `add(**overrides)` once per task (big_vision's
form; the overrides are dotted config fields):

  def sweep(add, arg=None):
    for method in ('ewc', 'si'):
      add(method=method, num_seeds=3, **{'ewc.ewc_lambda': 100.0})

`expand` turns it into `Task`s (an index, the overrides, a work directory `<root>/<index>-<slug>` and
the command line of the training script); `write_sbatch` writes the job-array script a user can read
and submit; `collect` reads every task's `results.json` into rows.

Preemption under SLURM: the batch script runs the task in the background and forwards SIGTERM and
SIGUSR1 (sent by `scancel --batch`, by preemption, or `--signal=B:USR1@<s>` before the time limit)
to it; the scripts checkpoint and exit with `cljax.preemption.PREEMPTED_EXIT_CODE`, and the batch
script then requeues its own array task, which resumes from the checkpoint.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import shlex
import sys
from typing import Any

from cljax.config import ConfigError, load_module
from cljax.preemption import PREEMPTED_EXIT_CODE

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass(frozen=True)
class Task:
  index: int
  overrides: dict
  workdir: str
  command: list[str]


def load_config_module(config: str):
  """(module, arg) of 'path/to/config.py[:arg]' (relative paths are from the repository root)."""
  path, _, arg = config.partition(':')
  return load_module(path), (arg or None)


def flag_value(value: Any) -> str:
  """A config value as ml_collections' `--config.field=...` flag parser reads it."""
  if isinstance(value, (list, tuple)):
    return '(' + ', '.join(flag_value(v) for v in value) + (',)' if len(value) == 1 else ')')
  if isinstance(value, float):
    return repr(value)
  return str(value)


def slug(overrides: dict, limit: int = 60) -> str:
  text = '_'.join(f'{k.split(".")[-1]}={flag_value(v)}' for k, v in overrides.items())
  return re.sub(r'[^A-Za-z0-9_.=-]+', '', text)[:limit] or 'task'


def expand(script: str, config: str, root: str, extra_overrides: dict | None = None) -> list[Task]:
  """The tasks of the sweep declared by `config`'s `sweep(add, arg)`; each task's overrides are
  checked against the config (an unknown field is a ConfigError before anything runs)."""
  module, arg = load_config_module(config)
  if not hasattr(module, 'sweep'):
    raise ConfigError(f'--config: {config.partition(":")[0]} declares no sweep(add, arg=None)')
  script_path = os.path.join(ROOT, 'scripts', script)
  if not os.path.isfile(script_path):
    raise ConfigError(f'--script: no such script scripts/{script}')
  listed = []
  module.sweep(lambda **overrides: listed.append(overrides), arg)
  if not listed:
    raise ConfigError(f'--config: the sweep of {config} lists no tasks')
  base = module.get_config(arg)
  config_flag = os.path.abspath(os.path.join(ROOT, config.partition(':')[0]))
  config_flag += f':{arg}' if arg else ''
  tasks = []
  for index, overrides in enumerate(listed):
    overrides = {**overrides, **(extra_overrides or {})}
    for field in overrides:
      node = base
      *path, leaf = field.split('.')
      try:
        for p in path:
          node = node[p]
        node[leaf]  # pylint: disable=pointless-statement
      except (KeyError, AttributeError, TypeError):
        raise ConfigError(f'sweep task {index}: {field!r} is not a field of {config}') from None
    workdir = os.path.join(os.path.abspath(root), f'{index:03d}-{slug(overrides)}')
    command = [
      sys.executable,
      script_path,
      '--config',
      config_flag,
      *(f'--config.{k}={flag_value(v)}' for k, v in overrides.items()),
      f'--workdir={workdir}',
    ]
    tasks.append(Task(index, overrides, workdir, command))
  return tasks


def write_manifest(tasks: list[Task], root: str, script: str, config: str) -> str:
  path = os.path.join(root, 'sweep.json')
  os.makedirs(root, exist_ok=True)
  with open(path, 'w', encoding='utf-8') as f:
    json.dump(
      {'script': script, 'config': config, 'tasks': [dataclasses.asdict(t) for t in tasks]},
      f,
      indent=1,
    )
  return path


def write_sbatch(
  tasks: list[Task],
  root: str,
  *,
  job_name: str,
  partition: str = '',
  time: str = '',
  cpus_per_task: int = 1,
  gpus_per_task: int = 0,
  mem: str = '',
  max_parallel: int = 0,
  signal_seconds: int = 120,
  extra: tuple[str, ...] = (),
) -> str:
  """Writes `<root>/sweep.sbatch`: one array task per sweep task, preemption-safe (module doc)."""
  logs = os.path.join(root, 'logs')
  os.makedirs(logs, exist_ok=True)
  indices = [t.index for t in tasks]
  contiguous = indices == list(range(indices[0], indices[0] + len(indices)))
  array = (f'{indices[0]}-{indices[-1]}' if contiguous else ','.join(map(str, indices))) + (
    f'%{max_parallel}' if max_parallel else ''
  )
  lines = [
    '#!/bin/bash',
    f'#SBATCH --job-name={job_name}',
    f'#SBATCH --array={array}',
    f'#SBATCH --output={logs}/%A_%a.out',
    f'#SBATCH --cpus-per-task={cpus_per_task}',
    '#SBATCH --requeue',
    '#SBATCH --open-mode=append',
    f'#SBATCH --signal=B:USR1@{signal_seconds}',
  ]
  lines += [f'#SBATCH --partition={partition}'] * bool(partition)
  lines += [f'#SBATCH --time={time}'] * bool(time)
  lines += [f'#SBATCH --mem={mem}'] * bool(mem)
  lines += [f'#SBATCH --gpus-per-task={gpus_per_task}'] * bool(gpus_per_task)
  lines += [f'#SBATCH {e}' for e in extra]
  lines += [
    '',
    '# Written by scripts/sweep.py: the command of each sweep task (its index is the array',
    '# index; sweep.json lists the same tasks).',
    'declare -A TASKS',
  ]
  lines += [f'TASKS[{t.index}]={shlex.quote(shlex.join(t.command))}' for t in tasks]
  lines += [
    '',
    f'cd {shlex.quote(ROOT)}',
    'echo "task $SLURM_ARRAY_TASK_ID (restart ${SLURM_RESTART_COUNT:-0}) on $(hostname)"',
    '# The task runs in the background so that this shell can forward preemption signals;',
    f'# it then checkpoints and exits with {PREEMPTED_EXIT_CODE}, and the array task is requeued.',
    'bash -c "exec ${TASKS[$SLURM_ARRAY_TASK_ID]}" &',
    'child=$!',
    'trap \'kill -TERM "$child" 2>/dev/null\' TERM',
    'trap \'kill -USR1 "$child" 2>/dev/null\' USR1',
    'while true; do',
    '  wait "$child"; status=$?',
    '  # wait returns early (status > 128) when a trapped signal arrives; wait again.',
    '  kill -0 "$child" 2>/dev/null || break',
    'done',
    f'if [ "$status" -eq {PREEMPTED_EXIT_CODE} ]; then',
    '  echo "task $SLURM_ARRAY_TASK_ID preempted: requeueing"',
    '  scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"',
    'fi',
    'exit "$status"',
    '',
  ]
  path = os.path.join(root, 'sweep.sbatch')
  with open(path, 'w', encoding='utf-8') as f:
    f.write('\n'.join(lines))
  return path


def _flatten(prefix: str, value: Any, out: dict) -> None:
  if isinstance(value, dict):
    for k, v in value.items():
      _flatten(f'{prefix}{k}.', v, out)
  elif value is None or isinstance(value, (int, float, str, bool)):
    out[prefix[:-1]] = value


def collect(tasks: list[Task]) -> list[dict]:
  """One row per task: its index, overrides, work directory, `done`, and every scalar of its
  `results.json` (nested dicts flattened with dots; lists left out)."""
  rows = []
  for t in tasks:
    row = {
      'task': t.index,
      **{f'override.{k}': flag_value(v) for k, v in t.overrides.items()},
      'workdir': t.workdir,
    }
    path = os.path.join(t.workdir, 'results.json')
    row['done'] = os.path.exists(path)
    if row['done']:
      with open(path, encoding='utf-8') as f:
        _flatten('', json.load(f), row)
    rows.append(row)
  return rows


def write_table(rows: list[dict], root: str) -> tuple[str, str]:
  """`<root>/results.csv` and `<root>/results.json` of the collected rows."""
  columns = []
  for row in rows:
    columns += [c for c in row if c not in columns]
  csv_path, json_path = os.path.join(root, 'results.csv'), os.path.join(root, 'results.json')
  with open(csv_path, 'w', newline='', encoding='utf-8') as f:
    writer = csv.DictWriter(f, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
  with open(json_path, 'w', encoding='utf-8') as f:
    json.dump(rows, f, indent=1)
  return csv_path, json_path


def plot_metric(rows: list[dict], metric: str, path: str) -> bool:
  """A bar per finished task of `metric` (with `metric`_std as error bar when present)."""
  values = [(r, r.get(metric)) for r in rows if isinstance(r.get(metric), (int, float))]
  if not values:
    return False
  import matplotlib  # deferred: heavy, only for plots

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # deferred: heavy, only for plots

  fig, ax = plt.subplots(figsize=(max(4.0, 0.5 * len(values) + 2), 3.6))
  labels = [os.path.basename(r['workdir']) for r, _ in values]
  errors = [r.get(f'{metric}_std') or 0.0 for r, _ in values]
  ax.bar(range(len(values)), [v for _, v in values], yerr=errors, capsize=3)
  ax.set_xticks(range(len(values)), labels, rotation=45, ha='right', fontsize=7)
  ax.set_ylabel(metric)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return True
