"""Where a script's wall-clock goes: the `--breakdown` of `scripts/bench_cl.py` and
`scripts/bench_irl.py` (issue 16). Runs a training script in fresh processes and reads the `time`
(seconds by phase, `cljax.timing.Phases`) and `compilation` (`cljax.compilations`) of its
results.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cold_and_warm(script: str, args: list[str]) -> dict:
  """{'cold': ..., 'warm': ...}: `time` and `compilation` of two runs of `scripts/<script> args` in
  fresh processes and work directories, the first with an empty compilation cache, the second with
  the cache the first filled."""
  out = {}
  with tempfile.TemporaryDirectory() as tmp:
    # The scripts' own cache settings, the cache empty at first (a caller's JAX cache variables go).
    env = {k: v for k, v in os.environ.items() if not k.startswith('JAX_PERSISTENT_CACHE')}
    env.pop('JAX_COMPILATION_CACHE_DIR', None)
    env['CLJAX_CACHE_DIR'] = os.path.join(tmp, 'cache')
    for run in ('cold', 'warm'):
      workdir = os.path.join(tmp, run)
      cmd = [sys.executable, os.path.join(ROOT, 'scripts', script), *args, f'--workdir={workdir}']
      start = time.perf_counter()
      proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
      if proc.returncode:
        raise RuntimeError(f'{" ".join(cmd)} failed:\n{proc.stderr[-3000:]}')
      with open(os.path.join(workdir, 'results.json'), encoding='utf-8') as f:
        results = json.load(f)
      out[run] = {
        'time': results['time'],
        'compilation': results['compilation'],
        'process_wall_s': round(time.perf_counter() - start, 3),  # interpreter start and exit too
      }
  return out


def ratios(runs: dict) -> dict:
  """`wall_over_training_<run>` of each run of `cold_and_warm`."""
  return {f'wall_over_training_{run}': r['time']['wall_over_training'] for run, r in runs.items()}


def define_flags(script: str, default_args: list[str], what: str):
  """`--breakdown` and `--breakdown_args` (default `default_args`) of a benchmark; returns a function
  that, when `--breakdown` was given, runs `cold_and_warm(script, args)`, prints its JSON line and
  returns True (the benchmark then does nothing else)."""
  on = flags.DEFINE_bool('breakdown', False, f"Time {what}'s phases instead (see the docstring).")
  args = flags.DEFINE_list('breakdown_args', default_args, f"{script}'s arguments for --breakdown.")

  def run_if_asked() -> bool:
    if not on.value:
      return False
    runs = cold_and_warm(script, args.value)
    record = {'command': f'{script} ' + ' '.join(args.value), **runs, **ratios(runs)}
    print(json.dumps(record))
    return True

  return run_if_asked
