"""A thin wrapper around orbax's `CheckpointManager`: one directory per run, typed restores.

Each checkpoint step holds two items: `state` (any pytree of arrays, saved with `StandardSave` and
restored against an abstract target so dataclasses come back as themselves) and `meta` (a JSON dict).
Saves are synchronous by default so that a run killed right after `save` returns has its checkpoint on
disk; orbax writes to a temporary directory and renames it, so a half-written step is never read back.
A step damaged afterwards (a full disk, a copy cut short) is what `restore_newest` handles: reported
in one line, set aside as `<step>.corrupt`, and the next older step restored instead.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import jax
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils


class CheckpointError(RuntimeError):
  """No checkpoint of a run can be restored; the message says what to do."""


class _DropUnretrievedTaskErrors(logging.Filter):
  """Drops asyncio's 'Task exception was never retrieved' records (with their tracebacks)."""

  def filter(self, record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith('Task exception was never retrieved')


def _ignore_reads_of_a_failed_restore() -> None:
  """A failed orbax restore closes its asyncio loop while tensorstore still finishes the other
  arrays' reads; each then reports 'Event loop is closed' as an unraisable exception, a traceback
  apiece on stderr, and, depending on timing (seen under load), asyncio logs the reads' tasks whose
  errors nobody retrieved, again with tracebacks. Those (and only those) are dropped; any other
  unraisable exception goes to the previous hook, any other asyncio record is logged."""
  asyncio_logger = logging.getLogger('asyncio')
  if not any(isinstance(f, _DropUnretrievedTaskErrors) for f in asyncio_logger.filters):
    asyncio_logger.addFilter(_DropUnretrievedTaskErrors())
  previous = sys.unraisablehook
  if getattr(previous, 'drops_closed_loop_reads', False):
    return

  def hook(unraisable):
    value = unraisable.exc_value
    if not (isinstance(value, RuntimeError) and str(value) == 'Event loop is closed'):
      previous(unraisable)

  hook.drops_closed_loop_reads = True
  sys.unraisablehook = hook


class Checkpointer:
  """Saves and restores `(state, meta)` pairs under `directory/<step>/`.

  Use as a context manager (or call `close()`): errors of a save surface there at the latest.
  """

  def __init__(self, directory: str, max_to_keep: int | None = None):
    self.directory = os.path.abspath(directory)
    options = ocp.CheckpointManagerOptions(
      max_to_keep=max_to_keep,
      enable_async_checkpointing=False,
      cleanup_tmp_directories=True,
      create=True,
    )
    self._manager = ocp.CheckpointManager(
      self.directory, options=options, item_names=('state', 'meta')
    )

  def save(self, step: int, state: Any, meta: dict) -> None:
    # Typed PRNG keys are stored as their raw uint32 data and re-wrapped on restore.
    state = jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, state)
    self._manager.save(
      step,
      args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
      force=True,
    )
    self._manager.wait_until_finished()

  def delete(self, step: int) -> None:
    self._manager.delete(step)

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def restore(self, step: int, abstract_state: Any) -> tuple[Any, dict]:
    """Restores step `step` into the structure (and dtypes, shardings) of `abstract_state`."""
    target = jax.tree.map(_as_abstract, abstract_state)
    restored = self._manager.restore(
      step,
      args=ocp.args.Composite(state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore()),
    )
    state = jax.tree.map(
      lambda x, a: _wrap_key(x, a) if _is_key(a) else x, restored.state, abstract_state
    )
    return state, dict(restored.meta)

  def restore_newest(self, abstract_state: Any, warn=print) -> tuple[int, Any, dict] | None:
    """(step, state, meta) of the newest checkpoint that restores, or None when there is none.

    A checkpoint that does not restore (missing files, truncated data, garbage metadata) is
    reported in one line through `warn`, set aside as `<step>.corrupt` (never deleted) and the next
    older one is tried. Raises CheckpointError when checkpoints exist but none restores."""
    steps = sorted(self._manager.all_steps(), reverse=True)
    _ignore_reads_of_a_failed_restore()
    for step in steps:
      try:
        state, meta = self.restore(step, abstract_state)
        return step, state, meta
      except Exception as e:  # pylint: disable=broad-except  (orbax / tensorstore raise many kinds)
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        aside = os.path.join(self.directory, f'{step}.corrupt')
        if os.path.exists(aside):  # set aside before, in an earlier attempt at this run
          aside += f'.{sum(n.startswith(f"{step}.corrupt") for n in os.listdir(self.directory))}'
        warn(
          f'checkpoint {os.path.join(self.directory, str(step))} does not restore '
          f'({type(e).__name__}: {reason}); set aside as {aside}, trying an older one'
        )
        if jax.process_index() == 0:
          os.replace(os.path.join(self.directory, str(step)), aside)
        if jax.process_count() > 1:  # every process sees it set aside before listing again
          multihost_utils.sync_global_devices(f'checkpoint {step} set aside')
        self._manager.reload()
    if steps:
      raise CheckpointError(
        f'no checkpoint in {self.directory} restores (set aside as <step>.corrupt); '
        f'remove the directory to start the run afresh'
      )
    return None

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()

  def __enter__(self) -> 'Checkpointer':
    return self

  def __exit__(self, *exc) -> None:
    self.close()


def _wrap_key(data, abstract_key):
  return jax.random.wrap_key_data(data, impl=abstract_key.dtype._impl)  # pylint: disable=protected-access


def _is_key(x) -> bool:
  return jax.dtypes.issubdtype(getattr(x, 'dtype', None), jax.dtypes.prng_key)


def _as_abstract(x):
  # A NamedSharding of a key array's axes applies unchanged to its raw data (one more, trailing axis).
  sharding = getattr(x, 'sharding', None)
  if _is_key(x):
    x = jax.eval_shape(jax.random.key_data, x)
    return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding)
  if isinstance(x, jax.ShapeDtypeStruct):
    return x
  return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding)
