"""End-to-end runs of scripts/train_irl.py in a subprocess: outputs, every algorithm, exact resume."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from killing import damage_checkpoint, kill_when_exists

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.slow
QUICK = ['--config', 'configs/irl/pointmaze.py:quick']
RESULT_KEYS = {'algo', 'env', 'env_steps', 'final_return', 'expert_return', 'steps_to_90pct_expert'}


def script(*args):
  return [sys.executable, os.path.join(ROOT, 'scripts', 'train_irl.py'), *args]


def run(cmd):
  return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)


def test_opirl_outputs_and_exact_resume_after_kill(tmp_path):
  args = QUICK + ['--config.algo=opirl', '--config.num_seeds=2', '--config.loop.num_env_steps=4000']
  reference = tmp_path / 'reference'
  proc = run(script(*args, f'--workdir={reference}'))
  assert proc.returncode == 0, proc.stderr[-3000:]
  results = json.loads((reference / 'results.json').read_text())
  assert RESULT_KEYS <= set(results)
  assert results['algo'] == 'opirl' and results['env'] == 'PointMaze-Left'
  assert results['env_steps'] == 4000 and results['seeds'] == [0, 1]
  assert [s for s, _ in results['learning_curve']] == [1000, 2000, 3000, 4000]
  assert results['expert_return'] > results['random_return']
  # Quiet by default: no orbax / absl INFO line; not a terminal, so a plain line per evaluation.
  output = (proc.stdout + proc.stderr).splitlines()
  assert not [l for l in output if re.match(r'I\d{4} ', l)], output[:5]
  assert sum('environment steps, evaluation return' in l for l in output) == 4 and len(output) <= 10
  assert (reference / 'learning_curve.png').read_bytes()[:4] == b'\x89PNG'
  assert sorted(os.listdir(reference / 'checkpoints')) == ['3000', '4000']  # keep_checkpoints=2
  lines = [json.loads(l) for l in (reference / 'metrics.jsonl').read_text().splitlines()]
  for key in (
    'eval_return',
    'eval_return_seed0',
    'discriminator/expert_accuracy',
    'discriminator/policy_accuracy',
    'discriminator/reward',
    'discriminator/bce',
    'time/wall_s',
    'time/env_steps_per_s',
  ):
    assert all(key in l for l in lines), key
  # Time in the log: seconds since the start grow, and every period ran at a positive rate.
  wall = [l['time/wall_s'] for l in lines]
  assert wall == sorted(wall) and all(l['time/env_steps_per_s'] > 0 for l in lines)
  record = json.loads((reference / 'reward' / 'seed1' / 'reward.json').read_text())
  assert record['env'] == 'PointMaze-Left' and record['discriminator_config']['kind'] == 'airl'
  # Issue 16: the run's wall-clock by phase, adding up to the whole, and its compilations.
  phases = results['time']
  named = ('imports', 'data', 'compilation', 'training', 'evaluation', 'checkpoints', 'report')
  assert all(phases[p] > 0 for p in named) and phases['wall_over_training'] > 1
  assert sum(phases[p] for p in (*named, 'other')) == pytest.approx(phases['wall_s'], abs=0.02)
  assert results['compilation']['executables'] > 0

  workdir = tmp_path / 'killed'
  kill_when_exists(script(*args, f'--workdir={workdir}'), ROOT, workdir / 'checkpoints' / '2000')
  assert not (workdir / 'results.json').exists(), 'the run finished before the kill'
  proc = run(script(*args, f'--workdir={workdir}'))
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'Resuming' in proc.stdout
  resumed = json.loads((workdir / 'results.json').read_text())
  assert resumed['learning_curve'] == results['learning_curve']
  assert resumed['per_seed'] == results['per_seed']
  # The clock goes on from the checkpoint's seconds: the log's wall-clock never steps back (the last
  # record of a step counts, as in read_curve: a period logged before the kill is logged again).
  records = [json.loads(l) for l in (workdir / 'metrics.jsonl').read_text().splitlines()]
  wall = [w for _, w in sorted({r['step']: r['time/wall_s'] for r in records}.items())]
  assert len(wall) == 4 and wall == sorted(wall)

  # A damaged newest checkpoint (a crash mid-write) is reported in one line, set aside, and the run
  # resumes from the one before it to the same results; none restoring is one line and status 1.
  damaged = tmp_path / 'damaged'
  shutil.copytree(reference, damaged)
  (damaged / 'results.json').unlink()
  damage_checkpoint(damaged / 'checkpoints' / '4000', 'truncate')
  proc = run(script(*args, f'--workdir={damaged}'))
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert sum('does not restore' in l for l in proc.stdout.splitlines()) == 1, proc.stdout
  assert 'Resuming' in proc.stdout and 'at 3000 environment steps' in proc.stdout
  assert 'Traceback' not in proc.stderr
  assert (damaged / 'checkpoints' / '4000.corrupt').is_dir()
  again = json.loads((damaged / 'results.json').read_text())
  assert again['learning_curve'] == results['learning_curve']
  assert again['per_seed'] == results['per_seed']

  (damaged / 'results.json').unlink()
  damage_checkpoint(damaged / 'checkpoints' / '4000', 'metadata')
  damage_checkpoint(damaged / 'checkpoints' / '3000', 'delete')
  proc = run(script(*args, f'--workdir={damaged}'))
  assert proc.returncode == 1
  assert proc.stderr.strip().splitlines()[-1].startswith('train_irl.py: no checkpoint in ')
  assert 'Traceback' not in proc.stderr and not (damaged / 'results.json').exists()


def test_diverged_discriminator_stops_in_one_line_with_status_3(tmp_path):
  workdir = tmp_path / 'run'
  proc = run(
    script(
      *QUICK,
      '--config.algo=opirl',
      '--config.discriminator.learning_rate=1e6',
      '--config.loop.num_env_steps=4000',
      f'--workdir={workdir}',
    )
  )
  assert proc.returncode == 3, proc.stderr[-3000:]
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith(
    'train_irl.py: the run diverged at 1,000 environment steps: non-finite '
    'parameters and loss terms discriminator/'
  ), last
  assert 'Traceback' not in proc.stderr and 'NaN or Inf' not in proc.stderr
  assert not (workdir / 'checkpoints').exists() or not os.listdir(workdir / 'checkpoints')
  assert not (workdir / 'results.json').exists()


@pytest.mark.parametrize('algo', ['airl', 'dac', 'valuedice', 'bc'])
def test_baselines_run(tmp_path, algo):
  proc = run(script(*QUICK, f'--config.algo={algo}', f'--workdir={tmp_path / algo}'))
  assert proc.returncode == 0, proc.stderr[-3000:]
  results = json.loads((tmp_path / algo / 'results.json').read_text())
  assert results['algo'] == algo and RESULT_KEYS <= set(results)
  assert (tmp_path / algo / 'reward').exists() == (algo in ('airl', 'dac'))
  # The discriminator as trained: PointMaze's config names a rate, which every algorithm takes.
  assert results.get('discriminator', {}).get('learning_rate') == (
    3e-3 if algo in ('airl', 'dac') else None
  )


@pytest.mark.parametrize(
  'args, message',
  [
    (
      ['--config.algo=gail'],
      "config.algo must be one of ['opirl', 'airl', 'dac', 'valuedice', 'bc', 'airl_onpolicy', 'gail_onpolicy']",
    ),
    (
      ['--config.demos=demos/Pendulum'],
      "holds demonstrations for env 'Pendulum', not 'PointMaze-Left'",
    ),
    (['--config.num_trajectories=99'], 'num_episodes must be in [1, 25]'),
    (['--config.irl.policy_learner=td3'], "policy_learner must be one of ['algaedice', 'sac']"),
    (['--config.discriminator.reward_input=sas'], 'reward_input'),
  ],
)
def test_bad_config_is_rejected_before_compute(tmp_path, args, message):
  proc = run(script(*QUICK, *args, f'--workdir={tmp_path / "x"}'))
  assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr[-2000:]
  lines = proc.stderr.strip().splitlines()  # one line: the script's name, then the reason
  assert len(lines) == 1 and lines[0].startswith('train_irl.py: ') and message in lines[0], lines
  assert not (tmp_path / 'x').exists()


def test_keep_checkpoints_keeps_every_period_at_zero_and_rejects_a_negative_count(tmp_path):
  args = QUICK + ['--config.loop.num_env_steps=3000', '--config.loop.eval_every=1000']
  proc = run(script(*args, '--config.keep_checkpoints=0', f'--workdir={tmp_path / "all"}'))
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert sorted(os.listdir(tmp_path / 'all' / 'checkpoints')) == ['1000', '2000', '3000']
  proc = run(script(*args, '--config.keep_checkpoints=-1', f'--workdir={tmp_path / "bad"}'))
  assert proc.returncode == 2 and 'Traceback' not in proc.stderr
  assert 'config.keep_checkpoints must be an integer >= 0, got -1' in proc.stderr
