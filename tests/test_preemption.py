"""Preemption: on SIGTERM / SIGUSR1 a run saves its checkpoint, exits with PREEMPTED_EXIT_CODE, and
the rerun (a requeue) ends with exactly the results of an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys

import pytest
from killing import signal_when_exists

from cljax import preemption

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_guard_records_a_signal_raises_after_the_checkpoint_and_restores_handlers():
  before = signal.getsignal(signal.SIGUSR1)
  with preemption.Guard() as guard:
    guard.check(1)  # nothing yet
    os.kill(os.getpid(), signal.SIGUSR1)
    assert guard.requested
    with pytest.raises(preemption.Preempted, match='preempted by SIGUSR1 after step 2'):
      guard.check(2)
  assert signal.getsignal(signal.SIGUSR1) == before


def script(name, *args):
  return [sys.executable, os.path.join(ROOT, 'scripts', name), *args]


def run(cmd):
  return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)


def _preempt_and_resume(tmp_path, name, args, marker, signum, compare=('per_seed',)):
  """Reference run; the same run signalled once `marker` (a checkpoint) exists, which must exit with
  PREEMPTED_EXIT_CODE and no results; its rerun, which must resume to the reference's results."""
  proc = run(script(name, *args, f'--workdir={tmp_path / "reference"}'))
  assert proc.returncode == 0, proc.stderr[-3000:]
  workdir = tmp_path / 'preempted'
  code, stderr = signal_when_exists(
    script(name, *args, f'--workdir={workdir}'), ROOT, workdir / 'checkpoints' / marker, signum
  )
  assert code == preemption.PREEMPTED_EXIT_CODE, stderr[-3000:]
  assert f'preempted by {signal.Signals(signum).name}' in stderr
  assert not (workdir / 'results.json').exists()
  proc = run(script(name, *args, f'--workdir={workdir}'))
  assert proc.returncode == 0 and 'Resuming' in proc.stdout, proc.stderr[-3000:]
  reference = json.loads((tmp_path / 'reference' / 'results.json').read_text())
  resumed = json.loads((workdir / 'results.json').read_text())
  for key in compare:
    assert resumed[key] == reference[key], key


@pytest.mark.slow
@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGUSR1])
def test_train_cl_checkpoints_exits_and_resumes_to_the_same_results(tmp_path, signum):
  _preempt_and_resume(
    tmp_path,
    'train_cl.py',
    ['--config', 'configs/cl/split_digits.py:quick', '--config.method=ewc', '--config.num_seeds=2'],
    '2',
    signum,
  )


@pytest.mark.slow
def test_train_irl_checkpoints_exits_and_resumes_to_the_same_results(tmp_path):
  _preempt_and_resume(
    tmp_path,
    'train_irl.py',
    [
      '--config',
      'configs/irl/pointmaze.py:quick',
      '--config.algo=opirl',
      '--config.loop.num_env_steps=3000',
    ],
    '1000',
    signal.SIGTERM,
  )


@pytest.mark.slow
def test_train_expert_checkpoints_exits_and_resumes_to_the_same_results(tmp_path):
  _preempt_and_resume(
    tmp_path,
    'train_expert.py',
    [
      '--config',
      'configs/rl/sac.py:Pendulum',
      '--config.loop.num_env_steps=3000',
      '--config.loop.eval_every=1000',
      '--config.loop.start_steps=500',
      '--config.loop.update_after=500',
      '--config.loop.eval_episodes=2',
      '--config.sac.hidden_sizes=(32, 32)',
      '--final_eval_episodes=2',
    ],
    '1000',
    signal.SIGTERM,
    compare=('learning_curve', 'final_return'),
  )
