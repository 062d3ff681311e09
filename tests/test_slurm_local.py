"""The local SLURM cluster of scripts/slurm_local.sh runs a job array (skipped unless one is running)."""

import shutil
import subprocess
import time

import pytest


def _controller_up():
  """True when the slurm client is installed and the controller answers `sinfo` quickly."""
  if shutil.which('sbatch') is None or shutil.which('sinfo') is None:
    return False
  try:
    return subprocess.run(['sinfo', '-h'], capture_output=True, timeout=5).returncode == 0
  except (OSError, subprocess.TimeoutExpired):
    return False


def _in_queue(job_id):
  """True while squeue still lists a task of the job (an unknown job id makes squeue fail: finished)."""
  out = subprocess.run(['squeue', '-h', '-j', job_id], capture_output=True, text=True, timeout=30)
  return out.returncode == 0 and out.stdout.strip() != ''


@pytest.mark.slow
def test_job_array_runs_every_task(tmp_path):
  if not _controller_up():
    pytest.skip('no running SLURM controller (start one with: bash scripts/slurm_local.sh start)')
  job_id = (
    subprocess.run(
      [
        'sbatch',
        '--parsable',
        '--array=0-3',
        '--job-name=test_slurm_local',
        f'--output={tmp_path}/%A_%a.log',
        f'--chdir={tmp_path}',
        '--wrap',
        'echo "$SLURM_ARRAY_TASK_ID" > "task_$SLURM_ARRAY_TASK_ID.txt"',
      ],
      capture_output=True,
      text=True,
      timeout=30,
      check=True,
    )
    .stdout.strip()
    .split(';')[0]
  )
  deadline = time.monotonic() + 120
  try:
    while _in_queue(job_id):
      if time.monotonic() > deadline:
        pytest.fail(
          f'job array {job_id} not done after 120 s:\n'
          + subprocess.run(['squeue'], capture_output=True, text=True).stdout
        )
      time.sleep(0.5)
  finally:
    subprocess.run(['scancel', job_id], capture_output=True)  # no-op once it has finished
  for task in range(4):
    out, log = tmp_path / f'task_{task}.txt', tmp_path / f'{job_id}_{task}.log'
    assert out.exists(), (
      f'task {task} wrote nothing; its log: {log.read_text() if log.exists() else "(none)"}'
    )
    assert out.read_text().strip() == str(task)


@pytest.mark.slow
def test_start_again_returns_promptly_and_no_daemon_holds_its_lock():
  """`start` is idempotent; the daemons it started must not keep its lock open (they once inherited
  it, and every later `start` waited forever)."""
  import os

  if not _controller_up() or os.geteuid() != 0:
    pytest.skip('no running SLURM controller started by scripts/slurm_local.sh (as root)')
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  proc = subprocess.run(
    ['bash', os.path.join(root, 'scripts', 'slurm_local.sh'), 'start'],
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  lock = os.environ.get('SLURM_LOCAL_DIR', '/tmp/slurm-local') + '.lock'
  holders = []
  for pid in filter(str.isdigit, os.listdir('/proc')):
    try:
      fds = os.listdir(f'/proc/{pid}/fd')
      if any(os.readlink(f'/proc/{pid}/fd/{fd}') == lock for fd in fds):
        holders.append(open(f'/proc/{pid}/comm', encoding='utf-8').read().strip())
    except OSError:  # gone, or not ours to read
      continue
  assert holders == [], f'processes holding {lock}: {holders}'


@pytest.mark.slow
def test_a_fresh_controller_forgets_the_jobs_of_its_previous_life():
  """Saved state outlives the daemons (a machine image, a killed CI run). A CI run once restored a
  requeued job of an earlier run that held both CPUs, and its `srun` test queued until its timeout.
  Mirror: with SLURM_LOCAL_KEEP_JOBS=1 the held job is still there after the restart."""
  import os

  if not _controller_up() or os.geteuid() != 0:
    pytest.skip('no running SLURM controller started by scripts/slurm_local.sh (as root)')
  script = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'scripts', 'slurm_local.sh'
  )

  def restart(keep):
    env = dict(os.environ, SLURM_LOCAL_KEEP_JOBS='1' if keep else '0')
    for action in ('stop', 'start'):
      proc = subprocess.run(
        ['bash', script, action], capture_output=True, text=True, timeout=180, env=env
      )
      assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]

  def held_job():
    return subprocess.run(
      [
        'sbatch',
        '--parsable',
        '--hold',
        '--job-name=test_leftover',
        '--output=/dev/null',
        '--wrap',
        'true',
      ],
      capture_output=True,
      text=True,
      timeout=30,
      check=True,
    ).stdout.strip()

  job_id = held_job()
  try:
    restart(keep=True)
    assert _in_queue(job_id), 'SLURM_LOCAL_KEEP_JOBS=1 lost the held job'
    restart(keep=False)
    assert not _in_queue(job_id), subprocess.run(['squeue'], capture_output=True, text=True).stdout
  finally:
    subprocess.run(['scancel', job_id], capture_output=True)
