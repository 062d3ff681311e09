"""scripts/bench_scale.py run as a user runs it, with tiny measurements."""

import json
import math
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.slow


def run(*args):
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  env.pop('XLA_FLAGS', None)
  return subprocess.run(
    [sys.executable, os.path.join(ROOT, 'scripts', 'bench_scale.py'), *args],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=900,
  )


def test_prints_one_json_line_for_one_and_all_devices():
  proc = run(
    '--fake_devices=4', '--num_seeds=4', '--irl_steps=10', '--repeats=1', '--big_hidden=512'
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = proc.stdout.strip().splitlines()
  assert len(lines) == 1
  record = json.loads(lines[0])
  assert record['num_devices'] == 4 and record['num_seeds'] == 4 and record['backend'] == 'cpu'
  for key in (
    'cl_seed_epochs_per_s_1dev',
    'cl_seed_epochs_per_s_alldev',
    'irl_seed_steps_per_s_1dev',
    'irl_seed_steps_per_s_alldev',
    'cl_speedup',
    'irl_speedup',
  ):
    assert isinstance(record[key], float) and math.isfinite(record[key]) and record[key] > 0, key
  # The model axis splits every large leaf of the state: nearly 1/4 per device (biases stay whole).
  assert 3.5 < record['model_state_memory_ratio'] <= 4, record
  assert record['cl_big_temp_mib_per_device_model'] < record['cl_big_temp_mib_per_device_1dev']
  assert record['cl_speedup'] == pytest.approx(
    record['cl_seed_epochs_per_s_alldev'] / record['cl_seed_epochs_per_s_1dev'], rel=1e-2
  )


def test_seeds_must_split_over_the_devices():
  proc = run('--fake_devices=4', '--num_seeds=6')
  assert (
    proc.returncode != 0 and '--num_seeds (6) must be a multiple of the 4 devices' in proc.stderr
  )
  assert proc.stdout == ''
