"""End-to-end runs of the scripts in a subprocess, as a user runs them."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from killing import damage_checkpoint, kill_when_exists

from cl import data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAS_FMNIST = os.path.isdir(data.DEBIAN_FASHION_MNIST_DIR)
pytestmark = pytest.mark.slow


def script(name, *args):
  return [sys.executable, os.path.join(ROOT, 'scripts', name), *args]


def run(cmd, **kwargs):
  return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, **kwargs)


PHASES = (
  'imports',
  'data',
  'setup',
  'compilation',
  'training',
  'evaluation',
  'checkpoints',
  'report',
)
RESULT_KEYS = {
  'accuracy_matrix',
  'accuracy_before',
  'average_accuracy',
  'backward_transfer',
  'forward_transfer',
  'forgetting',
  'learning_accuracy',
}


def test_train_cl_writes_the_documented_outputs(tmp_path):
  workdir = tmp_path / 'run'
  proc = run(
    script(
      'train_cl.py',
      '--config',
      'configs/cl/split_digits.py:quick',
      '--config.method=replay',
      '--config.num_seeds=2',
      f'--workdir={workdir}',
    )
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'Test accuracy matrix R' in proc.stdout and 'forgetting' in proc.stdout
  # Quiet by default: no library INFO line (absl's "I1202 12:00:00.000 ..." format), one line per task.
  output = (proc.stdout + proc.stderr).splitlines()
  assert not [l for l in output if re.match(r'I\d{4} ', l)], output[:5]
  assert sum(l.startswith('After task') for l in output) == 5 and len(output) <= 40, output
  results = json.loads((workdir / 'results.json').read_text())
  assert RESULT_KEYS <= set(results)
  assert results['method'] == 'replay' and results['dataset'] == 'digits'
  # keep_checkpoints (default 2): the newest two task boundaries stay.
  assert sorted(p.name for p in (workdir / 'checkpoints').iterdir()) == ['4', '5']
  assert results['versions']['jax'] and results['versions']['python']
  compilation = results['compilation']  # issue 16: executables built by the run, and their seconds
  assert compilation['executables'] > 0 and compilation['seconds'] > 0
  phases = results['time']  # and the run's wall-clock by phase, which add up to the whole
  assert set(phases) == {*PHASES, 'other', 'wall_s', 'wall_over_training'}
  assert all(phases[p] > 0 for p in ('imports', 'data', 'compilation', 'training', 'evaluation'))
  assert sum(phases[p] for p in (*PHASES, 'other')) == pytest.approx(phases['wall_s'], abs=0.02)
  R = np.array(results['accuracy_matrix'])
  assert R.shape == (5, 5) and np.all((R >= 0) & (R <= 1))
  assert len(results['accuracy_before']) == 5
  assert abs(results['average_accuracy'] - R[-1].mean()) < 1e-9
  assert [r['seed'] for r in results['per_seed']] == [0, 1]
  assert set(results['mean']) >= {'average_accuracy', 'forgetting'}
  config = json.loads((workdir / 'config.json').read_text())
  assert config['method'] == 'replay' and config['epochs'] == 1
  lines = [json.loads(l) for l in (workdir / 'metrics.jsonl').read_text().splitlines()]
  assert any('train/loss' in l for l in lines) and any(
    'eval/average_accuracy_seen' in l for l in lines
  )
  # Time in the log: every epoch's record has the seconds since the start (growing) and its rate.
  epochs = [l for l in lines if 'train/loss' in l]
  wall = [l['time/wall_s'] for l in epochs]
  assert wall == sorted(wall) and all(l['time/examples_per_s'] > 0 for l in epochs)
  assert any(f.startswith('events.out.tfevents') for f in os.listdir(workdir / 'tensorboard'))
  assert (workdir / 'accuracy_matrix.png').read_bytes()[:4] == b'\x89PNG'


@pytest.mark.parametrize(
  'override, message',
  [
    (
      '--config.method=lwf',
      "config.method must be one of ['finetune', 'joint', 'ewc', 'online_ewc', "
      "'si', 'replay', 'vcl', 'fromp', 'fromp_l2', 'kpriors', 'ewc_fr_replay'], "
      "got 'lwf'",
    ),
    (
      '--config.optimizer.name=lbfgs',
      "config.optimizer.name must be one of ['auto', 'adam', 'sgd', 'ivon', 'vogn'], got 'lbfgs'",
    ),
    (
      '--config.dataset=cifar10',
      "config.dataset must be one of ['fashion_mnist', 'mnist', 'digits', 'blobs'], got 'cifar10'",
    ),
    ('--config.scenario=domain', "config.scenario must be one of ['task', 'class'], got 'domain'"),
    ('--config.batch_size=0', 'config.batch_size must be an integer > 0, got 0'),
  ],
)
def test_bad_config_stops_before_any_compute(tmp_path, override, message):
  workdir = tmp_path / 'bad'
  proc = run(
    script(
      'train_cl.py', '--config', 'configs/cl/split_digits.py', override, f'--workdir={workdir}'
    )
  )
  assert proc.returncode != 0
  assert message in proc.stderr
  assert not workdir.exists()


def test_missing_data_names_the_places_searched(tmp_path):
  empty = tmp_path / 'empty'
  empty.mkdir()
  proc = run(
    script(
      'train_cl.py',
      '--config',
      'configs/cl/split_fmnist.py',
      f'--config.data_dir={empty}',
      f'--workdir={tmp_path / "run"}',
    )
  )
  assert proc.returncode != 0
  assert str(empty) in proc.stderr and 'train-images-idx3-ubyte' in proc.stderr
  assert 'Traceback' not in proc.stderr


def test_unknown_config_field_is_rejected(tmp_path):
  proc = run(
    script(
      'train_cl.py',
      '--config',
      'configs/cl/split_digits.py',
      '--config.methd=ewc',
      f'--workdir={tmp_path / "x"}',
    )
  )
  assert proc.returncode != 0 and 'methd' in proc.stderr


def test_killed_run_resumes_to_the_same_accuracy_matrix(tmp_path):
  # Long tasks (many epochs on a small dataset) so the kill lands in the middle of the run.
  args = ['--config', 'configs/cl/split_digits.py', '--config.method=si', '--config.epochs=1500']
  reference = tmp_path / 'reference'
  proc = run(script('train_cl.py', *args, f'--workdir={reference}'))
  assert proc.returncode == 0, proc.stderr[-3000:]

  workdir = tmp_path / 'killed'
  kill_when_exists(
    script('train_cl.py', *args, f'--workdir={workdir}'), ROOT, workdir / 'checkpoints' / '2'
  )
  assert not (workdir / 'results.json').exists(), (
    'the run finished before the kill; make tasks longer'
  )

  proc = run(script('train_cl.py', *args, f'--workdir={workdir}'))
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'Resuming from the checkpoint after task' in proc.stdout
  resumed = json.loads((workdir / 'results.json').read_text())
  expected = json.loads((reference / 'results.json').read_text())
  assert resumed['accuracy_matrix'] == expected['accuracy_matrix']
  assert resumed['accuracy_before'] == expected['accuracy_before']
  # The clock goes on from the checkpoint's seconds (the last record of an epoch counts: the epochs
  # after the checkpoint are logged again by the resumed run).
  records = [json.loads(l) for l in (workdir / 'metrics.jsonl').read_text().splitlines()]
  epochs = {r['step']: r['time/wall_s'] for r in records if 'time/wall_s' in r}
  wall = [w for _, w in sorted(epochs.items())]
  assert len(wall) == 5 * 1500 and wall == sorted(wall)


def test_diverged_run_stops_in_one_line_with_status_3_and_keeps_the_last_good_checkpoint(tmp_path):
  # SGD with a learning rate of 1e6 overflows within the first epoch (Adam's normalised steps keep
  # the parameters finite at any learning rate: large, not diverged).
  workdir = tmp_path / 'run'
  args = [
    '--config',
    'configs/cl/split_digits.py:quick',
    '--config.optimizer.name=sgd',
    '--config.optimizer.learning_rate=1e6',
    f'--workdir={workdir}',
  ]
  proc = run(script('train_cl.py', *args))
  assert proc.returncode == 3, proc.stderr[-3000:]
  lines = proc.stderr.strip().splitlines()
  assert lines == [l for l in lines if not l.startswith('W')] and len(lines) == 1, lines
  assert lines[0].startswith(
    'train_cl.py: the run diverged at task 1, epoch 1: non-finite parameters'
  )
  assert 'loss' in lines[0] and '(seed 0)' in lines[0]
  assert sorted(p.name for p in (workdir / 'checkpoints').iterdir()) == ['0']
  assert not (workdir / 'results.json').exists()
  # The mirror: the same run at the shipped learning rate finishes.
  ok = run(script('train_cl.py', *args[:-2], f'--workdir={tmp_path / "ok"}'))
  assert ok.returncode == 0, ok.stderr[-3000:]


@pytest.mark.parametrize('how', ['truncate', 'metadata', 'delete'])
def test_damaged_newest_checkpoint_is_set_aside_and_the_one_before_resumes(tmp_path, how):
  workdir = tmp_path / 'run'
  args = [
    '--config',
    'configs/cl/split_digits.py:quick',
    '--config.keep_checkpoints=0',
    f'--workdir={workdir}',
  ]
  assert run(script('train_cl.py', *args)).returncode == 0
  expected = json.loads((workdir / 'results.json').read_text())
  newest = max(int(p.name) for p in (workdir / 'checkpoints').iterdir() if p.name.isdigit())
  (workdir / 'results.json').unlink()
  damage_checkpoint(workdir / 'checkpoints' / str(newest), how)
  proc = run(script('train_cl.py', *args))
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert sum('does not restore' in l for l in proc.stdout.splitlines()) == 1, proc.stdout
  assert 'Traceback' not in proc.stderr
  assert f'Resuming from the checkpoint after task {newest - 1} of' in proc.stdout
  assert (workdir / 'checkpoints' / f'{newest}.corrupt').is_dir()
  resumed = json.loads((workdir / 'results.json').read_text())
  assert resumed['accuracy_matrix'] == expected['accuracy_matrix']

  (workdir / 'results.json').unlink()
  for step in (p.name for p in (workdir / 'checkpoints').iterdir() if p.name.isdigit()):
    damage_checkpoint(workdir / 'checkpoints' / step, how)
  proc = run(script('train_cl.py', *args))
  assert proc.returncode == 1 and 'Traceback' not in proc.stderr
  assert proc.stderr.strip().splitlines()[-1].startswith('train_cl.py: no checkpoint in ')


def test_resume_refuses_a_different_config(tmp_path):
  workdir = tmp_path / 'run'
  base = ['--config', 'configs/cl/split_digits.py:quick', f'--workdir={workdir}']
  assert run(script('train_cl.py', *base)).returncode == 0
  proc = run(script('train_cl.py', *base, '--config.method=ewc'))
  assert proc.returncode != 0 and "different config (fields ['method'])" in proc.stderr


def test_a_run_made_before_a_new_config_field_resumes_with_its_default(tmp_path):
  """A work directory from before a field existed (its config.json lacks the field) resumes when the
  field is left at its default, saying so in one line; the mirror: the same run with the new field set
  on the command line is refused, as is a changed nested value."""
  workdir = tmp_path / 'run'
  base = ['--config', 'configs/cl/split_digits.py:quick', f'--workdir={workdir}']
  assert run(script('train_cl.py', *base)).returncode == 0
  stored = json.loads((workdir / 'config.json').read_text())

  def older(**changes):  # config.json as an older version of the project wrote it
    config = json.loads(json.dumps(stored))
    del config['keep_checkpoints'], config['ewc']['fisher_num_examples']
    for group, value in changes.items():
      config[group].update(value)
    (workdir / 'config.json').write_text(json.dumps(config))

  older()
  proc = run(script('train_cl.py', *base, '--config.keep_checkpoints=3'))
  assert proc.returncode == 2 and "(fields ['keep_checkpoints'])" in proc.stderr, proc.stderr
  older(replay={'memory_size': 7})
  proc = run(script('train_cl.py', *base))
  assert proc.returncode == 2 and "(fields ['replay.memory_size'])" in proc.stderr, proc.stderr
  older()
  proc = run(script('train_cl.py', *base))
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "predates the config fields ['ewc.fisher_num_examples', 'keep_checkpoints']" in proc.stdout
  assert json.loads((workdir / 'config.json').read_text()) == stored


@pytest.mark.skipif(not HAS_FMNIST, reason='Debian package dataset-fashion-mnist not installed')
def test_split_fmnist_quick_run(tmp_path):
  proc = run(
    script(
      'train_cl.py',
      '--config',
      'configs/cl/split_fmnist.py:quick',
      '--config.method=ewc',
      f'--workdir={tmp_path / "fm"}',
    )
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  results = json.loads((tmp_path / 'fm' / 'results.json').read_text())
  # Task-incremental pairs of Fashion-MNIST classes are learned well above chance (0.5) even here.
  assert results['learning_accuracy'] > 0.8


@pytest.mark.skipif(not HAS_FMNIST, reason='Debian package dataset-fashion-mnist not installed')
def test_default_fromp_command_reproduces_its_results_table_row(tmp_path):
  """The documented command for FROMP on Split FMNIST, without any other flag, gives the table's seed-0
  average accuracy (docs/results/cl_results.json; the table trains seeds 0-2 vmapped, this run seed 0
  alone, so float order may differ slightly: 0.3 points allowed)."""
  proc = run(
    script(
      'train_cl.py',
      '--config',
      'configs/cl/split_fmnist.py',
      '--config.method=fromp',
      f'--workdir={tmp_path / "fromp"}',
    )
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  results = json.loads((tmp_path / 'fromp' / 'results.json').read_text())
  with open(os.path.join(ROOT, 'docs', 'results', 'cl_results.json'), encoding='utf-8') as f:
    row = json.load(f)['split_fmnist/fromp']
  assert row['seeds'][0] == 0
  assert abs(results['average_accuracy'] - row['average_accuracy'][0]) < 0.003, (
    results['average_accuracy'],
    row['average_accuracy'][0],
  )


@pytest.mark.skipif(not HAS_FMNIST, reason='Debian package dataset-fashion-mnist not installed')
def test_bench_cl_prints_one_json_line():
  proc = run(
    script(
      'bench_cl.py',
      '--epochs=1',
      '--num_seeds=2',
      '--repeats=1',
      '--step_cost_methods=ewc,fromp',
      '--one_task_per_step_methods=fromp',
      '--consolidate_methods=kpriors',
    )
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  record = json.loads(proc.stdout.strip().splitlines()[-1])
  assert set(record['consolidate_s_last_task']) == {'kpriors'}
  assert record['consolidate_s_last_task']['kpriors']['previous'] > 0
  assert set(record['step_cost_vs_finetune']) == {'ewc', 'fromp'}
  assert set(record['step_cost_vs_finetune_one_past_task_per_step']) == {'fromp'}
  assert record['examples_per_sec_1_seed'] > 0
  assert record['examples_per_sec_2_seeds_vmapped'] > 0
  assert record['vmapped_over_single_ratio'] > 0
  assert record['examples_per_sec_2_seeds_mapped'] > 0 and record['mapped_over_vmapped_ratio'] > 0
  # Compute against the machine (issue 16): a fine-tuning step of the 784-256-256 MLP on 128 examples
  # is at least its forward and weight-gradient matmuls, 2 · 2 · 128 · (784·256 + 256·256) FLOPs.
  assert record['epoch_step_flops'] > 4 * 128 * (784 * 256 + 256 * 256)
  assert record['matmul_peak_flop_per_s'] > 0 and record['epoch_1_seed_fraction_of_peak'] > 0
  assert record['epoch_2_seeds_vmapped_flop_per_s'] > 0
  # FROMP's kernels are built a class at a time: far less than all the memory's Jacobians.
  assert 0 < record['fromp_consolidate_temp_mib'] < 0.5 * record['all_jacobians_mib']


def test_intransigence_against_a_joint_reference(tmp_path):
  base = ['--config', 'configs/cl/split_digits.py:quick']
  joint, ewc = tmp_path / 'joint', tmp_path / 'ewc'
  assert (
    run(script('train_cl.py', *base, '--config.method=joint', f'--workdir={joint}')).returncode == 0
  )
  proc = run(
    script(
      'train_cl.py',
      *base,
      '--config.method=ewc',
      f'--config.joint_reference={joint / "results.json"}',
      f'--workdir={ewc}',
    )
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  ref = np.diag(json.loads((joint / 'results.json').read_text())['accuracy_matrix'])
  results = json.loads((ewc / 'results.json').read_text())
  expected = np.mean(ref - np.diag(results['accuracy_matrix']))
  assert abs(results['intransigence'] - expected) < 1e-9
  proc = run(
    script(
      'train_cl.py',
      *base,
      '--config.joint_reference=/nonexistent.json',
      f'--workdir={tmp_path / "bad"}',
    )
  )
  assert proc.returncode != 0 and 'config.joint_reference must be the results.json' in proc.stderr


@pytest.mark.parametrize(
  'script_name, args, message',
  [
    (
      'train_cl.py',
      ['--config', 'configs/cl/split_fmnsit.py'],
      "--config does not load: [Errno 2] No such file or directory: 'configs/cl/split_fmnsit.py'",
    ),
    (
      'train_cl.py',
      ['--config', 'configs/cl/split_digits.py', '--config.num_epochs=2'],
      'unknown config field \'num_epochs\'; Did you mean "epochs"?',
    ),
    (
      'train_cl.py',
      ['--config', 'configs/cl/split_digits.py', '--config.epochs=abc'],
      'flag --config.epochs=abc: invalid literal for int()',
    ),
    (
      'train_irl.py',
      ['--config', 'configs/irl/pointmaze.py', '--nope'],
      "Unknown command line flag 'nope' (--helpshort lists the flags)",
    ),
    (
      'train_irl.py',
      ['--config', 'configs/irl/pointmaze.py:fast'],
      "ValueError: the config argument must be one of 'official', 'quick' (or none), got 'fast'",
    ),
  ],
)
def test_bad_flags_and_config_files_give_one_line_and_status_2(
  tmp_path, script_name, args, message
):
  proc = run(script(script_name, *args, f'--workdir={tmp_path / "x"}'))
  assert proc.returncode == 2, proc.stderr
  assert proc.stderr.splitlines() == [f'{script_name}: ' + proc.stderr.split(': ', 1)[1].strip()]
  assert message in proc.stderr and 'Traceback' not in proc.stderr
  assert not (tmp_path / 'x').exists()


# Runs a script in this process with a listener on JAX's compilation-cache events, and prints the
# counts of cache hits and misses when it exits (the script ends with sys.exit through absl).
_CACHE_PROBE = """
import atexit, runpy, sys
from jax import monitoring
counts = {}
monitoring.register_event_listener(lambda name, **kw: counts.__setitem__(name, counts.get(name, 0) + 1))
atexit.register(lambda: print('CACHE', counts.get('/jax/compilation_cache/cache_hits', 0),
                              counts.get('/jax/compilation_cache/cache_misses', 0), file=sys.stderr))
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
"""


def _cache_counts(tmp_path, workdir, *flags):
  """(hits, misses) of JAX's persistent cache in one run of the quick-start-sized CL command, in a
  fresh process with the scripts' own cache settings (the tests' JAX cache variables removed)."""
  env = {k: v for k, v in os.environ.items() if not k.startswith('JAX_PERSISTENT_CACHE')}
  env.pop('JAX_COMPILATION_CACHE_DIR', None)
  env['CLJAX_CACHE_DIR'] = str(tmp_path / 'cache')
  proc = subprocess.run(
    [
      sys.executable,
      '-c',
      _CACHE_PROBE,
      os.path.join(ROOT, 'scripts', 'train_cl.py'),
      '--config',
      'configs/cl/split_digits.py:quick',
      '--config.method=finetune',
      f'--workdir={tmp_path / workdir}',
      *flags,
    ],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  hits, misses = re.search(r'^CACHE (\d+) (\d+)$', proc.stderr, re.M).groups()
  return int(hits), int(misses)


def test_a_second_run_compiles_from_the_persistent_cache(tmp_path):
  """The scripts turn on JAX's compilation cache by default ($CLJAX_CACHE_DIR): the first run fills
  it, the second compiles nothing the first one cached (counted by JAX's monitoring events, not by
  time). Measured: 12 misses, then 12 hits and no miss."""
  first_hits, first_misses = _cache_counts(tmp_path, 'first')
  assert first_hits == 0 and first_misses > 0
  assert len(os.listdir(tmp_path / 'cache')) > 0
  hits, misses = _cache_counts(tmp_path, 'second')
  assert hits >= first_misses and misses == 0


def test_the_mirror_without_the_cache_flag_compiles_everything_again(tmp_path):
  """Mirror of the cache test: with --compilation_cache=False the cache is neither read nor written,
  so the second run has no hit; the cache test can fail."""
  _cache_counts(tmp_path, 'first')  # fills the cache
  hits, misses = _cache_counts(tmp_path, 'second', '--compilation_cache=False')
  assert hits == 0


def test_cl_results_table_chooses_on_validation_and_resumes_its_search(tmp_path):
  """The table script picks the grid point with the best *validation* score (here searched on one seed,
  reported on two), saves every point's score as it finishes (`<out>.tuning`) and reads them back instead of retraining: with one cached score
  raised above the others, the rerun picks that point (the mirror: a search that ignored the cache
  would pick the same point as before)."""
  out = tmp_path / 'cl.json'
  cmd = script(
    'cl_results_table.py',
    '--benchmarks=split_digits:quick',
    '--methods=kpriors',
    '--num_seeds=2',
    '--tune_seeds=1',
    f'--out={out}',
  )
  proc = run(cmd)
  assert proc.returncode == 0, proc.stderr[-3000:]
  row = json.loads(out.read_text())['split_digits:quick/kpriors']
  assert row['seeds'] == [0, 1] and row['validation_seeds'] == 1
  tuning = row['validation_tuning']
  assert set(tuning) == {'kpriors.tau=0.3', 'kpriors.tau=1', 'kpriors.tau=3'}
  assert row['hyperparameter'] == max(tuning, key=tuning.get)
  cache = json.loads((tmp_path / 'cl.json.tuning').read_text())
  assert len(cache) == 3 and all(k.startswith('split_digits:quick/kpriors/') for k in cache)
  other = next(k for k in cache if f'/{row["hyperparameter"]}/' not in k)
  cache[other] = 2.0  # no accuracy reaches this: only a search that reads the cache can choose it
  (tmp_path / 'cl.json.tuning').write_text(json.dumps(cache))
  proc = run(cmd)
  assert proc.returncode == 0, proc.stderr[-3000:]
  row = json.loads(out.read_text())['split_digits:quick/kpriors']
  assert row['hyperparameter'] == other.split('/')[2] and row['validation_tuning'][
    row['hyperparameter']
  ] == pytest.approx(2.0)


def test_permuted_memory_methods_search_tau_and_memory_size():
  """Issue 13: on Permuted FMNIST the memory methods' grid is τ × memory per task (100/200/500)."""
  from cl import hparams as table

  points = table.grid_points('permuted_fmnist', 'kpriors')
  assert len(points) == 12 and {'kpriors.tau': 10.0, 'kpriors.memory_per_task': 500} in points
  assert table.describe(points[0]) == 'kpriors.tau=0.3, kpriors.memory_per_task=100'
  assert len(table.grid_points('split_fmnist', 'kpriors')) == 3
  assert table.describe(table.grid_points('permuted_fmnist', 'ewc_fr_replay')[0]) == (
    'ewc_fr_replay.tau=ewc_fr_replay.replay_weight=0.3, ewc_fr_replay.memory_per_task=100'
  )


def test_bench_cl_breakdown_times_a_cold_and_a_warm_run():
  """`bench_cl.py --breakdown` (issue 16): the phases of a command run twice, with an empty and then
  a filled compilation cache; the warm run loads from the cache."""
  proc = run(
    script(
      'bench_cl.py', '--breakdown', '--breakdown_args=--config,configs/cl/split_digits.py:quick'
    )
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  record = json.loads(proc.stdout.strip().splitlines()[-1])
  cold, warm = record['cold'], record['warm']
  # Counted, not timed (timings on a loaded 2-core machine are no test): the cold run finds an empty
  # cache, the warm one loads what the cold one wrote, and both build the same executables.
  assert cold['compilation']['cache_hits'] == 0 and warm['compilation']['cache_hits'] > 0
  assert warm['compilation']['executables'] == cold['compilation']['executables']
  assert record['wall_over_training_cold'] == cold['time']['wall_over_training'] > 1
