"""End-to-end runs of the RL scripts (train_expert.py, collect_demos.py) in a subprocess."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from killing import kill_when_exists

from envs import registry
from irl import demos, experts

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.slow

PENDULUM = [
  '--config',
  'configs/rl/sac.py:Pendulum',
  '--config.loop.num_env_steps=5000',
  '--config.loop.eval_every=1000',
  '--config.loop.start_steps=500',
  '--config.loop.update_after=500',
  '--config.loop.eval_episodes=4',
  '--config.sac.hidden_sizes=(64, 64)',
  '--final_eval_episodes=4',
]


def script(name, *args):
  return [sys.executable, os.path.join(ROOT, 'scripts', name), *args]


def run(cmd):
  return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)


def _actions(expert_dir, env_name):
  env = registry.make(env_name)
  policy, _ = experts.load_policy(str(expert_dir), env.spec)
  obs = jax.random.normal(jax.random.key(0), (16,) + env.spec.observation.shape)
  return np.asarray(policy(obs))


def test_train_expert_jax_env_outputs_and_exact_resume_after_kill(tmp_path):
  reference = tmp_path / 'reference'
  proc = run(script('train_expert.py', *PENDULUM, f'--workdir={reference}'))
  assert proc.returncode == 0, proc.stderr[-3000:]
  results = json.loads((reference / 'results.json').read_text())
  assert results['env'] == 'Pendulum' and results['env_steps'] == 5000
  assert [s for s, _ in results['learning_curve']] == [1000, 2000, 3000, 4000, 5000]
  assert (reference / 'learning_curve.png').read_bytes()[:4] == b'\x89PNG'
  assert any(f.startswith('events.out.tfevents') for f in os.listdir(reference / 'tensorboard'))
  record = json.loads((reference / 'expert' / 'expert.json').read_text())
  assert (
    record['kind'] == 'sac' and record['env'] == 'Pendulum' and record['num_eval_episodes'] == 4
  )
  assert record['return_mean'] == pytest.approx(results['final_return'])

  workdir = tmp_path / 'killed'
  kill_when_exists(
    script('train_expert.py', *PENDULUM, f'--workdir={workdir}'),
    ROOT,
    workdir / 'checkpoints' / '2000',
  )
  assert not (workdir / 'results.json').exists(), 'the run finished before the kill'
  proc = run(script('train_expert.py', *PENDULUM, f'--workdir={workdir}'))
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'Resuming' in proc.stdout
  resumed = json.loads((workdir / 'results.json').read_text())
  assert resumed['learning_curve'] == results['learning_curve']
  assert resumed['final_return'] == results['final_return']
  np.testing.assert_array_equal(
    _actions(workdir / 'expert', 'Pendulum'), _actions(reference / 'expert', 'Pendulum')
  )


def test_scripted_expert_and_demonstrations(tmp_path):
  workdir = tmp_path / 'maze'
  proc = run(
    script(
      'train_expert.py',
      '--config',
      'configs/rl/sac.py:PointMaze-Left',
      f'--workdir={workdir}',
      '--final_eval_episodes=8',
    )
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  record = json.loads((workdir / 'expert' / 'expert.json').read_text())
  assert record['kind'] == 'scripted' and record['return_mean'] > -15  # standing still: about -55
  out = tmp_path / 'demos' / 'maze'
  proc = run(
    script(
      'collect_demos.py',
      '--env=PointMaze-Left',
      f'--expert={workdir / "expert"}',
      '--episodes=5',
      '--seed=3',
      f'--out={out}',
    )
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  transitions, meta = demos.load(str(out), env='PointMaze-Left', obs_dim=6, act_dim=2)
  assert meta['num_episodes'] == 5 and transitions.obs.shape == (500, 6)
  assert meta['seed'] == 3 and meta['env_version'].startswith('cljax')
  # Consecutive rows of an episode chain: next_obs of one row is the obs of the next.
  np.testing.assert_array_equal(transitions.next_obs[:99], transitions.obs[1:100])
  with pytest.raises(demos.DemoError, match='not .PointMaze-Right.'):
    demos.load(str(out), env='PointMaze-Right')


def test_train_expert_gymnasium_host_loop_and_resume(tmp_path):
  args = [
    '--config',
    'configs/rl/sac.py:Hopper-v5',
    '--config.loop.num_env_steps=1000',
    '--config.loop.eval_every=500',
    '--config.loop.start_steps=200',
    '--config.loop.update_after=200',
    '--config.loop.eval_episodes=2',
    '--config.loop.replay_capacity=2000',
    '--config.sac.hidden_sizes=(32, 32)',
    '--final_eval_episodes=2',
  ]
  workdir = tmp_path / 'hopper'
  proc = run(script('train_expert.py', *args, f'--workdir={workdir}'))
  assert proc.returncode == 0, proc.stderr[-3000:]
  results = json.loads((workdir / 'results.json').read_text())
  assert [s for s, _ in results['learning_curve']] == [500, 1000]
  out = tmp_path / 'hopper_demos'
  proc = run(
    script(
      'collect_demos.py',
      '--env=Hopper-v5',
      f'--expert={workdir / "expert"}',
      '--episodes=2',
      f'--out={out}',
    )
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  transitions, meta = demos.load(str(out), env='Hopper-v5', obs_dim=11, act_dim=3)
  assert meta['env_version'].startswith('gymnasium')
  # A longer run in the same workdir is a different config: refused, not silently mixed.
  proc = run(
    script('train_expert.py', *args, '--config.loop.num_env_steps=1500', f'--workdir={workdir}')
  )
  assert proc.returncode != 0 and 'different config' in proc.stderr


@pytest.mark.parametrize(
  'args, message',
  [
    (['--config', 'configs/rl/sac.py:Hopper-v9'], 'config.env must be one of'),
    (
      ['--config', 'configs/rl/sac.py:Hopper-v5', '--config.expert=scripted'],
      'config.expert=scripted needs one of',
    ),
    (['--config', 'configs/rl/sac.py:Pendulum', '--config.loop.eval_every=3000'], 'num_env_steps'),
  ],
)
def test_train_expert_rejects_bad_config(tmp_path, args, message):
  proc = run(script('train_expert.py', *args, f'--workdir={tmp_path / "x"}'))
  assert proc.returncode != 0 and message in proc.stderr, proc.stderr[-2000:]
  assert not (tmp_path / 'x').exists()
