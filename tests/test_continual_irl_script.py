"""End-to-end runs of scripts/train_continual_irl.py in a subprocess (issue 17): its outputs and resume,
a one-task stream against plain OPIRL (scripts/train_irl.py), and bad input."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from killing import signal_when_exists

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.slow
QUICK = ['--config', 'configs/cirl/pointmaze_goals.py:quick']


def run(name, *args):
  cmd = [sys.executable, os.path.join(ROOT, 'scripts', name), *args]
  return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200)


def eval_returns(path):
  with open(path, encoding='utf-8') as f:
    records = [json.loads(line) for line in f]
  return [(r['step'], r['eval_return_seed0'], r['eval_return_seed1']) for r in records]


def test_a_two_task_stream_writes_its_matrices_and_resumes_exactly(tmp_path):
  args = [*QUICK, '--config.method=kpriors', '--config.num_tasks=2', f'--workdir={tmp_path}']
  proc = run('train_continual_irl.py', *args)
  assert proc.returncode == 0, proc.stderr[-3000:]
  results = json.loads((tmp_path / 'results.json').read_text())
  for key in ('epic_matrix', 'auc_matrix'):
    matrix = np.asarray(results[key])
    assert matrix.shape == (2, 2) and np.all((matrix >= 0) & (matrix <= 1)), matrix
  assert len(results['epic_before']) == len(results['auc_before']) == 2
  assert set(results['metrics']) == {'epic', 'auc'}
  assert results['metrics']['epic']['epic_forgetting'] is not None
  assert set(results['per_seed']) == {'0', '1'}
  assert (tmp_path / 'epic_matrix.png').stat().st_size > 0
  assert (tmp_path / 'auc_matrix.png').stat().st_size > 0
  assert (tmp_path / 'epic_drift_matrix.png').stat().st_size > 0
  # The drift matrix: 0 on the diagonal (a reward to itself), nothing above it, a distance below.
  drift = results['epic_drift_matrix']
  assert drift[0] == [0.0, None] and drift[1][1] == 0.0 and 0.0 < drift[1][0] <= 1.0, drift
  assert results['metrics']['epic']['final_drift'] == drift[1][0]
  # After the first task its discriminator tells its held-out expert transitions from random ones
  # better than the untrained one.
  assert results['auc_matrix'][0][0] > results['auc_before'][0] + 0.2
  check = results['final_policy_returns']
  assert len(check['fresh']) == len(check['final']) == len(check['fraction']) == 2
  assert set(check['per_seed']) == {'0', '1'} and check['env_steps'] == 1000
  for kind in ('fresh', 'final'):
    assert (tmp_path / 'policy_check' / f'{kind}_task1' / 'metrics.jsonl').exists()

  again = run('train_continual_irl.py', *args)
  assert again.returncode == 0, again.stderr[-3000:]
  assert 'Resuming the stream' in again.stdout and 'evaluation return' not in again.stdout
  assert (
    json.loads((tmp_path / 'results.json').read_text())['epic_matrix'] == results['epic_matrix']
  )

  # Preempted inside the second task (SIGTERM after its first checkpoint): status 75, and the rerun
  # resumes there and ends with the uninterrupted run's results.
  killed = tmp_path.parent / f'{tmp_path.name}_killed'
  cmd = [
    sys.executable,
    os.path.join(ROOT, 'scripts', 'train_continual_irl.py'),
    *args[:-1],
    f'--workdir={killed}',
  ]
  marker = killed / 'task1' / 'checkpoints' / '500'
  returncode, stderr = signal_when_exists(cmd, ROOT, marker, signal.SIGTERM)
  assert returncode == 75, stderr[-3000:]
  assert not (killed / 'results.json').exists()
  resumed = run('train_continual_irl.py', *args[:-1], f'--workdir={killed}')
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  final = json.loads((killed / 'results.json').read_text())
  for key in ('epic_matrix', 'auc_matrix', 'epic_before', 'final_policy_returns'):
    assert final[key] == results[key], key


def test_finetune_on_one_task_is_plain_opirl(tmp_path):
  """The stream's first task has no past: with the same seed and budget it is train_irl.py's OPIRL,
  evaluation for evaluation."""
  stream = run(
    'train_continual_irl.py',
    *QUICK,
    '--config.method=finetune',
    '--config.num_tasks=1',
    '--config.policy_check.enabled=False',
    f'--workdir={tmp_path / "stream"}',
  )
  assert stream.returncode == 0, stream.stderr[-3000:]
  plain = run('train_irl.py', *QUICK, '--config.algo=opirl', f'--workdir={tmp_path / "plain"}')
  assert plain.returncode == 0, plain.stderr[-3000:]
  got = eval_returns(tmp_path / 'stream' / 'task0' / 'metrics.jsonl')
  assert got == eval_returns(tmp_path / 'plain' / 'metrics.jsonl') and len(got) == 2


@pytest.mark.parametrize(
  'override, message',
  [
    ('--config.method=si', "config.method must be one of ['finetune', 'joint'"),
    ('--config.num_tasks=9', 'config.num_tasks must be an int in [0, 6]'),
    ('--config.normalize_states=True', 'config.normalize_states must be False'),
    ('--config.evaluation.num_samples=100000', 'config.evaluation: num_samples (100000) exceeds'),
  ],
)
def test_bad_input_is_one_line_before_any_training(tmp_path, override, message):
  proc = run('train_continual_irl.py', *QUICK, override, f'--workdir={tmp_path}')
  assert proc.returncode == 2, proc.stderr[-3000:]
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and message in lines[0] and 'Traceback' not in proc.stderr, lines
  assert not (tmp_path / 'task0').exists()


def test_the_results_table_runs_each_method_and_gathers_its_seeds(tmp_path):
  """scripts/continual_irl_table.py: a run per method, a row of mean ± std over its seeds, the
  figure; run again, it only re-reads the finished runs."""
  args = [
    '--config=configs/cirl/pointmaze_goals.py:quick',
    '--methods=finetune',
    f'--root={tmp_path / "runs"}',
    f'--out={tmp_path / "table.json"}',
    f'--figure={tmp_path / "table.png"}',
    '--override=--config.num_tasks=2',
    '--override=--config.policy_check.enabled=False',
  ]
  proc = run('continual_irl_table.py', *args)
  assert proc.returncode == 0, proc.stderr[-3000:]
  table = json.loads((tmp_path / 'table.json').read_text())
  results = json.loads((tmp_path / 'runs' / 'finetune' / 'results.json').read_text())
  row = table['rows']['finetune']
  per_seed = [results['per_seed'][s]['metrics']['epic']['epic_forgetting'] for s in ('0', '1')]
  assert row['epic_forgetting']['per_seed'] == per_seed
  assert row['epic_forgetting']['mean'] == pytest.approx(np.mean(per_seed))
  assert table['matrices']['finetune']['epic_matrix'] == results['epic_matrix']
  # Tasks 1 and 2 have opposite gap sides: the one entry below the diagonal is 'other'.
  ((kind, split),) = row['by_barrier'].items()
  assert kind == 'other' and split['entries'] == 1
  assert split['drift'] == pytest.approx(results['epic_drift_matrix'][1][0])
  assert '| finetune |' in proc.stdout and (tmp_path / 'table.png').stat().st_size > 0
  again = run('continual_irl_table.py', *args)
  assert again.returncode == 0 and 'evaluation return' not in again.stdout
  assert json.loads((tmp_path / 'table.json').read_text())['rows'] == table['rows']
