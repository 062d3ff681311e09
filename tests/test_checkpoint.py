"""cljax.checkpoint: a damaged newest checkpoint is set aside and the next older one restored."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from killing import damage_checkpoint

from cljax.checkpoint import Checkpointer, CheckpointError


def _state(step):
  return {'w': jnp.full((64, 8), float(step)), 'b': jnp.arange(8.0) + step}


def test_restore_newest_sets_damaged_steps_aside_and_restores_the_next_older(tmp_path):
  with Checkpointer(str(tmp_path), max_to_keep=None) as ckpt:
    for step in range(3):
      ckpt.save(step, _state(step), {'step': step})
  damage_checkpoint(tmp_path / '2', 'truncate')
  damage_checkpoint(tmp_path / '1', 'metadata')
  warnings = []
  with Checkpointer(str(tmp_path), max_to_keep=None) as ckpt:
    step, state, meta = ckpt.restore_newest(jax.eval_shape(lambda: _state(0)), warnings.append)
    assert ckpt.all_steps() == [0]
  assert step == 0 and meta == {'step': 0}
  np.testing.assert_array_equal(state['w'], _state(0)['w'])
  assert len(warnings) == 2 and all('does not restore' in w for w in warnings)
  assert (tmp_path / '2.corrupt').is_dir() and (tmp_path / '1.corrupt').is_dir()

  damage_checkpoint(tmp_path / '0', 'delete')
  with Checkpointer(str(tmp_path)) as ckpt:
    with pytest.raises(CheckpointError, match='no checkpoint in .* restores'):
      ckpt.restore_newest(jax.eval_shape(lambda: _state(0)), warnings.append)
  assert (tmp_path / '0.corrupt').is_dir()


def test_restore_newest_of_an_empty_directory_is_none(tmp_path):
  with Checkpointer(str(tmp_path)) as ckpt:
    assert ckpt.restore_newest(jax.eval_shape(lambda: _state(0))) is None


def test_a_failed_restore_silences_only_its_unretrieved_reads(caplog):
  """After a failed restore, asyncio's 'Task exception was never retrieved' records (the other reads'
  tracebacks, logged depending on timing) are dropped; other asyncio records still get through."""
  import logging

  from cljax import checkpoint

  checkpoint._ignore_reads_of_a_failed_restore()
  checkpoint._ignore_reads_of_a_failed_restore()  # idempotent: one filter
  asyncio_logger = logging.getLogger('asyncio')
  assert (
    sum(isinstance(f, checkpoint._DropUnretrievedTaskErrors) for f in asyncio_logger.filters) == 1
  )
  with caplog.at_level(logging.ERROR, logger='asyncio'):
    asyncio_logger.error('Task exception was never retrieved\nfuture: <Task finished>')
    asyncio_logger.error('Exception in callback something else')
  assert [r.getMessage() for r in caplog.records] == ['Exception in callback something else']
