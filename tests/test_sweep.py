"""Sweeps (cljax/sweep.py, scripts/sweep.py): expansion, the job-array script, local runs, a real
SLURM job array on the single-node cluster of scripts/slurm_local.sh, and preemption + requeue there.

The SLURM tests skip when no controller answers, unless CLJAX_REQUIRE_SLURM=1 (set by .ci/run, which
starts the cluster), where they fail instead."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from cljax import preemption, sweep
from cljax.config import ConfigError
from irl import config_defaults as common

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS = 'configs/cl/split_digits.py:quick'


def test_expand_lists_each_task_with_its_overrides_workdir_and_command(tmp_path):
  tasks = sweep.expand(
    'train_irl.py', 'configs/irl/mujoco.py:Hopper-v5', str(tmp_path), {'loop.num_env_steps': 20000}
  )
  assert len(tasks) == 15 and [t.index for t in tasks] == list(range(15))
  # The sweep's table evaluation schedule (common.table_overrides), then the --set override.
  every = common.table_budget('Hopper-v5', 'airl') // common.TABLE_EVALS_PER_RUN
  episodes = common.TABLE_EVAL_EPISODES
  assert tasks[4].overrides == {
    'algo': 'airl',
    'seed': 1,
    'loop.num_env_steps': 20000,
    'loop.eval_every': every,
    'loop.eval_episodes': episodes,
  }
  assert tasks[4].workdir.startswith(str(tmp_path / '004-algo=airl_seed=1_num_env_steps=20000'))
  assert tasks[4].command[-6:] == [
    '--config.algo=airl',
    '--config.seed=1',
    '--config.loop.num_env_steps=20000',
    f'--config.loop.eval_every={every}',
    f'--config.loop.eval_episodes={episodes}',
    f'--workdir={tasks[4].workdir}',
  ]
  assert tasks[4].command[3].endswith('configs/irl/mujoco.py:Hopper-v5')
  assert len({t.workdir for t in tasks}) == 15
  assert sweep.flag_value((64, 64)) == '(64, 64)' and sweep.flag_value((8,)) == '(8,)'
  assert sweep.flag_value(1e-5) == '1e-05'


@pytest.mark.parametrize(
  'config, extra, message',
  [
    (
      'configs/irl/mujoco.py:Hopper-v5',
      {'loop.num_env_stepz': 1},
      "'loop.num_env_stepz' is not a field",
    ),
    ('configs/irl/transfer.py', {}, 'declares no sweep'),
    ('configs/nowhere.py', {}, 'no such config file'),
  ],
)
def test_expand_rejects_bad_sweeps_before_anything_runs(tmp_path, config, extra, message):
  with pytest.raises(ConfigError, match=message):
    sweep.expand('train_irl.py', config, str(tmp_path), extra)
  assert not os.listdir(tmp_path)


def test_sbatch_script_is_a_job_array_that_forwards_signals_and_requeues(tmp_path):
  tasks = sweep.expand('train_cl.py', DIGITS, str(tmp_path))
  text = open(
    sweep.write_sbatch(
      [tasks[0], tasks[2], tasks[3]], str(tmp_path), job_name='t', max_parallel=2, time='01:00:00'
    )
  ).read()
  assert '#SBATCH --array=0,2,3%2' in text and '#SBATCH --time=01:00:00' in text
  assert '#SBATCH --requeue' in text and '#SBATCH --signal=B:USR1@120' in text
  assert 'TASKS[2]=' in text and 'TASKS[1]=' not in text
  assert f'if [ "$status" -eq {preemption.PREEMPTED_EXIT_CODE} ]' in text
  assert subprocess.run(['bash', '-n', str(tmp_path / 'sweep.sbatch')]).returncode == 0


def test_collect_flattens_results_and_marks_unfinished_tasks(tmp_path):
  tasks = sweep.expand('train_cl.py', DIGITS, str(tmp_path))
  os.makedirs(tasks[1].workdir)
  with open(os.path.join(tasks[1].workdir, 'results.json'), 'w') as f:
    json.dump({'average_accuracy': 0.9, 'mean': {'average_accuracy': 0.8}, 'matrix': [[1]]}, f)
  rows = sweep.collect(tasks)
  assert [r['done'] for r in rows] == [False, True, False, False]
  assert rows[1]['mean.average_accuracy'] == 0.8 and 'matrix' not in rows[1]
  assert rows[1]['override.method'] == 'ewc'
  csv_path, _ = sweep.write_table(rows, str(tmp_path))
  assert open(csv_path).read().count('\n') == 5


def run_sweep(*args, timeout=900):
  return subprocess.run(
    [sys.executable, os.path.join(ROOT, 'scripts', 'sweep.py'), *args],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=timeout,
  )


def _check_table(root, methods):
  rows = json.loads((root / 'results.json').read_text())
  assert [r['override.method'] for r in rows] == methods
  for r in rows:
    assert r['done'] and 0.5 < r['mean.average_accuracy'] <= 1.0, r
  return rows


@pytest.mark.slow
def test_local_sweep_runs_every_task_and_collects_one_table(tmp_path):
  proc = run_sweep(
    '--script=train_cl.py',
    f'--config={DIGITS}',
    f'--root={tmp_path}',
    '--max_parallel=2',
    '--metric=mean.average_accuracy',
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  _check_table(tmp_path, ['finetune', 'ewc', 'si', 'replay'])
  assert (tmp_path / 'results.png').read_bytes()[:4] == b'\x89PNG'
  # Finished tasks are not rerun.
  stamp = (tmp_path / '001-method=ewc_num_seeds=2' / 'results.json').stat().st_mtime_ns
  assert (
    run_sweep('--script=train_cl.py', f'--config={DIGITS}', f'--root={tmp_path}').returncode == 0
  )
  assert (tmp_path / '001-method=ewc_num_seeds=2' / 'results.json').stat().st_mtime_ns == stamp


def _require_slurm():
  up = (
    shutil.which('sbatch') is not None
    and subprocess.run(['sinfo', '-h'], capture_output=True, timeout=10).returncode == 0
  )
  if not up:
    if os.environ.get('CLJAX_REQUIRE_SLURM') == '1':
      pytest.fail(
        'CLJAX_REQUIRE_SLURM=1 but no SLURM controller answers (bash scripts/slurm_local.sh start)'
      )
    pytest.skip('no running SLURM controller (start one with: bash scripts/slurm_local.sh start)')


@pytest.mark.slow
def test_slurm_sweep_runs_as_one_job_array(tmp_path):
  _require_slurm()
  proc = run_sweep(
    '--script=train_cl.py',
    f'--config={DIGITS}',
    f'--root={tmp_path}',
    '--launcher=slurm',
    '--poll_seconds=1',
  )
  assert proc.returncode == 0, proc.stderr[-3000:] + '\n'.join(
    p.read_text()[-2000:] for p in (tmp_path / 'logs').glob('*.out')
  )
  _check_table(tmp_path, ['finetune', 'ewc', 'si', 'replay'])
  logs = sorted(p.name for p in (tmp_path / 'logs').glob('*.out'))
  assert len(logs) == 4 and len({name.split('_')[0] for name in logs}) == 1  # one array job


def _array_task_state(job_task):
  out = subprocess.run(
    ['squeue', '-h', '-j', job_task.split('_')[0], '-o', '%i %T'], capture_output=True, text=True
  )
  for line in out.stdout.splitlines():
    name, state = line.split()
    if name == job_task:
      return state
  return None


@pytest.mark.slow
def test_slurm_task_preempted_by_sigterm_is_requeued_and_resumes_to_the_same_results(tmp_path):
  _require_slurm()
  common = [
    '--script=train_irl.py',
    '--config=configs/irl/pointmaze.py:quick',
    '--only=0',
    '--set=num_seeds=1',
    '--set=loop.num_env_steps=4000',
    '--set=loop.eval_every=1000',
    '--set=loop.eval_episodes=4',
  ]
  local = run_sweep(*common, f'--root={tmp_path / "local"}')
  assert local.returncode == 0, local.stderr[-3000:]

  root = tmp_path / 'slurm'
  proc = run_sweep(*common, f'--root={root}', '--launcher=slurm', '--nowait')
  assert proc.returncode == 0, proc.stderr[-3000:]
  job_task = proc.stdout.strip().splitlines()[-1] + '_0'
  task_dir = type(root)(json.loads((root / 'sweep.json').read_text())['tasks'][0]['workdir'])
  deadline = time.monotonic() + 300
  while not (task_dir / 'checkpoints' / '1000').is_dir():
    assert time.monotonic() < deadline, 'the SLURM task made no checkpoint in 300 s'
    time.sleep(0.2)
  # What preemption does: SIGTERM to the batch script, which forwards it to the run.
  subprocess.run(['scancel', '--batch', '--signal=TERM', job_task], check=True)
  deadline = time.monotonic() + 400
  while _array_task_state(job_task) is not None:
    assert time.monotonic() < deadline, f'{job_task} still queued after 400 s'
    time.sleep(1)
  log = next((root / 'logs').glob('*_0.out')).read_text()
  assert 'preempted: requeueing' in log and 'restart 1' in log, log[-3000:]
  assert 'Resuming' in log, log[-3000:]
  finished = json.loads((task_dir / 'results.json').read_text())
  reference = json.loads(next((tmp_path / 'local').glob('000-*/results.json')).read_text())
  assert finished['per_seed'] == reference['per_seed']
