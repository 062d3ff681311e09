"""Tests for cl.metrics.  Expected values are computed by hand in comments."""

import json
import math

import numpy as np
import pytest

from cl import metrics as M

NAN = float('nan')

# 3x3 hand-made matrix.  Column 0 peaks at row 1 (0.90), not on the diagonal,
# so Chaudhry forgetting differs from -BWT.
#            task0  task1  task2
R3 = [
  [0.80, 0.10, 0.12],  # after task 0
  [0.90, 0.85, 0.20],  # after task 1
  [0.70, 0.75, 0.95],  # after task 2
]
B3 = [0.10, 0.05, 0.10]  # accuracy before training
A3 = [0.82, 0.90, 0.97]  # joint-training reference a*_k


# ---------------------------------------------------------------- 3x3 by hand


def test_average_accuracy_3x3():
  # (0.70 + 0.75 + 0.95) / 3 = 2.40 / 3 = 0.80
  assert M.average_accuracy(R3) == pytest.approx(0.80)


def test_learning_accuracy_3x3():
  # (0.80 + 0.85 + 0.95) / 3 = 2.60 / 3
  assert M.learning_accuracy(R3) == pytest.approx(2.60 / 3)


def test_backward_transfer_3x3():
  # ((0.70 - 0.80) + (0.75 - 0.85)) / 2 = (-0.10 - 0.10) / 2 = -0.10
  assert M.backward_transfer(R3) == pytest.approx(-0.10)


def test_forward_transfer_3x3():
  # ((R[0,1] - b1) + (R[1,2] - b2)) / 2 = ((0.10 - 0.05) + (0.20 - 0.10)) / 2 = 0.075
  assert M.forward_transfer(R3, B3) == pytest.approx(0.075)


def test_forgetting_3x3_differs_from_minus_bwt():
  # f0 = max(0.80, 0.90) - 0.70 = 0.20 ; f1 = max(0.85) - 0.75 = 0.10
  np.testing.assert_allclose(M.forgetting_per_task(R3), [0.20, 0.10])
  # F = (0.20 + 0.10) / 2 = 0.15, while -BWT = 0.10
  assert M.forgetting(R3) == pytest.approx(0.15)
  assert M.forgetting(R3) > -M.backward_transfer(R3) + 1e-9


def test_intransigence_3x3():
  # I = ((0.82-0.80) + (0.90-0.85) + (0.97-0.95)) / 3 = (0.02+0.05+0.02)/3 = 0.03
  assert M.intransigence(R3, A3) == pytest.approx(0.03)


def test_gem_code_convention_3x3():
  out = M.gem_code_convention(R3, B3)
  # bwt vector [-0.10, -0.10, 0] averaged over 3: -0.20 / 3
  assert out['backward_transfer'] == pytest.approx(-0.20 / 3)
  # fwt vector [0, 0.05, 0.10] averaged over 3: 0.15 / 3 = 0.05
  assert out['forward_transfer'] == pytest.approx(0.05)
  assert out['average_accuracy'] == pytest.approx(0.80)
  # cross-check: GEM-code numbers x T/(T-1) = paper formulas
  assert out['backward_transfer'] * 3 / 2 == pytest.approx(M.backward_transfer(R3))
  assert out['forward_transfer'] * 3 / 2 == pytest.approx(M.forward_transfer(R3, B3))
  assert M.gem_code_convention(R3)['forward_transfer'] is None


def test_avalanche_stream_forgetting_3x3():
  # ((0.80 - 0.70) + (0.85 - 0.75)) / 2 = 0.10 = -BWT (not Chaudhry's 0.15)
  assert M.avalanche_stream_forgetting(R3) == pytest.approx(0.10)
  assert M.avalanche_stream_forgetting(R3) == pytest.approx(-M.backward_transfer(R3))


def test_forgetting_ignores_rows_before_task_trained():
  # A-GEM's code would take max over rows 0..T-2 of column 1, including
  # R[0,1] (before task 1 was trained).  Ours must not: with R[0,1] = 0.99
  # A-GEM would give f1 = 0.99 - 0.75 = 0.24; ours stays 0.85 - 0.75 = 0.10.
  R = np.array(R3)
  R[0, 1] = 0.99
  np.testing.assert_allclose(M.forgetting_per_task(R), [0.20, 0.10])


def test_2x2_by_hand():
  R = [[0.9, 0.3], [0.6, 0.8]]
  b = [0.1, 0.2]
  assert M.average_accuracy(R) == pytest.approx(0.7)  # (0.6 + 0.8) / 2
  assert M.learning_accuracy(R) == pytest.approx(0.85)  # (0.9 + 0.8) / 2
  assert M.backward_transfer(R) == pytest.approx(-0.3)  # 0.6 - 0.9
  assert M.forward_transfer(R, b) == pytest.approx(0.1)  # 0.3 - 0.2
  assert M.forgetting(R) == pytest.approx(0.3)  # max(0.9) - 0.6


def test_4x4_peak_in_middle_row():
  # column 0: 0.5, 0.7, 0.9, 0.4 -> f0 = max(0.5, 0.7, 0.9) - 0.4 = 0.5
  # column 1: 0.6, 0.8, 0.3      -> f1 = max(0.6, 0.8) - 0.3 = 0.5
  # column 2: 0.7, 0.7           -> f2 = 0.7 - 0.7 = 0.0
  R = [
    [0.5, NAN, NAN, NAN],
    [0.7, 0.6, NAN, NAN],
    [0.9, 0.8, 0.7, NAN],
    [0.4, 0.3, 0.7, 1.0],
  ]
  np.testing.assert_allclose(M.forgetting_per_task(R), [0.5, 0.5, 0.0])
  assert M.forgetting(R) == pytest.approx(1.0 / 3)
  # BWT = ((0.4-0.5) + (0.3-0.6) + (0.7-0.7)) / 3 = -0.4 / 3
  assert M.backward_transfer(R) == pytest.approx(-0.4 / 3)


# ---------------------------------------------------------------- T = 1


def test_T1_edge_cases():
  R = [[0.6]]
  assert M.average_accuracy(R) == pytest.approx(0.6)
  assert M.learning_accuracy(R) == pytest.approx(0.6)
  assert math.isnan(M.backward_transfer(R))
  assert math.isnan(M.forward_transfer(R, [0.1]))
  assert math.isnan(M.forgetting(R))
  assert M.forgetting_per_task(R).shape == (0,)
  assert M.intransigence(R, [0.65]) == pytest.approx(0.05)  # 0.65 - 0.6
  gem = M.gem_code_convention(R, [0.1])
  assert gem['backward_transfer'] == 0.0 and gem['forward_transfer'] == 0.0
  assert M.avalanche_stream_forgetting(R) == 0.0  # Avalanche's empty mean
  out = M.compute_all(R, accuracy_before=[0.1])
  assert out['backward_transfer'] is None
  assert out['forward_transfer'] is None
  assert out['forgetting'] is None
  assert out['average_accuracy'] == pytest.approx(0.6)
  json.dumps(out, allow_nan=False)


def test_T1_forward_transfer_accuracy_before_nan_ok():
  # b̄[0] is never used
  assert math.isnan(M.forward_transfer([[0.6]], [NAN]))


# ---------------------------------------------------------------- NaN handling


def test_nan_upper_triangle_allowed():
  R = np.array(R3)
  R[np.triu_indices(3, k=1)] = NAN
  assert M.average_accuracy(R) == pytest.approx(0.80)
  assert M.learning_accuracy(R) == pytest.approx(2.60 / 3)
  assert M.backward_transfer(R) == pytest.approx(-0.10)
  assert M.forgetting(R) == pytest.approx(0.15)
  assert M.avalanche_stream_forgetting(R) == pytest.approx(0.10)
  assert M.intransigence(R, A3) == pytest.approx(0.03)
  out = M.compute_all(R)
  assert out['forward_transfer'] is None
  # FWT needs the superdiagonal
  with pytest.raises(ValueError, match=r'R\[0, 1\] is NaN but forward_transfer needs it'):
    M.forward_transfer(R, B3)


def test_fwt_only_needs_superdiagonal_and_b_from_1():
  R = np.array(R3)
  R[0, 2] = NAN  # two above the diagonal: unused
  b = [NAN, 0.05, 0.10]  # b̄[0] unused
  assert M.forward_transfer(R, b) == pytest.approx(0.075)


def test_nan_in_needed_entry_raises():
  R = np.array(R3)
  R[2, 1] = NAN
  with pytest.raises(ValueError, match=r'R\[2, 1\] is NaN but backward_transfer needs it'):
    M.backward_transfer(R)
  with pytest.raises(ValueError, match=r'R\[2, 1\] is NaN but average_accuracy needs it'):
    M.average_accuracy(R)
  with pytest.raises(ValueError, match=r'R\[2, 1\]'):
    M.forgetting(R)
  with pytest.raises(ValueError, match=r'R\[2, 1\]'):
    M.compute_all(R)
  R = np.array(R3)
  R[1, 1] = NAN
  with pytest.raises(ValueError, match=r'R\[1, 1\] is NaN but learning_accuracy needs it'):
    M.learning_accuracy(R)
  with pytest.raises(ValueError, match=r'accuracy_before\[2\] is NaN but forward_transfer'):
    M.forward_transfer(R3, [0.1, 0.05, NAN])
  with pytest.raises(ValueError, match=r'joint_accuracy\[1\] is NaN but intransigence'):
    M.intransigence(R3, [0.82, NAN, 0.97])


def test_nan_only_in_entries_a_metric_does_not_read():
  # R[1, 0] is needed by forgetting (intermediate row) but not by BWT.
  R = np.array(R3)
  R[1, 0] = NAN
  assert M.backward_transfer(R) == pytest.approx(-0.10)
  with pytest.raises(ValueError, match=r'R\[1, 0\] is NaN but forgetting needs it'):
    M.forgetting(R)


# ---------------------------------------------------------------- properties


@pytest.mark.parametrize('seed', [0, 1, 2, 3, 4])
def test_random_lower_triangular_properties(seed):
  rng = np.random.default_rng(seed)
  T = int(rng.integers(2, 8))
  R = rng.uniform(0.0, 1.0, size=(T, T))
  sup = R[np.arange(T - 1), np.arange(1, T)].copy()
  R[np.triu_indices(T, k=1)] = NAN
  R[np.arange(T - 1), np.arange(1, T)] = sup  # superdiagonal kept for FWT
  b = rng.uniform(0.0, 1.0, size=T)

  f = M.forgetting_per_task(R)
  for j in range(T - 1):
    assert f[j] >= -(R[T - 1, j] - R[j, j]) - 1e-12
  assert M.forgetting(R) >= -M.backward_transfer(R) - 1e-12

  gem = M.gem_code_convention(R, b)
  assert gem['backward_transfer'] * T / (T - 1) == pytest.approx(M.backward_transfer(R))
  assert gem['forward_transfer'] * T / (T - 1) == pytest.approx(M.forward_transfer(R, b))
  assert gem['average_accuracy'] == pytest.approx(M.average_accuracy(R))
  assert M.avalanche_stream_forgetting(R) == pytest.approx(-M.backward_transfer(R))


def test_forgetting_equals_minus_bwt_when_columns_peak_on_diagonal():
  # Monotonically decreasing columns -> max is on the diagonal.
  R = [[0.9, NAN, NAN], [0.8, 0.95, NAN], [0.6, 0.7, 0.9]]
  # f = [0.9-0.6, 0.95-0.7] = [0.30, 0.25]; F = 0.275 = -BWT
  assert M.forgetting(R) == pytest.approx(0.275)
  assert M.forgetting(R) == pytest.approx(-M.backward_transfer(R))


# ---------------------------------------------------------------- compute_all


def test_compute_all_keys_and_json():
  out = M.compute_all(R3)
  assert set(out) == {
    'average_accuracy',
    'backward_transfer',
    'forward_transfer',
    'forgetting',
    'learning_accuracy',
  }
  assert out['forward_transfer'] is None
  out = M.compute_all(R3, accuracy_before=B3, joint_accuracy=A3)
  assert set(out) == {
    'average_accuracy',
    'backward_transfer',
    'forward_transfer',
    'forgetting',
    'learning_accuracy',
    'intransigence',
  }
  for v in out.values():
    assert type(v) is float
  assert out['forgetting'] == pytest.approx(0.15)
  assert out['forward_transfer'] == pytest.approx(0.075)
  assert out['intransigence'] == pytest.approx(0.03)
  s = json.dumps(out, allow_nan=False)
  assert json.loads(s)['average_accuracy'] == pytest.approx(0.80)


def test_accepts_lists_and_does_not_mutate():
  R = np.array(R3)
  R_copy = R.copy()
  M.compute_all(R, accuracy_before=np.array(B3), joint_accuracy=A3)
  np.testing.assert_array_equal(R, R_copy)
  assert M.compute_all(R3) == M.compute_all(np.array(R3))


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
  'bad',
  [
    [0.5, 0.6],  # 1-D
    [[0.5, 0.6, 0.7], [0.1, 0.2, 0.3]],  # not square
    np.zeros((0, 0)),  # T = 0
    np.zeros((2, 2, 2)),  # 3-D
    0.5,  # scalar
  ],
)
def test_bad_shape_R(bad):
  with pytest.raises(ValueError, match=r'R must be .*\[T, T\]'):
    M.average_accuracy(bad)


@pytest.mark.parametrize('value', [1.5, -0.1, float('inf')])
def test_out_of_range_R(value):
  R = np.array(R3)
  R[0, 2] = value  # even an unused entry must be a valid accuracy or NaN
  with pytest.raises(ValueError, match=r'R\[0, 2\].*outside \[0, 1\]'):
    M.backward_transfer(R)


def test_non_numeric_R():
  with pytest.raises(ValueError, match=r'^R must be'):
    M.average_accuracy([['a', 'b'], ['c', 'd']])
  with pytest.raises(ValueError, match=r'^R must be'):
    M.average_accuracy([[0.1, 0.2], [0.3]])  # ragged


def test_bad_accuracy_before():
  with pytest.raises(ValueError, match=r'accuracy_before must have shape \[T\] = \[3\]'):
    M.forward_transfer(R3, [0.1, 0.2])
  with pytest.raises(ValueError, match=r'accuracy_before must have shape'):
    M.compute_all(R3, accuracy_before=[[0.1, 0.2, 0.3]])
  with pytest.raises(ValueError, match=r'accuracy_before\[1\].*outside \[0, 1\]'):
    M.forward_transfer(R3, [0.1, 2.0, 0.3])


def test_bad_joint_accuracy():
  with pytest.raises(ValueError, match=r'joint_accuracy must have shape \[T\] = \[3\]'):
    M.intransigence(R3, [0.9])
  with pytest.raises(ValueError, match=r'joint_accuracy\[0\].*outside \[0, 1\]'):
    M.compute_all(R3, joint_accuracy=[-0.5, 0.9, 0.9])
