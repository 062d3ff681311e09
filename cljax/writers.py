"""Metric writers owned by the scripts: JSON lines, TensorBoard (tensorboardX), and a fan-out."""

from __future__ import annotations

import json
import math
import os
from typing import Mapping, Protocol


class MetricWriter(Protocol):
  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None: ...

  def close(self) -> None: ...


def _plain(value):
  value = float(value)
  return None if math.isnan(value) else value


class JsonlWriter:
  """Appends one JSON object per call, `{"step": ..., **scalars}`, to `path`."""

  def __init__(self, path: str):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    self._file = open(path, 'a', encoding='utf-8')

  def write_scalars(self, step, scalars):
    record = {'step': int(step)}
    record.update({k: _plain(v) for k, v in scalars.items()})
    self._file.write(json.dumps(record) + '\n')
    self._file.flush()

  def close(self):
    self._file.close()


class TensorBoardWriter:
  """TensorBoard event files through tensorboardX (no TensorFlow import)."""

  def __init__(self, logdir: str):
    from tensorboardX import SummaryWriter  # deferred: only TensorBoard writers

    self._writer = SummaryWriter(logdir, flush_secs=10)

  def write_scalars(self, step, scalars):
    """Non-finite values are left out (a gap in TensorBoard's curve): NaN marks "not computed
    this period", and tensorboardX would log a warning line for each; metrics.jsonl keeps them."""
    for name, value in scalars.items():
      if math.isfinite(float(value)):
        self._writer.add_scalar(name, float(value), global_step=int(step))

  def close(self):
    self._writer.flush()
    self._writer.close()


class MultiWriter:
  """Writes to every writer it holds."""

  def __init__(self, writers):
    self._writers = list(writers)

  def write_scalars(self, step, scalars):
    for w in self._writers:
      w.write_scalars(step, scalars)

  def close(self):
    for w in self._writers:
      w.close()
