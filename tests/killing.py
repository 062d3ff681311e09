"""Shared by the resume tests: start a script, SIGKILL it as soon as a checkpoint directory appears."""

import signal
import subprocess
import time


def kill_when_exists(cmd, cwd, marker, timeout=600.0):
  """Runs `cmd` and SIGKILLs it once the path `marker` exists; fails if it ends first or times out."""
  child = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + timeout
  while not marker.is_dir():
    assert child.poll() is None, 'run ended before it could be killed'
    assert time.time() < deadline, f'{marker} did not appear within {timeout} s'
    time.sleep(0.05)
  child.send_signal(signal.SIGKILL)
  child.wait()


def signal_when_exists(cmd, cwd, marker, signum, timeout=600.0):
  """Runs `cmd`, sends `signum` once the path `marker` exists, and returns the finished process's
  (returncode, stderr); fails if it ends before the signal or times out."""
  child = subprocess.Popen(
    cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
  )
  deadline = time.time() + timeout
  while not marker.is_dir():
    assert child.poll() is None, 'run ended before it could be signalled'
    assert time.time() < deadline, f'{marker} did not appear within {timeout} s'
    time.sleep(0.05)
  child.send_signal(signum)
  _, stderr = child.communicate(timeout=timeout)
  return child.returncode, stderr


def damage_checkpoint(step_dir, how):
  """Damages one orbax checkpoint step directory as a crash or a full disk can: 'truncate' halves
  every data file of the state, 'metadata' overwrites the state's _METADATA with garbage, 'delete'
  removes it."""
  import pathlib

  state = pathlib.Path(step_dir) / 'state'
  if how == 'truncate':
    for path in (state / 'd').iterdir():
      path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
  elif how == 'metadata':
    (state / '_METADATA').write_text('{"garbage": ')
  elif how == 'delete':
    (state / '_METADATA').unlink()
  else:
    raise ValueError(f'how must be truncate, metadata or delete, got {how!r}')
