"""Task streams: split (task- or class-incremental), permuted and rotated (domain-incremental).

A stream is a fixed, host-side sequence of `Task`s. Each task carries its own train / validation / test
arrays and the `output_mask` of logits it may use:
- task-incremental split ("multi-head"): one shared output layer, each task sees only its classes' logits;
- class-incremental split ("single head"): every task uses all logits, so old classes compete with new;
- permuted / rotated (domain-incremental): all tasks share the same labels and all logits.

The validation split is carved, stratified by class, from each task's training data; test data are only
for reporting. Every random choice (class order, permutations, validation split) follows `seed`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from cl.data import Dataset

STREAMS = ('split', 'permuted', 'rotated')
SCENARIOS = ('task', 'class', 'domain')


@dataclasses.dataclass(frozen=True)
class Task:
  name: str
  x_train: np.ndarray
  y_train: np.ndarray
  x_val: np.ndarray
  y_val: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray
  output_mask: np.ndarray  # bool [num_outputs]: logits this task may use
  classes: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class TaskStream:
  name: str
  scenario: str
  tasks: tuple[Task, ...]
  num_outputs: int
  input_shape: tuple[int, ...]

  @property
  def num_tasks(self) -> int:
    return len(self.tasks)


def _val_split(y: np.ndarray, val_fraction: float, rng: np.random.Generator):
  """Stratified train/validation indices."""
  train_idx, val_idx = [], []
  for c in np.unique(y):
    idx = rng.permutation(np.flatnonzero(y == c))
    n_val = int(round(len(idx) * val_fraction))
    val_idx.append(idx[:n_val])
    train_idx.append(idx[n_val:])
  return np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(val_idx))


def split_stream(
  dataset: Dataset,
  *,
  classes_per_task: int = 2,
  num_tasks: int | None = None,
  scenario: str = 'task',
  val_fraction: float = 0.1,
  seed: int = 0,
  shuffle_classes: bool = False,
) -> TaskStream:
  """Splits the classes into consecutive groups of `classes_per_task` (0/1, 2/3, ... unless shuffled)."""
  if scenario not in ('task', 'class'):
    raise ValueError(
      f"scenario for a split stream must be one of ['task', 'class'], got {scenario!r}"
    )
  rng = np.random.default_rng(seed)
  order = (
    rng.permutation(dataset.num_classes) if shuffle_classes else np.arange(dataset.num_classes)
  )
  max_tasks = dataset.num_classes // classes_per_task
  num_tasks = max_tasks if num_tasks is None else num_tasks
  if not 1 <= num_tasks <= max_tasks:
    raise ValueError(
      f'num_tasks must be in [1, {max_tasks}] for {dataset.num_classes} classes '
      f'and classes_per_task={classes_per_task}, got {num_tasks}'
    )
  tasks = []
  for t in range(num_tasks):
    classes = tuple(int(c) for c in order[t * classes_per_task : (t + 1) * classes_per_task])
    tr = np.isin(dataset.y_train, classes)
    te = np.isin(dataset.y_test, classes)
    x, y = dataset.x_train[tr], dataset.y_train[tr]
    train_idx, val_idx = _val_split(y, val_fraction, rng)
    mask = np.zeros(dataset.num_classes, bool)
    if scenario == 'task':
      mask[list(classes)] = True
    else:
      mask[:] = True
    tasks.append(
      Task(
        name=f'{dataset.name}-classes-{"-".join(map(str, classes))}',
        x_train=x[train_idx],
        y_train=y[train_idx],
        x_val=x[val_idx],
        y_val=y[val_idx],
        x_test=dataset.x_test[te],
        y_test=dataset.y_test[te],
        output_mask=mask,
        classes=classes,
      )
    )
  return TaskStream(
    name=f'split_{dataset.name}',
    scenario=scenario,
    tasks=tuple(tasks),
    num_outputs=dataset.num_classes,
    input_shape=dataset.x_train.shape[1:],
  )


def _domain_stream(
  dataset: Dataset, name: str, transforms, val_fraction: float, rng: np.random.Generator
) -> TaskStream:
  train_idx, val_idx = _val_split(dataset.y_train, val_fraction, rng)
  mask = np.ones(dataset.num_classes, bool)
  classes = tuple(range(dataset.num_classes))
  tasks = []
  for t, (task_name, fn) in enumerate(transforms):
    del t
    tasks.append(
      Task(
        name=task_name,
        x_train=fn(dataset.x_train[train_idx]),
        y_train=dataset.y_train[train_idx],
        x_val=fn(dataset.x_train[val_idx]),
        y_val=dataset.y_train[val_idx],
        x_test=fn(dataset.x_test),
        y_test=dataset.y_test,
        output_mask=mask,
        classes=classes,
      )
    )
  return TaskStream(
    name=name,
    scenario='domain',
    tasks=tuple(tasks),
    num_outputs=dataset.num_classes,
    input_shape=dataset.x_train.shape[1:],
  )


def permuted_stream(
  dataset: Dataset,
  *,
  num_tasks: int = 10,
  val_fraction: float = 0.1,
  seed: int = 0,
  permute_first: bool = False,
) -> TaskStream:
  """Each task applies its own fixed pixel permutation; task 1 is unpermuted unless `permute_first`.

  Keeping the first task unpermuted follows FROMP's protocol.
  """
  rng = np.random.default_rng(seed)
  shape = dataset.x_train.shape[1:]
  size = int(np.prod(shape))

  def make(perm):
    return lambda x: x.reshape(len(x), size)[:, perm].reshape((len(x),) + shape)

  transforms = []
  for t in range(num_tasks):
    perm = np.arange(size) if (t == 0 and not permute_first) else rng.permutation(size)
    transforms.append((f'{dataset.name}-permutation-{t}', make(perm)))
  return _domain_stream(dataset, f'permuted_{dataset.name}', transforms, val_fraction, rng)


def rotated_stream(
  dataset: Dataset,
  *,
  num_tasks: int = 10,
  max_angle: float = 180.0,
  val_fraction: float = 0.1,
  seed: int = 0,
) -> TaskStream:
  """Task t rotates every image by t * max_angle / num_tasks degrees (bilinear, zero fill)."""
  from scipy import ndimage  # deferred: scipy only for rotated streams

  if dataset.x_train.ndim != 4:
    raise ValueError(
      f'rotated streams need image data [N, H, W, C], got shape {dataset.x_train.shape}'
    )
  rng = np.random.default_rng(seed)

  def make(angle):
    if angle == 0:
      return lambda x: x
    return lambda x: ndimage.rotate(x, angle, axes=(1, 2), reshape=False, order=1).astype(
      np.float32
    )

  angles = [t * max_angle / num_tasks for t in range(num_tasks)]
  transforms = [(f'{dataset.name}-rotation-{a:g}', make(a)) for a in angles]
  return _domain_stream(dataset, f'rotated_{dataset.name}', transforms, val_fraction, rng)
