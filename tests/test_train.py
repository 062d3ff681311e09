"""The generic trainer: vmapped seeds, determinism, no hidden recompiles, checkpoint resume."""

import jax
import numpy as np
import pytest

from cl import builders, train
from cljax.checkpoint import Checkpointer
from cljax.config import load_module

split_digits = load_module('configs/cl/split_digits.py')


def quick_config(method='finetune', num_seeds=1, seed=0):
  c = split_digits.get_config()
  c.method = method
  c.num_seeds = num_seeds
  c.seed = seed
  c.epochs = 2
  c.num_tasks = 3
  builders.validate_config(c)
  return c


@pytest.fixture(scope='module')
def stream():
  return builders.build_stream(quick_config())


def run(config, stream, **kwargs):
  learner, method = builders.build_learner(config, stream)
  return train.run_stream(
    learner,
    stream,
    builders.seed_keys(config),
    epochs=config.epochs,
    **train.method_flags(method),
    **kwargs,
  )


def test_vmapped_seeds_equal_seeds_run_alone(stream):
  both = run(quick_config('ewc', num_seeds=2, seed=0), stream)
  alone = run(quick_config('ewc', num_seeds=1, seed=1), stream)
  np.testing.assert_allclose(
    np.asarray(both.accuracy_matrix)[1], np.asarray(alone.accuracy_matrix)[0], atol=1e-6
  )
  for a, b in zip(
    jax.tree.leaves(both.train_state.params), jax.tree.leaves(alone.train_state.params)
  ):
    np.testing.assert_allclose(a[1], b[0], rtol=2e-4, atol=2e-5)
  # Different seeds really differ.
  assert not np.allclose(
    np.asarray(both.train_state.params['head']['kernel'][0]),
    np.asarray(both.train_state.params['head']['kernel'][1]),
  )


def test_same_seed_same_result(stream):
  a = run(quick_config('replay'), stream)
  b = run(quick_config('replay'), stream)
  np.testing.assert_array_equal(np.asarray(a.accuracy_matrix), np.asarray(b.accuracy_matrix))


def test_train_epoch_traced_once_for_equal_task_sizes():
  config = quick_config('si')
  s = builders.build_stream(config)
  # Equal-sized tasks: cap every task at the same number of examples.
  import dataclasses

  tasks = tuple(
    dataclasses.replace(t, x_train=t.x_train[:200], y_train=t.y_train[:200]) for t in s.tasks
  )
  s = dataclasses.replace(s, tasks=tasks)
  learner, method = builders.build_learner(config, s)
  traces = {'train_epoch': 0, 'consolidate': 0}

  def counted(name, fn):
    def wrapper(*args):
      traces[name] += 1
      return fn(*args)

    return wrapper

  learner = learner._replace(
    train_epoch=counted('train_epoch', learner.train_epoch),
    consolidate=counted('consolidate', learner.consolidate),
  )
  rs = train.run_stream(
    learner, s, builders.seed_keys(config), epochs=3, **train.method_flags(method)
  )
  assert int(rs.tasks_done) == 3
  assert traces == {'train_epoch': 1, 'consolidate': 1}


def test_accuracy_matrix_layout_and_learning(stream):
  rs = run(quick_config('joint'), stream)
  R = np.asarray(rs.accuracy_matrix)[0]
  assert R.shape == (3, 3) and not np.isnan(R).any()
  # Task-incremental digits is easy: after training task j its accuracy is far above chance (0.5) even after two epochs.
  assert np.all(np.diag(R) > 0.8)
  assert np.all(np.asarray(rs.accuracy_before) < 0.9)


def test_resume_from_checkpoint_gives_the_same_run(stream, tmp_path):
  config = quick_config('ewc', num_seeds=2)
  learner, method = builders.build_learner(config, stream)
  compiled = train.compile_learner(learner)
  keys = builders.seed_keys(config)
  full = train.run_stream(
    compiled, stream, keys, epochs=config.epochs, **train.method_flags(method)
  )

  class Stop(Exception):
    pass

  with Checkpointer(str(tmp_path / 'ckpt')) as ckpt:

    def save_then_stop(rs):
      ckpt.save(int(rs.tasks_done), rs, {'tasks_done': int(rs.tasks_done)})
      if int(rs.tasks_done) == 1:
        raise Stop

    with pytest.raises(Stop):
      train.run_stream(compiled, stream, keys, epochs=config.epochs, task_end_fn=save_then_stop)

  with Checkpointer(str(tmp_path / 'ckpt')) as ckpt:
    assert ckpt.latest_step() == 1
    restored, meta = ckpt.restore(1, train.abstract_run_state(compiled, stream, keys))
  assert meta == {'tasks_done': 1}
  assert isinstance(restored, train.RunState)
  resumed = train.run_stream(compiled, stream, keys, epochs=config.epochs, run_state=restored)
  np.testing.assert_array_equal(
    np.asarray(resumed.accuracy_matrix), np.asarray(full.accuracy_matrix)
  )
  for a, b in zip(jax.tree.leaves(resumed.train_state), jax.tree.leaves(full.train_state)):
    np.testing.assert_array_equal(a, b)


def test_class_incremental_finetune_forgets_and_replay_helps():
  from cl import metrics

  results = {}
  for method in ('finetune', 'replay'):
    config = quick_config(method, num_seeds=2)
    config.scenario = 'class'
    config.num_tasks = 5
    config.epochs = 5
    s = builders.build_stream(config)
    rs = run(config, s)
    R = np.asarray(rs.accuracy_matrix)
    results[method] = np.mean([metrics.forgetting(r) for r in R])
  # With one shared head, sequential training overwrites old classes almost completely.
  assert results['finetune'] > 0.6
  assert results['replay'] < results['finetune'] - 0.3


def test_cnn_learns_a_task():
  config = quick_config('finetune')
  config.model = 'cnn'
  config.channels = (8,)
  config.dense_size = 32
  config.num_tasks = 1
  config.epochs = 5
  s = builders.build_stream(config)
  rs = run(config, s)
  assert float(rs.accuracy_matrix[0, 0, 0]) > 0.9


@pytest.mark.parametrize('learning_rate, learns', [(1e-2, True), (1e-3, False)])
def test_first_task_of_the_quick_digits_run_learns_given_the_steps(learning_rate, learns):
  """`split_digits.py:quick` prints task 1 at 0.4945 before and after training on it: its one epoch
  is 5 Adam steps, too few at the default rate (1e-3) to move the random network off its constant
  prediction (every "before" entry is one class's share), while later tasks start from trained
  features. Not a bug of the first task's training: at 1e-2 the same 5 steps learn it."""
  config = split_digits.get_config('quick')
  config.optimizer.learning_rate = learning_rate
  config.num_tasks = 1
  builders.validate_config(config)
  result = run(config, builders.build_stream(config))
  before, after = float(result.accuracy_before[0, 0]), float(result.accuracy_matrix[0, 0, 0])
  assert (after > 0.9) == learns and (after == before) != learns, (before, after)
