r"""Continual-learning metrics computed from an accuracy matrix.

Conventions
===========
``R`` is the accuracy matrix, a numpy array (or nested list) of shape
``[T, T]``.  In code it is 0-indexed: ``R[i, j]`` is the test accuracy (a
fraction in [0, 1]) on task ``j`` after training has finished on task ``i``.
``accuracy_before`` (written b̄ below) has shape ``[T]``: the accuracy on each
task of the initial network, before any training.  ``joint_accuracy`` (a*) has
shape ``[T]``: ``joint_accuracy[k]`` is the accuracy on task ``k`` of a
reference model trained jointly on tasks ``0..k``.

Entries that were never evaluated (typically the upper triangle, i.e. tasks
not trained yet) may be NaN.  Every function reads only the entries that its
formula needs; a NaN in a needed entry raises ``ValueError`` naming the entry,
e.g. ``"R[2, 1] is NaN but backward_transfer needs it"``.  Non-NaN values
outside [0, 1] (including +-inf) are rejected everywhere.

Formulas (1-indexed, as in the papers: R_{k,j} = ``R[k-1, j-1]``)
=================================================================
Average accuracy (ACC, GEM; Lopez-Paz & Ranzato 2017)::

    ACC = (1/T) sum_{j=1..T} R_{T,j}                      (final row)

Learning accuracy (LA; Riemer et al. 2019)::

    LA = (1/T) sum_{j=1..T} R_{j,j}                       (diagonal)

Backward transfer (BWT, GEM)::

    BWT = (1/(T-1)) sum_{j=1..T-1} (R_{T,j} - R_{j,j})    (negative = forgetting)

Forward transfer (FWT, GEM)::

    FWT = (1/(T-1)) sum_{j=2..T} (R_{j-1,j} - b̄_j)

  FWT reads the entries just *above* the diagonal, R_{j-1,j} (task j
  evaluated before it is trained), so those must be present; b̄_1 is unused.

Forgetting (Chaudhry et al. 2018, RWalk), after the last task k = T::

    f_j = max_{l in {j..T-1}} R_{l,j} - R_{T,j}           for j = 1..T-1
    F   = (1/(T-1)) sum_{j=1..T-1} f_j

  The max runs only over rows at or after the one where task j was trained,
  and the last task is excluded.  Since l = j is in the range,
  f_j >= R_{j,j} - R_{T,j} for every j, hence F >= -BWT; the two are equal
  when every column peaks on the diagonal.

Intransigence (Chaudhry et al. 2018)::

    I_k = a*_k - R_{k,k}       for k = 1..T
    I   = (1/T) sum_{k=1..T} I_k

  We report the mean over all T tasks (the paper defines I_k per task; the
  mean is our summary).  Positive = the continual learner is less able to
  learn new tasks than the joint reference.  For k = 1, a*_1 is a model
  trained on task 1 alone, so I_1 measures only run-to-run noise.

Edge cases
==========
* T = 1: ``average_accuracy`` and ``learning_accuracy`` are R_{1,1};
  ``backward_transfer``, ``forward_transfer`` and ``forgetting`` are NaN
  (their averaging sets are empty; the T-1 denominator is 0);
  ``forgetting_per_task`` is an empty array.  ``intransigence`` is a*_1 - R_{1,1}.
* NaN entries: allowed wherever the formula does not read them (see above);
  a NaN in a needed entry raises ``ValueError``.
* ``compute_all`` converts NaN to ``None`` so that its result is
  JSON-serialisable (``json.dumps`` would otherwise emit the non-standard
  token ``NaN``).

Differences from reference implementations
==========================================
* GEM's released code (``metrics/metrics.py``) builds the same per-task
  bwt/fwt vectors but averages them over all T entries (its last bwt entry
  and first fwt entry are 0), so the numbers it prints are (T-1)/T times the
  paper formulas used here.  ``gem_code_convention`` reproduces them; multiply
  by T/(T-1) to recover ours.
* A-GEM's code (``compute_fgt``) takes the max over *all* rows before the
  last, including rows before task j was trained (upper triangle).  We use
  the textbook range l in {j..T-1}; a high pre-training accuracy on task j
  therefore does not count as something that can be forgotten.
* Avalanche: ``ExperienceForgetting``/``StreamForgetting`` use
  R_{j,j} - R_{T,j} (the accuracy right after training j, not the max), the
  just-trained experience is excluded, and an empty mean is 0.  With a full
  evaluation after every experience this is exactly -BWT
  (``avalanche_stream_forgetting``).  Avalanche's ``StreamAccuracy`` is pooled
  and sample-weighted over the evaluated stream (and may include untrained
  experiences), whereas our ``average_accuracy`` is the unweighted mean of
  the per-task accuracies in the final row; they agree only when the test
  sets have equal size and only trained tasks are evaluated.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Optional

import numpy as np

__all__ = [
  'average_accuracy',
  'learning_accuracy',
  'backward_transfer',
  'forward_transfer',
  'forgetting',
  'forgetting_per_task',
  'intransigence',
  'gem_code_convention',
  'avalanche_stream_forgetting',
  'compute_all',
]


# --------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------


def _as_float_array(x: Any, name: str) -> np.ndarray:
  try:
    arr = np.array(x, dtype=float)  # copy: callers cannot be mutated
  except (TypeError, ValueError) as exc:
    raise ValueError(f'{name} must be a numeric array; could not convert: {exc}') from exc
  return arr


def _check_range(arr: np.ndarray, name: str) -> None:
  finite_or_nan = np.isfinite(arr) | np.isnan(arr)
  ok = finite_or_nan & ~(arr < 0.0) & ~(arr > 1.0)
  if not np.all(ok):
    idx = tuple(int(i) for i in np.argwhere(~ok)[0])
    idx_str = ', '.join(str(i) for i in idx)
    raise ValueError(
      f'{name}[{idx_str}] = {float(arr[idx])!r} is outside [0, 1]; accuracies must be '
      f'fractions in [0, 1] (or NaN for unevaluated entries)'
    )


def _validate_R(R: Any) -> np.ndarray:
  arr = _as_float_array(R, 'R')
  if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] < 1:
    raise ValueError(
      f'R must be a square 2-D accuracy matrix of shape [T, T] with T >= 1; got shape {arr.shape}'
    )
  _check_range(arr, 'R')
  return arr


def _validate_vector(v: Any, name: str, T: int) -> np.ndarray:
  arr = _as_float_array(v, name)
  if arr.shape != (T,):
    raise ValueError(
      f'{name} must have shape [T] = [{T}] (one entry per task, matching R); got shape {arr.shape}'
    )
  _check_range(arr, name)
  return arr


def _require(arr: np.ndarray, name: str, idx: Iterable[tuple[int, ...]], who: str) -> None:
  """Raise if any of the listed entries is NaN."""
  for i in idx:
    if np.isnan(arr[i]):
      idx_str = ', '.join(str(int(k)) for k in i)
      raise ValueError(f'{name}[{idx_str}] is NaN but {who} needs it')


# --------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------


def average_accuracy(R: Any) -> float:
  """ACC = (1/T) sum_{j=1..T} R_{T,j}: unweighted mean of the final row.

  Reads only ``R[T-1, :]``.
  """
  R = _validate_R(R)
  T = R.shape[0]
  _require(R, 'R', ((T - 1, j) for j in range(T)), 'average_accuracy')
  return float(np.mean(R[T - 1, :]))


def learning_accuracy(R: Any) -> float:
  """LA = (1/T) sum_{j=1..T} R_{j,j}: mean accuracy just after learning each task.

  Reads only the diagonal.
  """
  R = _validate_R(R)
  T = R.shape[0]
  _require(R, 'R', ((j, j) for j in range(T)), 'learning_accuracy')
  return float(np.mean(np.diag(R)))


def backward_transfer(R: Any) -> float:
  """GEM BWT = (1/(T-1)) sum_{j=1..T-1} (R_{T,j} - R_{j,j}).

  Reads ``R[T-1, j]`` and ``R[j, j]`` for ``j < T-1``.  Negative values mean
  forgetting.  Returns NaN for T == 1 (no earlier task; 0/0).
  """
  R = _validate_R(R)
  T = R.shape[0]
  if T == 1:
    return math.nan
  js = range(T - 1)
  _require(R, 'R', [(T - 1, j) for j in js] + [(j, j) for j in js], 'backward_transfer')
  return float(np.mean([R[T - 1, j] - R[j, j] for j in js]))


def forward_transfer(R: Any, accuracy_before: Any) -> float:
  """GEM FWT = (1/(T-1)) sum_{j=2..T} (R_{j-1,j} - b̄_j).

  ``accuracy_before`` is b̄, shape [T]: accuracy of the initial network on
  each task.  Reads ``R[j-1, j]`` (the entries just above the diagonal) and
  ``accuracy_before[j]`` for ``j >= 1``; ``accuracy_before[0]`` is unused
  and may be NaN.  Returns NaN for T == 1.
  """
  R = _validate_R(R)
  T = R.shape[0]
  b = _validate_vector(accuracy_before, 'accuracy_before', T)
  if T == 1:
    return math.nan
  js = range(1, T)
  _require(R, 'R', [(j - 1, j) for j in js], 'forward_transfer')
  _require(b, 'accuracy_before', [(j,) for j in js], 'forward_transfer')
  return float(np.mean([R[j - 1, j] - b[j] for j in js]))


def forgetting_per_task(R: Any) -> np.ndarray:
  """Chaudhry et al. (2018) forgetting of each task after the last one.

  f_j = max_{l in {j..T-1}} R_{l,j} - R_{T,j} for j = 1..T-1 (1-indexed);
  in code, ``f[j] = max(R[j:T-1, j]) - R[T-1, j]`` for ``j < T-1``.
  Returns an array of length T-1 (empty for T == 1).  Reads only the lower
  triangle including the diagonal (rows j..T-1 of column j, j < T-1).
  """
  R = _validate_R(R)
  T = R.shape[0]
  need = [(l, j) for j in range(T - 1) for l in range(j, T)]
  _require(R, 'R', need, 'forgetting')
  f = np.empty(T - 1, dtype=float)
  for j in range(T - 1):
    f[j] = np.max(R[j : T - 1, j]) - R[T - 1, j]
  return f


def forgetting(R: Any) -> float:
  """Average forgetting F = (1/(T-1)) sum_{j<T} f_j (Chaudhry et al. 2018).

  See ``forgetting_per_task``.  The last task is excluded.  Returns NaN for
  T == 1.  Always >= -backward_transfer(R).
  """
  f = forgetting_per_task(R)
  if f.size == 0:
    return math.nan
  return float(np.mean(f))


def intransigence(R: Any, joint_accuracy: Any) -> float:
  """Mean intransigence (1/T) sum_{k=1..T} (a*_k - R_{k,k}) (Chaudhry et al. 2018).

  ``joint_accuracy[k]`` = a*_k, the accuracy on task k of a reference model
  trained jointly on tasks 0..k.  The paper defines I_k per task; we return
  the unweighted mean over all T tasks (including the first, where a*_1 is
  a single-task model).  Reads the diagonal of R and all of
  ``joint_accuracy``.
  """
  R = _validate_R(R)
  T = R.shape[0]
  a = _validate_vector(joint_accuracy, 'joint_accuracy', T)
  _require(R, 'R', ((k, k) for k in range(T)), 'intransigence')
  _require(a, 'joint_accuracy', ((k,) for k in range(T)), 'intransigence')
  return float(np.mean(a - np.diag(R)))


def gem_code_convention(R: Any, accuracy_before: Any = None) -> dict:
  """The numbers GEM's released code would print, for cross-checks only.

  Per-task vectors as in the paper (bwt_T = 0, fwt_1 = 0), but averaged over
  all T entries, so ``backward_transfer`` and ``forward_transfer`` here are
  (T-1)/T times ours.  Keys: "average_accuracy", "backward_transfer",
  "forward_transfer" (None when ``accuracy_before`` is None).  For T == 1
  both transfers are 0.0 (a mean of a single zero entry).
  """
  R = _validate_R(R)
  T = R.shape[0]
  who = 'gem_code_convention'
  _require(R, 'R', ((T - 1, j) for j in range(T)), who)
  _require(R, 'R', ((j, j) for j in range(T)), who)
  bwt = np.array([R[T - 1, j] - R[j, j] for j in range(T)])  # last entry is 0
  out: dict = {
    'average_accuracy': float(np.mean(R[T - 1, :])),
    'backward_transfer': float(np.mean(bwt)),
    'forward_transfer': None,
  }
  if accuracy_before is not None:
    b = _validate_vector(accuracy_before, 'accuracy_before', T)
    _require(R, 'R', ((j - 1, j) for j in range(1, T)), who)
    _require(b, 'accuracy_before', ((j,) for j in range(1, T)), who)
    fwt = np.zeros(T)
    for j in range(1, T):
      fwt[j] = R[j - 1, j] - b[j]
    out['forward_transfer'] = float(np.mean(fwt))
  return out


def avalanche_stream_forgetting(R: Any) -> float:
  """Avalanche ``StreamForgetting`` after the last experience, for cross-checks.

  (1/(T-1)) sum_{j<T} (R_{j,j} - R_{T,j}) (1-indexed): the accuracy right
  after training j minus the final accuracy, not Chaudhry's max; the
  just-trained experience is excluded.  Equals ``-backward_transfer(R)`` for
  T >= 2.  For T == 1 Avalanche's empty mean gives 0.0, reproduced here.
  """
  R = _validate_R(R)
  T = R.shape[0]
  if T == 1:
    return 0.0
  js = range(T - 1)
  _require(R, 'R', [(j, j) for j in js] + [(T - 1, j) for j in js], 'avalanche_stream_forgetting')
  return float(np.mean([R[j, j] - R[T - 1, j] for j in js]))


def _to_json_float(x: Optional[float]) -> Optional[float]:
  if x is None:
    return None
  x = float(x)
  return None if math.isnan(x) else x


def compute_all(
  R: Any,
  accuracy_before: Any = None,
  joint_accuracy: Any = None,
) -> dict:
  """All summary metrics as a JSON-serialisable dict of plain floats.

  Keys: "average_accuracy", "backward_transfer", "forward_transfer"
  (None when ``accuracy_before`` is None), "forgetting",
  "learning_accuracy", and "intransigence" only when ``joint_accuracy`` is
  given.  NaN results (e.g. BWT, FWT, forgetting for T == 1) become None so
  that ``json.dumps`` produces valid JSON.
  """
  R = _validate_R(R)
  out: dict = {
    'average_accuracy': _to_json_float(average_accuracy(R)),
    'backward_transfer': _to_json_float(backward_transfer(R)),
    'forward_transfer': (
      None if accuracy_before is None else _to_json_float(forward_transfer(R, accuracy_before))
    ),
    'forgetting': _to_json_float(forgetting(R)),
    'learning_accuracy': _to_json_float(learning_accuracy(R)),
  }
  if joint_accuracy is not None:
    out['intransigence'] = _to_json_float(intransigence(R, joint_accuracy))
  return out
