"""End-to-end runs of scripts/transfer_reward.py, scripts/irl_results_table.py and scripts/bench_irl.py
in a subprocess, with tiny budgets."""

import json
import math
import os
import subprocess
import sys

import pytest
from killing import kill_when_exists

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.slow
TRANSFER = [
  '--config',
  'configs/irl/transfer.py:PointMaze-Right',
  '--config.loop.num_env_steps=3000',
  '--config.loop.eval_every=1000',
  '--config.loop.start_steps=500',
  '--config.loop.update_after=300',
  '--config.loop.eval_episodes=4',
  '--config.sac.hidden_sizes=(32, 32)',
  '--config.sac.batch_size=64',
]


def script(name, *args):
  return [sys.executable, os.path.join(ROOT, 'scripts', name), *args]


def run(cmd):
  return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope='module')
def pointmaze_reward(tmp_path_factory):
  """A DAC reward learned on PointMaze-Left by scripts/train_irl.py (quick config)."""
  workdir = tmp_path_factory.mktemp('irl') / 'dac'
  proc = run(
    script(
      'train_irl.py',
      '--config',
      'configs/irl/pointmaze.py:quick',
      '--config.algo=dac',
      f'--workdir={workdir}',
    )
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  return workdir / 'reward' / 'seed0'


def test_transfer_outputs_and_exact_resume_after_kill(tmp_path, pointmaze_reward):
  args = TRANSFER + [f'--config.reward={pointmaze_reward}', '--config.num_seeds=2']
  reference = tmp_path / 'reference'
  proc = run(script('transfer_reward.py', *args, f'--workdir={reference}'))
  assert proc.returncode == 0, proc.stderr[-3000:]
  results = json.loads((reference / 'results.json').read_text())
  assert results['source_algo'] == 'dac' and results['source_env'] == 'PointMaze-Left'
  assert results['env'] == 'PointMaze-Right' and results['env_steps'] == 3000
  assert results['reward'] == str(pointmaze_reward) and results['seeds'] == [0, 1]
  assert [s for s, _ in results['learning_curve']] == [1000, 2000, 3000]
  assert all(math.isfinite(r['final_return']) for r in results['per_seed'])
  assert (reference / 'learning_curve.png').read_bytes()[:4] == b'\x89PNG'
  lines = [json.loads(l) for l in (reference / 'metrics.jsonl').read_text().splitlines()]
  # The training reward is the learned one: a DAC logit, not PointMaze's negative distance.
  assert all('reward' in l and 'eval_return_seed1' in l for l in lines)

  workdir = tmp_path / 'killed'
  kill_when_exists(
    script('transfer_reward.py', *args, f'--workdir={workdir}'),
    ROOT,
    workdir / 'checkpoints' / '1000',
  )
  assert not (workdir / 'results.json').exists(), 'the run finished before the kill'
  proc = run(script('transfer_reward.py', *args, f'--workdir={workdir}'))
  assert proc.returncode == 0 and 'Resuming' in proc.stdout, proc.stderr[-3000:]
  resumed = json.loads((workdir / 'results.json').read_text())
  assert resumed['per_seed'] == results['per_seed']


def test_transfer_on_the_true_reward_and_bad_rewards_fail_before_compute(
  tmp_path, pointmaze_reward
):
  proc = run(
    script(
      'transfer_reward.py', *TRANSFER, '--config.reward=true', f'--workdir={tmp_path / "true"}'
    )
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  results = json.loads((tmp_path / 'true' / 'results.json').read_text())
  assert results['source_algo'] == 'true reward' and results['source_env'] is None

  # A PointMaze reward for an Ant target: named sizes, before any training.
  proc = run(
    script(
      'transfer_reward.py',
      '--config',
      'configs/irl/transfer.py:AmputatedAnt',
      f'--config.reward={pointmaze_reward}',
      f'--workdir={tmp_path / "ant"}',
    )
  )
  assert (
    proc.returncode != 0 and 'learned on PointMaze-Left with (obs, action) sizes' in proc.stderr
  )
  assert not (tmp_path / 'ant' / 'checkpoints').exists()
  proc = run(
    script(
      'transfer_reward.py',
      *TRANSFER,
      f'--config.reward={tmp_path}',
      f'--workdir={tmp_path / "none"}',
    )
  )
  assert proc.returncode != 0 and 'holds no learned reward' in proc.stderr
  proc = run(
    script(
      'transfer_reward.py',
      '--config',
      'configs/irl/transfer.py:Hopper-v5',
      f'--workdir={tmp_path / "x"}',
    )
  )
  assert proc.returncode != 0 and 'must be one of' in proc.stderr


def test_results_tables_run_reuse_source_runs_and_print_every_row(tmp_path):
  common = [
    '--num_seeds=2',
    '--evals_per_run=1',
    '--eval_episodes=2',
    f'--root={tmp_path / "runs"}',
    '--budgets=PointMaze-Left=1200,PointMaze-Right=1200',
    f'--plot={tmp_path / "curves.png"}',
  ]
  proc = run(
    script(
      'irl_results_table.py',
      '--envs=PointMaze-Left',
      '--algos=dac,bc',
      *common,
      f'--out={tmp_path / "imitation.json"}',
    )
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  table = json.loads((tmp_path / 'imitation.json').read_text())
  assert [(r['env'], r['algo']) for r in table['rows']] == [
    ('PointMaze-Left', 'dac'),
    ('PointMaze-Left', 'bc'),
  ]
  for r in table['rows']:
    assert r['env_steps'] == 1200 and r['seeds'] == [0, 1] and len(r['final_return_per_seed']) == 2
    assert r['device'] == 'cpu'  # the device whose wall-clock the row reports
  assert '| PointMaze-Left | dac | 1,200 |' in proc.stdout
  assert (tmp_path / 'curves.png').stat().st_size > 0
  assert len(table['rows'][0]['learning_curve_per_seed']) == 2

  source = tmp_path / 'runs' / 'PointMaze-Left' / 'dac' / 'results.json'
  stamp = source.stat().st_mtime_ns
  proc = run(
    script(
      'irl_results_table.py',
      '--table=transfer',
      '--targets=PointMaze-Right',
      '--algos=dac,bc',
      *common,
      f'--out={tmp_path / "transfer.json"}',
    )
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert source.stat().st_mtime_ns == stamp  # the source run was read, not redone
  rows = json.loads((tmp_path / 'transfer.json').read_text())['rows']
  assert [r['reward'] for r in rows] == ['dac', 'true reward']  # bc learns no reward
  assert rows[0]['source_env'] == 'PointMaze-Left' and rows[0]['seeds'] == [0, 1]
  assert '| PointMaze-Right | true reward | — | 1,200 |' in proc.stdout


@pytest.mark.parametrize('parallel', [2, 1])
def test_results_table_runs_the_seeds_of_a_host_environment_side_by_side(tmp_path, parallel):
  # Mirror: with --parallel=1 seed 1 starts (writes its config.json) only after seed 0 finished.
  # On-policy rows run on MuJoCo too (the Gymnasium vector environment), with 10x the budget.
  pytest.importorskip('mujoco')
  proc = run(
    script(
      'irl_results_table.py',
      '--envs=Hopper-v5',
      '--algos=bc,gail_onpolicy',
      '--num_seeds=2',
      '--evals_per_run=1',
      '--eval_episodes=1',
      '--budgets=Hopper-v5=250',
      f'--parallel={parallel}',
      f'--root={tmp_path / "runs"}',
      '--plot=',
      f'--out={tmp_path / "t.json"}',
    )
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  rows = json.loads((tmp_path / 't.json').read_text())['rows']
  assert [(r['algo'], r['env_steps']) for r in rows] == [('bc', 250), ('gail_onpolicy', 2500)]
  for row in rows:
    assert row['seeds'] == [0, 1] and row['seeds_per_process'] == 1
  runs = tmp_path / 'runs' / 'Hopper-v5' / 'bc'
  seed1_started = (runs / 'seed1' / 'config.json').stat().st_mtime
  seed0_finished = (runs / 'seed0' / 'results.json').stat().st_mtime
  assert (seed1_started < seed0_finished) == (parallel > 1)


@pytest.mark.parametrize(
  'flag, message',
  [
    ('--envs=Walker', "--envs: 'Walker' is not one of"),
    ('--budgets=PointMaze-Left=7', 'must be a multiple of --evals_per_run'),
    ('--budgets=Nowhere=10', '--budgets entries must be env=steps'),
  ],
)
def test_results_table_bad_flags_fail_before_any_run(tmp_path, flag, message):
  proc = run(script('irl_results_table.py', flag, f'--root={tmp_path}', f'--out={tmp_path}/t.json'))
  assert proc.returncode != 0 and message in proc.stderr
  assert not os.listdir(tmp_path)


def test_results_table_from_saved_rows_merges_files_without_running(tmp_path):
  """--rows_from: the committed tables' rows, a later file's row replacing an earlier one's, into one
  table, JSON and figure, with nothing run (no --root directory appears)."""
  saved = json.loads(open(os.path.join(ROOT, 'docs/results/irl_results.json')).read())
  # A row run elsewhere names its device beside its wall-clock.
  elsewhere = dict(
    final_return=-1.25,
    device='NVIDIA H200',
    wall_s_to_90pct_expert_mean_of_reached=12.0,
    seeds_per_process=3,
  )
  newer = dict(saved, rows=[dict(r, **elsewhere) for r in saved['rows']])
  newer['rows'] = [r for r in newer['rows'] if r['algo'] == 'dac']
  (tmp_path / 'newer.json').write_text(json.dumps(newer))
  files = f'docs/results/irl_results.json,{tmp_path}/newer.json'
  hopper = 'docs/results/irl_results_hopper_onpolicy.json'
  common = [f'--root={tmp_path}/runs', f'--out={tmp_path}/t.json', f'--plot={tmp_path}/c.png']
  proc = run(
    script(
      'irl_results_table.py',
      f'--rows_from={files},{hopper}',
      '--envs=PointMaze-Left,Hopper-v5',
      '--algos=opirl,dac,airl_onpolicy',
      *common,
    )
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  table = json.loads((tmp_path / 't.json').read_text())
  got = [(r['env'], r['algo'], r['final_return']) for r in table['rows']]
  by_key = {(r['env'], r['algo']): r['final_return'] for r in saved['rows']}
  assert got[0] == ('PointMaze-Left', 'opirl', by_key['PointMaze-Left', 'opirl'])
  assert got[1:3] == [
    ('PointMaze-Left', 'dac', -1.25),
    ('PointMaze-Left', 'airl_onpolicy', by_key['PointMaze-Left', 'airl_onpolicy']),
  ]
  assert [g[:2] for g in got[3:]] == [('Hopper-v5', 'airl_onpolicy')]
  assert table['budgets'] == {'PointMaze-Left': 100_000, 'Hopper-v5': 100_000}
  assert '| Hopper-v5 | airl_onpolicy | 1,000,000 |' in proc.stdout
  assert '| PointMaze-Left | dac | 100,000 | -1.2 ± ' in proc.stdout
  assert ' | 12 (3, NVIDIA H200) | ' in proc.stdout
  assert (tmp_path / 'c.png').stat().st_size > 0 and not (tmp_path / 'runs').exists()

  missing = run(script('irl_results_table.py', f'--rows_from={hopper}', '--envs=Pendulum', *common))
  assert missing.returncode != 0 and '--rows_from: no row for --envs=Pendulum' in missing.stderr
  unreadable = run(script('irl_results_table.py', f'--rows_from={tmp_path}/none.json', *common))
  assert unreadable.returncode != 0 and '--rows_from: cannot read' in unreadable.stderr
  assert 'Traceback' not in missing.stderr + unreadable.stderr


def test_bench_irl_prints_one_json_line_with_every_rate():
  pytest.importorskip('mujoco')
  tiny = {
    'pointmaze_steps': 12,
    'halfcheetah_steps': 6,
    'halfcheetah_warmup_steps': 4,
    'opirl_budget': 5000,
    'onpolicy_budget': 5000,
  }
  proc = run(script('bench_irl.py', *(f'--{k}={v}' for k, v in tiny.items())))
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = proc.stdout.strip().splitlines()
  assert len(lines) == 1, proc.stdout[-3000:]
  record = json.loads(lines[0])
  for key in (
    'pointmaze_steps_per_s_1seed',
    'pointmaze_steps_per_s_8seeds',
    'pointmaze_steps_per_s_8seeds_mapped',
    'pointmaze_8_over_1_ratio',
    'pointmaze_8_mapped_over_1_ratio',
    'halfcheetah_steps_per_s',
  ):
    assert isinstance(record[key], float) and math.isfinite(record[key]) and record[key] > 0, key
  assert record['algo'] == 'opirl' and record['num_seeds_vmapped'] == 8
  assert record['pointmaze_steps_timed'] == 12 and record['halfcheetah_steps_timed'] == 6
  # One discriminator and one critic update per step, every step (HalfCheetah: warm-up included).
  for suffix in ('1seed', '8seeds', '8seeds_mapped'):
    assert record[f'pointmaze_discriminator_updates_done_{suffix}'] == 12
    assert record[f'pointmaze_policy_updates_done_{suffix}'] == 12
  # 5,000 steps (one evaluation period) cannot reach 90 % of the expert: null, and said so.
  for algo in ('opirl', 'airl_onpolicy'):
    assert record[f'{algo}_wall_s_to_90pct_pointmaze'] is None
    assert record[f'{algo}_steps_to_90pct_pointmaze'] is None
    assert record[f'{algo}_wall_budget_steps'] == 5000
  # Compared at on-policy AIRL's best score: its own one period reaches it by definition.
  assert isinstance(record['airl_onpolicy_best_score_pointmaze'], float)
  assert record['airl_onpolicy_steps_to_airl_onpolicy_best_pointmaze'] == 5000
  assert record['airl_onpolicy_wall_s_to_airl_onpolicy_best_pointmaze'] > 0
  fast = record['opirl_steps_to_airl_onpolicy_best_pointmaze']
  assert record['step_ratio_at_airl_onpolicy_best'] == (None if fast is None else 5000 / fast)
  assert (record['wall_ratio_at_airl_onpolicy_best'] is None) == (fast is None)
  assert record['halfcheetah_discriminator_updates_done'] == 10
  assert record['halfcheetah_policy_updates_done'] == 10
  # OPIRL's update (discriminator and SAC, 64-wide) against the measured matmul peak.
  assert record['pointmaze_update_flops'] > 0 and record['matmul_peak_flop_per_s'] > 0
  for suffix in ('1seed', '8seeds'):
    achieved = record['pointmaze_update_flops'] * record[f'pointmaze_steps_per_s_{suffix}']
    assert record[f'pointmaze_update_{suffix}_flop_per_s'] == pytest.approx(achieved, rel=1e-2)
