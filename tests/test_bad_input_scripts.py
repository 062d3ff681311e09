"""Bad environment names given to the scripts (docs/faults.md, the bad-input table): one line on
stderr naming the field and the allowed values, exit status 2, no traceback, nothing written."""

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.slow
ALLOWED = "'PointMaze-Left', 'PointMaze-Right', 'Pendulum', 'PointMaze-Goals-0'"


def run(name, *args):
  cmd = [sys.executable, os.path.join(ROOT, 'scripts', name), *args]
  return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize(
  'name, args, start',
  [
    (
      'train_irl.py',
      ['--config', 'configs/irl/pointmaze.py:quick', '--config.env=NoSuchEnv'],
      'train_irl.py: config.env must be one of [',
    ),
    (
      'train_expert.py',
      ['--config', 'configs/rl/sac.py:Hoper-v5'],
      'train_expert.py: config.env must be one of [',
    ),
    (
      'collect_demos.py',
      ['--env=Hoper-v5', '--expert=scripted'],
      'collect_demos.py: --env: name must be one of (',
    ),
  ],
)
def test_an_unknown_environment_is_one_line_and_status_2(tmp_path, name, args, start):
  out = tmp_path / 'out'
  where = f'--out={out / "demos"}' if name == 'collect_demos.py' else f'--workdir={out}'
  proc = run(name, *args, where)
  assert proc.returncode == 2, proc.stderr[-3000:]
  assert 'Traceback' not in proc.stderr
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1, lines
  assert lines[0].startswith(start) and ALLOWED in lines[0] and "'BigAnt'" in lines[0], lines[0]
  assert lines[0].endswith(("got 'NoSuchEnv'", "got 'Hoper-v5'")), lines[0]
  assert not out.exists()


def test_an_edited_demonstrations_file_is_one_line_and_status_2(tmp_path):
  for ext in ('npz', 'json'):
    shutil.copy(os.path.join(ROOT, 'demos', f'PointMaze-Left.{ext}'), tmp_path)
  with open(tmp_path / 'PointMaze-Left.npz', 'ab') as f:
    f.write(b'x')  # one byte more: the file no longer matches its provenance record
  proc = run(
    'train_irl.py',
    '--config',
    'configs/irl/pointmaze.py:quick',
    f'--config.demos={tmp_path / "PointMaze-Left"}',
    f'--workdir={tmp_path / "out"}',
  )
  assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith('train_irl.py: config.env / config.demos: '), lines
  assert 'SHA-256' in lines[0] and 'does not match the provenance file' in lines[0], lines[0]
  assert not (tmp_path / 'out').exists()
