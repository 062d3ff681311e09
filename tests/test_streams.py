"""Task streams: classes, masks, validation splits, permutations, rotations."""

import numpy as np
import pytest

from cl import data, streams


@pytest.fixture(scope='module')
def digits():
  return data.load_digits()


def test_split_task_incremental(digits):
  s = streams.split_stream(digits, classes_per_task=2, scenario='task', val_fraction=0.2, seed=0)
  assert s.num_tasks == 5 and s.num_outputs == 10 and s.scenario == 'task'
  for t, task in enumerate(s.tasks):
    assert task.classes == (2 * t, 2 * t + 1)
    assert set(np.unique(task.y_train)) == set(task.classes) == set(np.unique(task.y_test))
    assert np.flatnonzero(task.output_mask).tolist() == list(task.classes)
    n = len(task.y_train) + len(task.y_val)
    assert abs(len(task.y_val) / n - 0.2) < 0.02
    # The validation split is disjoint from the training split.
    tr = {r.tobytes() for r in task.x_train}
    assert not any(r.tobytes() in tr for r in task.x_val)
  # Test data are the dataset's test split, untouched.
  assert sum(len(t.y_test) for t in s.tasks) == len(digits.y_test)


def test_split_class_incremental_uses_all_logits(digits):
  s = streams.split_stream(digits, scenario='class', seed=0)
  assert all(t.output_mask.all() for t in s.tasks)


def test_split_rejects_bad_arguments(digits):
  with pytest.raises(
    ValueError, match=r"scenario for a split stream must be one of \['task', 'class'\]"
  ):
    streams.split_stream(digits, scenario='domain')
  with pytest.raises(ValueError, match='num_tasks must be in'):
    streams.split_stream(digits, num_tasks=6)


def test_permuted_stream(digits):
  s = streams.permuted_stream(digits, num_tasks=3, val_fraction=0.1, seed=0)
  assert s.scenario == 'domain'
  first, second = s.tasks[0], s.tasks[1]
  np.testing.assert_array_equal(first.x_test, digits.x_test)  # task 1 unpermuted
  # One fixed permutation per task, applied alike to train, validation and test images: each pixel
  # column of task 2 equals some pixel column of the unpermuted images.
  flat_test = digits.x_test.reshape(len(digits.x_test), -1)
  flat_second = second.x_test.reshape(len(second.x_test), -1)
  for j in range(flat_test.shape[1]):
    assert any(
      np.array_equal(flat_test[:, k], flat_second[:, j]) for k in range(flat_test.shape[1])
    )
  assert not np.array_equal(second.x_test, first.x_test)
  np.testing.assert_array_equal(
    np.sort(second.x_train.reshape(len(second.x_train), -1), 1),
    np.sort(first.x_train.reshape(len(first.x_train), -1), 1),
  )
  np.testing.assert_array_equal(second.y_train, first.y_train)
  again = streams.permuted_stream(digits, num_tasks=3, val_fraction=0.1, seed=0)
  np.testing.assert_array_equal(again.tasks[2].x_train, s.tasks[2].x_train)
  other = streams.permuted_stream(digits, num_tasks=3, val_fraction=0.1, seed=1)
  assert not np.array_equal(other.tasks[2].x_test, s.tasks[2].x_test)


def test_rotated_stream(digits):
  s = streams.rotated_stream(digits, num_tasks=4, max_angle=180.0, seed=0)
  np.testing.assert_array_equal(s.tasks[0].x_test, digits.x_test)
  # 90 degrees on an 8x8 grid is an exact pixel rotation.
  np.testing.assert_allclose(
    s.tasks[2].x_test[..., 0], np.rot90(digits.x_test[..., 0], 1, axes=(1, 2)), atol=1e-5
  )
