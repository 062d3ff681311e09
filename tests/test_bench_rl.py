"""scripts/bench_rl.py run as a user runs it, in a subprocess, with every measurement shortened."""

import json
import math
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.slow

RATES = (
  'sac_updates_per_s',
  'pointmaze_steps_per_s_1seed',
  'pointmaze_steps_per_s_8seeds',
  'halfcheetah_steps_per_s',
)
TINY = {
  'updates': 7,
  'buffer_size': 300,
  'pointmaze_steps': 12,
  'halfcheetah_steps': 6,
  'halfcheetah_warmup_steps': 4,
}


def run(*args):
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  # conftest.py has set the compilation cache for this process; the script shares it.
  return subprocess.run(
    [sys.executable, os.path.join(ROOT, 'scripts', 'bench_rl.py'), *args],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=600,
  )


def test_prints_one_json_line_with_every_rate_and_its_context():
  pytest.importorskip('mujoco')
  proc = run(*(f'--{k}={v}' for k, v in TINY.items()))
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = proc.stdout.strip().splitlines()
  assert len(lines) == 1, proc.stdout[-3000:]
  record = json.loads(lines[0])

  for key in RATES + ('pointmaze_8_over_1_ratio',):
    assert isinstance(record[key], float) and math.isfinite(record[key]) and record[key] > 0, key
  # The ratio is of the two printed rates (each rounded to 3 decimals).
  ratio = record['pointmaze_steps_per_s_8seeds'] / record['pointmaze_steps_per_s_1seed']
  assert record['pointmaze_8_over_1_ratio'] == pytest.approx(ratio, rel=1e-3, abs=2e-3)

  assert record['backend'] == 'cpu' and isinstance(record['device_kind'], str)
  assert record['batch_size'] == 256 and record['hidden_sizes'] == [256, 256]
  assert record['num_seeds_vmapped'] == 8
  assert record['sac_updates_timed'] == TINY['updates']
  assert record['sac_buffer_size'] == TINY['buffer_size']
  assert record['pointmaze_steps_timed'] == TINY['pointmaze_steps']
  assert record['halfcheetah_steps_timed'] == TINY['halfcheetah_steps']
  assert record['halfcheetah_warmup_steps'] == TINY['halfcheetah_warmup_steps']
  # The agents' own step counters: one SAC update per timed update or environment step, so the
  # loops really trained while they were timed (HalfCheetah also updates during its warm-up).
  assert record['sac_updates_done'] == TINY['updates']
  assert record['pointmaze_updates_done_1seed'] == TINY['pointmaze_steps']
  assert record['pointmaze_updates_done_8seeds'] == TINY['pointmaze_steps']
  assert record['halfcheetah_updates_done'] == (
    TINY['halfcheetah_steps'] + TINY['halfcheetah_warmup_steps']
  )
  # Compute against the machine (issue 16): an update does at least the critics' 256×256 layer for
  # the batch, forward and backward; the achieved FLOP/s is that count times the measured rate.
  assert record['matmul_peak_flop_per_s'] > 0
  assert record['sac_update_flops'] > 2 * 3 * 256 * 256 * 256
  achieved = record['sac_update_flops'] * record['sac_updates_per_s']
  assert record['sac_update_flop_per_s'] == pytest.approx(achieved, rel=1e-3)
  assert record['sac_update_fraction_of_peak'] == pytest.approx(
    achieved / record['matmul_peak_flop_per_s'], rel=1e-2
  )
  for suffix in ('1seed', '8seeds'):
    assert record[f'pointmaze_update_{suffix}_fraction_of_peak'] > 0


@pytest.mark.parametrize(
  'flag, message',
  [
    (
      '--hidden_sizes=256,x',
      "--hidden_sizes must be a comma-separated list of positive ints, got '256,x'",
    ),
    ('--pointmaze_steps=0', 'pointmaze_steps'),
  ],
)
def test_bad_flags_stop_before_any_measurement(flag, message):
  proc = run(flag)
  assert proc.returncode != 0
  assert message in proc.stderr
  assert proc.stdout == ''
