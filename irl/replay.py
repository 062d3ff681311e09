"""Replay buffers for off-policy IRL: a transition ring buffer and a fixed expert buffer.

Design notes: /work/shared/reference/irl.md section 5. Both buffers store *explicit* transitions
(s, a, r, s', terminated, truncated), so a sampled row is always one transition as it was inserted and
nothing is ever paired across an episode boundary (the pitfall of buffers that rebuild s' from the next
time step). This costs twice the observation memory and is what OPIRL needs: its next state may be the
absorbing state (DAC; Kostrikov et al. 2019) rather than the next observation in the stream.

Everything here is a pure function of plain pytrees of arrays, so buffers
- go through `jax.jit`, `jax.lax.scan` and `jax.vmap` (one buffer per seed: vmap `init` or broadcast its
  leaves, then vmap `add` and `sample` with a key per seed);
- save and restore with orbax (`cljax.checkpoint.Checkpointer`) as part of any state dict;
- place on a mesh with `place(buffer, NamedSharding(mesh, P('seed')))` when seeds are the leading axis.

Memory: carried through a jitted `lax.scan` (the intended use), `add` writes its rows in place, with no
copy of the whole buffer. Called one step at a time from Python, `jax.jit(add, donate_argnums=0)` lets
XLA reuse the old buffer's memory; without donation every call allocates and fills a new buffer.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from envs.core import Transition  # noqa: F401  (re-exported: irl.replay.Transition)


@flax.struct.dataclass
class ReplayBuffer:
  """A ring buffer of transitions with a static capacity (the leading axis of every leaf of `data`).

  Invariant: slots `[0, size)` hold data and all others are zeros, because writes start at slot 0 and
  move forward; once the buffer is full (`size == capacity`) the oldest rows are overwritten first.
  `position` is the next slot `add` writes to.
  """

  data: Transition
  position: jax.Array  # int32 scalar (per seed)
  size: jax.Array  # int32 scalar (per seed), in [0, capacity]

  @property
  def capacity(self) -> int:
    """The static number of slots; correct also outside a vmap over seeds (leading seed axes)."""
    return jax.tree.leaves(self.data)[0].shape[jnp.ndim(self.position)]


@flax.struct.dataclass
class ExpertBuffer:
  """Fixed demonstrations: every leaf of `data` has the same leading axis of `size` transitions.

  One expert buffer serves all seeds: pass it unbatched (`in_axes=None`) to a vmap over seeds.
  """

  data: Transition

  @property
  def size(self) -> int:
    return jax.tree.leaves(self.data)[0].shape[0]


def init(example: Transition, capacity: int) -> ReplayBuffer:
  """An empty buffer of `capacity` slots shaped like `example`, one unbatched transition.

  Only the shapes and dtypes of `example` are used; the slots are zeros.
  """
  if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)) or capacity < 1:
    raise ValueError(f'capacity must be a positive integer, got {capacity!r}')
  _check_obs_pair(example, batch_axes=0, name='example')
  data = jax.tree.map(
    lambda x: jnp.zeros((int(capacity),) + jnp.shape(x), jnp.result_type(x)), example
  )
  return ReplayBuffer(data=data, position=jnp.zeros((), jnp.int32), size=jnp.zeros((), jnp.int32))


def add(buffer: ReplayBuffer, batch: Transition, valid: jax.Array | None = None) -> ReplayBuffer:
  """Writes a batch (leading axis B <= capacity) at `position`, wrapping around the end of the ring.

  All rows go in with one scatter. Rows must have the buffer's shapes; dtypes are cast within their
  kind (e.g. float64 to float32), while a change of kind (float into a bool slot) is an error.

  `valid` (optional, bool [B]) keeps static shapes when only some rows are real, e.g. the absorbing
  rows of `irl.absorbing.to_absorbing`: the valid rows are written consecutively in their order and
  the others are dropped, so `position` and `size` advance by `sum(valid)`. For a prefix of n rows pass
  `valid=jnp.arange(B) < n`.
  """
  capacity = buffer.capacity
  batch_size = _check_batch(buffer.data, batch)
  if batch_size > capacity:
    raise ValueError(
      f'batch has {batch_size} transitions, more than the buffer capacity {capacity}; '
      f'add at most capacity ({capacity}) at a time'
    )
  offsets = jnp.arange(batch_size, dtype=jnp.int32)
  if valid is None:
    num_added, mode = batch_size, 'promise_in_bounds'
    slots = (buffer.position + offsets) % capacity
  else:
    if jnp.shape(valid) != (batch_size,):
      raise ValueError(
        f'valid must have shape ({batch_size},) like the batch, got {jnp.shape(valid)}'
      )
    valid = jnp.asarray(valid, jnp.bool_)
    num_added, mode = jnp.sum(valid, dtype=jnp.int32), 'drop'
    rank = jnp.cumsum(valid, dtype=jnp.int32) - 1  # index of each valid row among the valid rows
    # Invalid rows get distinct slots past the end, which the scatter drops.
    slots = jnp.where(valid, (buffer.position + rank) % capacity, capacity + offsets)
  # B <= capacity, so the slots are distinct and the scatter has one writer per slot.
  data = jax.tree.map(
    lambda stored, new: stored.at[slots].set(
      jnp.asarray(new).astype(stored.dtype), unique_indices=True, mode=mode
    ),
    buffer.data,
    batch,
  )
  return ReplayBuffer(
    data=data,
    position=(buffer.position + num_added) % capacity,
    size=jnp.minimum(buffer.size + num_added, capacity).astype(jnp.int32),
  )


def sample(buffer: ReplayBuffer | ExpertBuffer, key: jax.Array, batch_size: int) -> Transition:
  """`batch_size` transitions drawn uniformly with replacement from the filled slots.

  Works for both buffer types: an `ExpertBuffer` is always full. Only slots `[0, size)` can be drawn,
  so unfilled slots never come back. Sampling an empty `ReplayBuffer` is an error outside `jit`; inside
  `jit` it cannot be checked and returns the zeros of slot 0, so guard with `can_sample`.
  """
  if (
    isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1
  ):
    raise ValueError(f'batch_size must be a positive integer, got {batch_size!r}')
  size = buffer.size
  if isinstance(buffer, ReplayBuffer):
    if not isinstance(size, jax.core.Tracer) and np.any(np.asarray(size) < 1):
      raise ValueError('cannot sample from an empty replay buffer (size 0); check can_sample first')
    size = jnp.maximum(size, 1)
  slots = jax.random.randint(key, (batch_size,), 0, size, dtype=jnp.int32)
  return jax.tree.map(lambda x: x.at[slots].get(mode='promise_in_bounds'), buffer.data)


def sample_recent(buffer: ReplayBuffer, key: jax.Array, batch_size: int, window: int) -> Transition:
  """`batch_size` transitions drawn uniformly with replacement from the `window` most recently added
  ones (all of them while fewer are stored): the "nearly on-policy" negatives of AIRL-style baselines,
  as opposed to OPIRL's whole-buffer negatives (`sample`)."""
  if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
    raise ValueError(f'window must be a positive integer, got {window!r}')
  if window > buffer.capacity:
    raise ValueError(f'window ({window}) must not exceed the buffer capacity ({buffer.capacity})')
  if (
    isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1
  ):
    raise ValueError(f'batch_size must be a positive integer, got {batch_size!r}')
  span = jnp.maximum(jnp.minimum(buffer.size, window), 1)
  back = jax.random.randint(key, (batch_size,), 0, span, dtype=jnp.int32)
  # The newest row sits just before `position` (mod capacity); filled slots are [0, size).
  slots = jnp.mod(buffer.position - 1 - back, buffer.capacity)
  return jax.tree.map(lambda x: x.at[slots].get(mode='promise_in_bounds'), buffer.data)


def can_sample(buffer: ReplayBuffer | ExpertBuffer, batch_size: int) -> jax.Array:
  """Whether the buffer holds at least `batch_size` transitions (a bool array, usable in `lax.cond`).

  Sampling is with replacement, so one transition is enough in principle; requiring a full batch of
  distinct transitions is the usual warm-up guard.
  """
  return jnp.asarray(buffer.size) >= batch_size


def place(buffer, sharding: jax.sharding.Sharding):
  """Puts every leaf of a buffer (or any state holding one) with `sharding`.

  This is `jax.device_put(buffer, sharding)`: for buffers vmapped over seeds every leaf (`data`,
  `position`, `size`) has the seed axis first, so `NamedSharding(mesh, P('seed'))` splits seeds over
  devices and the vmapped `add`/`sample` under `jit` keep that sharding. The number of seeds must be a
  multiple of the mesh axis size.
  """
  return jax.device_put(buffer, sharding)


def expert_buffer(transitions: Transition) -> ExpertBuffer:
  """A fixed buffer over full arrays of demonstrations (e.g. loaded from an .npz).

  Every field must have the same leading axis N >= 1 (one row per transition) and `next_obs` must have
  the shape of `obs`. Arrays become JAX arrays on the default device.
  """
  if not isinstance(transitions, Transition):
    raise TypeError(
      f'transitions must be an irl.replay.Transition, got {type(transitions).__name__}'
    )
  data = jax.tree.map(jnp.asarray, transitions)
  lengths = {}
  for field, x in zip(Transition._fields, data):
    if x.ndim == 0:
      raise ValueError(f'transitions.{field} must have a leading axis of transitions, got a scalar')
    lengths[field] = x.shape[0]
  if len(set(lengths.values())) != 1:
    raise ValueError(f'all transition fields must have the same number of rows, got {lengths}')
  if lengths['obs'] < 1:
    raise ValueError('transitions must hold at least one transition, got 0 rows')
  _check_obs_pair(data, batch_axes=1, name='transitions')
  return ExpertBuffer(data=data)


def observation_stats(
  transitions: Transition, std_floor: float = 1e-3
) -> tuple[jax.Array, jax.Array]:
  """Per-dimension mean and standard deviation of the expert's observations `transitions.obs`.

  The std is floored at `std_floor` so constant dimensions (e.g. an absorbing indicator that is always
  0) do not divide by zero. OPIRL (via ValueDICE) instead scales by 1 / (std + 1e-3); the two agree
  up to 1e-3 in the std and differ noticeably only for near-constant dimensions. Compute the stats on
  the raw demonstrations, before absorbing transitions are appended, as ValueDICE does.
  """
  if not std_floor > 0:
    raise ValueError(f'std_floor must be > 0, got {std_floor!r}')
  obs = jnp.asarray(transitions.obs)
  if obs.ndim < 1 or obs.shape[0] < 1:
    raise ValueError(
      f'transitions.obs must have a leading axis of at least one row, got shape {obs.shape}'
    )
  return jnp.mean(obs, axis=0), jnp.maximum(jnp.std(obs, axis=0), std_floor)


def normalize_observations(transitions: Transition, mean: jax.Array, std: jax.Array) -> Transition:
  """`obs` and `next_obs` shifted by `mean` and scaled by `1 / std` (stats from `observation_stats`)."""
  return transitions._replace(
    obs=(jnp.asarray(transitions.obs) - mean) / std,
    next_obs=(jnp.asarray(transitions.next_obs) - mean) / std,
  )


def _check_obs_pair(transition, batch_axes: int, name: str) -> None:
  if not isinstance(transition, Transition):
    raise TypeError(f'{name} must be an irl.replay.Transition, got {type(transition).__name__}')
  obs_shape = jnp.shape(transition.obs)[batch_axes:]
  next_shape = jnp.shape(transition.next_obs)[batch_axes:]
  if obs_shape != next_shape:
    raise ValueError(
      f'{name}.next_obs must have the shape of {name}.obs, got {next_shape} and {obs_shape}'
    )


def _check_batch(stored: Transition, batch: Transition) -> int:
  """Checks `batch` against the buffer's slots and returns its static leading size B."""
  if not isinstance(batch, Transition):
    raise TypeError(f'batch must be an irl.replay.Transition, got {type(batch).__name__}')
  sizes = set()
  for field, slot, rows in zip(Transition._fields, stored, batch):
    rows_shape, slot_shape = jnp.shape(rows), slot.shape[1:]
    if len(rows_shape) != len(slot_shape) + 1 or rows_shape[1:] != slot_shape:
      raise ValueError(f'batch.{field} must have shape (B,) + {slot_shape}, got {rows_shape}')
    rows_kind, slot_kind = _kind(jnp.result_type(rows)), _kind(slot.dtype)
    if rows_kind != slot_kind:
      raise ValueError(
        f'batch.{field} must have a {slot_kind} dtype like the buffer ({slot.dtype}), '
        f'got {jnp.result_type(rows)}'
      )
    sizes.add(rows_shape[0])
  if len(sizes) != 1:
    raise ValueError(
      f'all batch fields must have the same leading size B, got sizes {sorted(sizes)}'
    )
  return sizes.pop()


def _kind(dtype) -> str:
  if jnp.issubdtype(dtype, jnp.bool_):
    return 'bool'
  if jnp.issubdtype(dtype, jnp.integer):
    return 'integer'
  if jnp.issubdtype(dtype, jnp.complexfloating):
    return 'complex'
  return 'floating'
