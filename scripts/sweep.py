r"""Expands the sweep a config file declares, runs it locally or on SLURM, and collects one table.

  python scripts/sweep.py --script=train_cl.py --config=configs/cl/split_fmnist.py --root=runs/sweeps/split
  python scripts/sweep.py --script=train_irl.py --config=configs/irl/mujoco.py:Hopper-v5 \
      --root=runs/sweeps/hopper --launcher=slurm --partition=gpu --gpus_per_task=1 --time=24:00:00

The config's `sweep(add, arg=None)` lists the tasks (cljax/sweep.py); `--set field=value` adds
overrides to every task (e.g. `--set loop.num_env_steps=20000`). Each task gets its own work directory
`<root>/<index>-<overrides>`, so a task that is rerun (or requeued) resumes from its checkpoints and
one that finished is skipped. `<root>` receives `sweep.json` (the manifest), and after the tasks
`results.csv` / `results.json` (one row per task: its overrides and the scalars of its results.json)
and, with `--metric`, `results.png`.

--launcher=local runs the tasks here, `--max_parallel` at a time (default 1).
--launcher=slurm writes `<root>/sweep.sbatch` (a plain job-array script: read it, or submit it
yourself with --dry_run), submits it with sbatch, and with --wait (default) polls squeue until every
task has left the queue, then collects. Preempted or time-limited tasks are requeued and resume.
--collect_only only rebuilds the table from the work directories.
"""

import os
import subprocess
import sys
import time

from absl import app, flags

from cljax import console

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_SCRIPT = flags.DEFINE_string(
  'script',
  None,
  'Training script under scripts/ (train_cl.py, train_irl.py, transfer_reward.py, ...).',
)
_CONFIG = flags.DEFINE_string('config', None, 'Config file declaring sweep(add, arg), with :arg.')
_ROOT = flags.DEFINE_string('root', None, "Parent of the tasks' work directories.")
_SET = flags.DEFINE_multi_string('set', [], 'field=value overrides added to every task.')
_ONLY = flags.DEFINE_list('only', [], 'Run only these task indices (the table still lists all).')
_LAUNCHER = flags.DEFINE_enum('launcher', 'local', ['local', 'slurm'], 'Where the tasks run.')
_MAX_PARALLEL = flags.DEFINE_integer(
  'max_parallel',
  0,
  'Tasks at a time (local: default 1; slurm: the array throttle, 0 = no limit).',
  lower_bound=0,
)
_DRY_RUN = flags.DEFINE_bool(
  'dry_run',
  False,
  'Write the manifest (and sweep.sbatch) and print the commands without running anything.',
)
_WAIT = flags.DEFINE_bool('wait', True, 'slurm: wait for the array to finish, then collect.')
_COLLECT_ONLY = flags.DEFINE_bool('collect_only', False, 'Only collect the table.')
_METRIC = flags.DEFINE_string(
  'metric',
  '',
  'A results.json scalar to plot per task (results.png), '
  'e.g. mean.average_accuracy or final_return.',
)
_PARTITION = flags.DEFINE_string('partition', '', 'slurm: --partition.')
_TIME = flags.DEFINE_string('time', '', 'slurm: --time limit per task.')
_CPUS = flags.DEFINE_integer('cpus_per_task', 1, 'slurm: --cpus-per-task.', lower_bound=1)
_GPUS = flags.DEFINE_integer('gpus_per_task', 0, 'slurm: --gpus-per-task.', lower_bound=0)
_MEM = flags.DEFINE_string('mem', '', 'slurm: --mem per task.')
_SIGNAL = flags.DEFINE_integer(
  'signal_seconds',
  120,
  'slurm: SIGUSR1 this long before the time limit (the task checkpoints and is requeued).',
  lower_bound=1,
)
_SBATCH_EXTRA = flags.DEFINE_multi_string(
  'sbatch', [], 'slurm: more #SBATCH lines, e.g. --sbatch=--account=abc.'
)
_POLL = flags.DEFINE_float('poll_seconds', 5.0, 'slurm: squeue polling period.', lower_bound=0.1)
flags.mark_flags_as_required(['script', 'config', 'root'])


def _parse_set(items):
  import ast

  overrides = {}
  for item in items:
    field, sep, text = item.partition('=')
    if not sep or not field:
      raise app.UsageError(f'--set takes field=value, got {item!r}')
    try:
      overrides[field] = ast.literal_eval(text)
    except (ValueError, SyntaxError):
      overrides[field] = text  # a bare string, e.g. --set method=ewc
  return overrides


def run_local(tasks, max_parallel):
  """Runs the unfinished tasks, `max_parallel` at a time; returns {index: exit code}."""
  pending = [t for t in tasks if not os.path.exists(os.path.join(t.workdir, 'results.json'))]
  running, codes = {}, {}
  while pending or running:
    while pending and len(running) < max_parallel:
      task = pending.pop(0)
      os.makedirs(task.workdir, exist_ok=True)
      log = open(os.path.join(task.workdir, 'sweep_task.log'), 'a', encoding='utf-8')  # pylint: disable=consider-using-with
      print(f'task {task.index}: {" ".join(task.command[1:])}', file=sys.stderr, flush=True)
      running[task.index] = (
        subprocess.Popen(task.command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT),
        log,
      )
    for index, (proc, log) in list(running.items()):
      if proc.poll() is not None:
        log.close()
        codes[index] = proc.returncode
        del running[index]
        print(f'task {index}: exit {proc.returncode}', file=sys.stderr, flush=True)
    time.sleep(0.2)
  return codes


def submit_slurm(sbatch_path):
  proc = subprocess.run(
    ['sbatch', '--parsable', sbatch_path], capture_output=True, text=True, check=False
  )
  if proc.returncode:
    raise app.UsageError(f'sbatch failed ({proc.returncode}): {proc.stderr.strip()}')
  return proc.stdout.strip().split(';')[0]


def wait_slurm(job_id, poll_seconds):
  """Until no task of the array is queued or running (squeue prints nothing, or no longer knows the
  job: both mean done)."""
  while True:
    proc = subprocess.run(
      ['squeue', '-h', '-j', job_id, '-o', '%i %T'], capture_output=True, text=True, check=False
    )
    if proc.returncode or not proc.stdout.strip():
      return
    time.sleep(poll_seconds)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  from cljax import sweep
  from cljax.config import ConfigError

  root = os.path.abspath(_ROOT.value)
  try:
    tasks = sweep.expand(_SCRIPT.value, _CONFIG.value, root, _parse_set(_SET.value))
  except ConfigError as e:
    raise app.UsageError(str(e)) from None
  sweep.write_manifest(tasks, root, _SCRIPT.value, _CONFIG.value)
  print(f'{len(tasks)} tasks in {root}/sweep.json', file=sys.stderr)
  selected = tasks
  if _ONLY.value:
    try:
      only = {int(i) for i in _ONLY.value}
    except ValueError:
      only = {-1}
    if not only <= set(range(len(tasks))):
      raise app.UsageError(f'--only takes task indices in 0..{len(tasks) - 1}, got {_ONLY.value}')
    selected = [t for t in tasks if t.index in only]

  if not _COLLECT_ONLY.value:
    if _LAUNCHER.value == 'local':
      if _DRY_RUN.value:
        for t in selected:
          print(' '.join(t.command))
        return
      run_local(selected, _MAX_PARALLEL.value or 1)
    else:
      job_name = os.path.basename(root) or 'sweep'
      path = sweep.write_sbatch(
        selected,
        root,
        job_name=job_name,
        partition=_PARTITION.value,
        time=_TIME.value,
        cpus_per_task=_CPUS.value,
        gpus_per_task=_GPUS.value,
        mem=_MEM.value,
        max_parallel=_MAX_PARALLEL.value,
        signal_seconds=_SIGNAL.value,
        extra=tuple(_SBATCH_EXTRA.value),
      )
      if _DRY_RUN.value:
        print(path)
        return
      job_id = submit_slurm(path)
      print(
        f'submitted job array {job_id} ({len(selected)} tasks; logs in {root}/logs)',
        file=sys.stderr,
        flush=True,
      )
      if not _WAIT.value:
        print(job_id)
        return
      wait_slurm(job_id, _POLL.value)

  rows = sweep.collect(tasks)
  csv_path, _ = sweep.write_table(rows, root)
  if _METRIC.value:
    sweep.plot_metric(rows, _METRIC.value, os.path.join(root, 'results.png'))
  done = sum(r['done'] for r in rows)
  print(f'{done}/{len(rows)} tasks finished; table: {csv_path}')
  if not all(r['done'] for r in rows if r['task'] in {t.index for t in selected}):
    sys.exit(1)


if __name__ == '__main__':
  console.run(main)
