"""Experience replay with a fixed-size episodic memory (e.g. Chaudhry et al. 2019, "On tiny episodic
memories in continual learning").

The loss adds `replay_weight × CE` on a minibatch drawn uniformly from the memory to the current-task loss
(each stored example keeps its own output mask, so task-incremental heads stay correct). The memory is
updated at the end of each task, in one of two ways:
- `class_balanced`: every (task, class) group seen so far gets an equal share of the `memory_size` slots
  (the remainder goes to the earliest groups); within a group the examples kept are uniformly random.
  For split streams this is per-class balance; for permuted/rotated streams each task's classes count
  as their own groups, so old tasks keep their share.
- `reservoir`: Vitter's algorithm R over the task's examples in a random order, exactly as if the
  examples had streamed past one at a time; the memory ends up a uniform sample of everything seen.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from cl.methods.base import Method, TaskData, cross_entropy, no_after_step

MEMORY_SELECTIONS = ('class_balanced', 'reservoir')


class ReplayState(NamedTuple):
  x: jax.Array  # [M, ...]
  y: jax.Array  # [M] int32
  mask: jax.Array  # [M, num_outputs] bool
  group: jax.Array  # [M] int32, task_index * num_outputs + label
  count: jax.Array  # [] int32, valid entries are x[:count]
  seen: jax.Array  # [] int32, examples offered to the memory so far (reservoir)


def replay(
  apply_fn,
  *,
  input_shape,
  num_outputs: int,
  num_tasks: int,
  memory_size: int,
  replay_batch_size: int,
  replay_weight: float = 1.0,
  selection: str = 'class_balanced',
) -> Method:
  if selection not in MEMORY_SELECTIONS:
    raise ValueError(f'selection must be one of {list(MEMORY_SELECTIONS)}, got {selection!r}')
  num_groups = num_tasks * num_outputs

  def init(params):
    del params
    return ReplayState(
      x=jnp.zeros((memory_size,) + tuple(input_shape), jnp.float32),
      y=jnp.zeros((memory_size,), jnp.int32),
      mask=jnp.zeros((memory_size, num_outputs), bool),
      group=jnp.full((memory_size,), num_groups, jnp.int32),
      count=jnp.zeros((), jnp.int32),
      seen=jnp.zeros((), jnp.int32),
    )

  def loss(params, state, key, num_past=None):
    del num_past
    idx = jax.random.randint(key, (replay_batch_size,), 0, jnp.maximum(state.count, 1))
    ce = cross_entropy(apply_fn(params, state.x[idx]), state.y[idx], state.mask[idx])
    return jnp.where(state.count > 0, replay_weight * ce, 0.0)

  def consolidate_balanced(state, data: TaskData, key):
    n = data.y.shape[0]
    m = memory_size
    task_group = data.task_index * num_outputs + data.y
    # Candidates: the current memory followed by the new task's examples.
    valid = jnp.concatenate([jnp.arange(m) < state.count, jnp.ones((n,), bool)])
    group = jnp.concatenate([state.group, task_group])
    group = jnp.where(
      valid, group, num_groups
    )  # invalid entries sort last, in a group of their own
    priority = jax.random.uniform(key, (m + n,))
    present = jnp.zeros((num_groups + 1,), bool).at[group].set(True).at[num_groups].set(False)
    num_present = jnp.sum(present)
    rank = jnp.cumsum(present) - 1
    quota = m // num_present + (rank < m % num_present)
    quota = jnp.where(present, quota, 0)
    order = jnp.lexsort((priority, group))
    sorted_group = group[order]
    position = jnp.arange(m + n) - jnp.searchsorted(sorted_group, sorted_group, side='left')
    keep = position < quota[sorted_group]
    chosen = order[jnp.argsort(~keep, stable=True)[:m]]
    count = jnp.minimum(jnp.sum(keep), m)

    def gather(old, new):
      both = jnp.concatenate([old, new])
      return both[chosen]

    return ReplayState(
      x=gather(state.x, data.x),
      y=gather(state.y, data.y),
      mask=gather(state.mask, data.mask),
      group=group[chosen],
      count=count.astype(jnp.int32),
      seen=state.seen + n,
    )

  def consolidate_reservoir(state, data: TaskData, key):
    n = data.y.shape[0]
    m = memory_size
    order_key, slot_key = jax.random.split(key)
    order = jax.random.permutation(order_key, n)
    seen = state.seen + jnp.arange(n)  # how many examples came before each one
    # Algorithm R: example number s (0-based) fills slot s while s < m; afterwards it replaces a
    # uniform slot in [0, s] if that slot is < m. Each decision is independent, so draw them all at
    # once and let the last writer of each slot win.
    draw = jax.random.randint(slot_key, (n,), 0, seen + 1)
    slot = jnp.where(seen < m, seen, draw)
    slot = jnp.where(slot < m, slot, m)  # m = not written
    last_writer = (
      jnp.full((m,), -1, jnp.int32).at[slot].max(jnp.arange(n, dtype=jnp.int32), mode='drop')
    )
    written = last_writer >= 0
    src = order[jnp.maximum(last_writer, 0)]

    def update(old, new):
      w = written.reshape((m,) + (1,) * (old.ndim - 1))
      return jnp.where(w, new[src], old)

    task_group = data.task_index * num_outputs + data.y
    return ReplayState(
      x=update(state.x, data.x),
      y=update(state.y, data.y),
      mask=update(state.mask, data.mask),
      group=update(state.group, task_group),
      count=jnp.minimum(state.seen + n, m).astype(jnp.int32),
      seen=state.seen + n,
    )

  def consolidate(state, params, data, key, opt_state=None):
    del params, opt_state
    if selection == 'class_balanced':
      return consolidate_balanced(state, data, key)
    return consolidate_reservoir(state, data, key)

  return Method(init=init, loss=loss, after_step=no_after_step, consolidate=consolidate)
