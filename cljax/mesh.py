"""Device meshes from config, and placing arrays on them (`jax.jit` + `NamedSharding`: what `pjit`
became).

  mesh = make_mesh(seed=-1, data=1)             # every device on the seed axis
  keys = shard_leading(keys, mesh)              # [S] per-seed keys split over `seed`
  jax.jit(jax.vmap(train))(keys)                # XLA partitions the vmapped program over the seeds

Axes: `seed` carries the vmapped seed axis of the trainers (state, keys, environment states, replay
buffers: everything per seed), `data` the rows of the training data, `model` the parameters and
optimizer state of one seed. With `model` of size 1 (the default) a seed's parameters are whole on
each of its devices (replicated over `data`); with a larger `model` axis, for a model too large for one
device, each parameter-sized leaf of at least `min_size` elements is split along its largest dimension
that the axis divides (the compiler gathers a weight where it is used; each device of the axis keeps
only its slice of the new state, so the axis divides the state's memory, while `data` divides the
compute), and smaller leaves stay whole (`state_shardings`, `constrain_state`). A
size of -1 takes all the devices the other axes leave. Axis types are always passed explicitly
(`AxisType.Auto`: the compiler propagates the shardings of the inputs; recent `jax.make_mesh`
defaults to Explicit, which rejects some of the trainers' ops without `out_sharding` annotations).

With several processes (`jax.distributed`), `jax.devices()` lists every process's devices, so a mesh
spans the cluster; `shard_leading` builds global arrays from the host value every process holds.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from cljax.config import ConfigError

AXES = ('seed', 'data', 'model')
DEFAULT_MIN_SIZE = 2**14  # elements of one seed's leaf below which `model` leaves it whole


class MeshError(ConfigError):
  """A mesh request that the devices present cannot satisfy."""


def axis_sizes(
  seed: int = -1, data: int = 1, num_devices: int | None = None, *, model: int = 1
) -> tuple[int, int, int]:
  """(seed, data, model) sizes with a -1 inferred; MeshError names the field when they do not fit."""
  n = jax.device_count() if num_devices is None else num_devices
  sizes = {'seed': seed, 'data': data, 'model': model}
  for name, size in sizes.items():
    if (
      isinstance(size, bool) or not isinstance(size, (int, np.integer)) or (size < 1 and size != -1)
    ):
      raise MeshError(
        f'mesh.{name} must be a positive int or -1 (all remaining devices), got {size!r}'
      )
  inferred = [name for name, size in sizes.items() if size == -1]
  if len(inferred) > 1:
    raise MeshError(f'at most one of mesh.seed / mesh.data / mesh.model may be -1, got {sizes}')
  known = math.prod(size for size in sizes.values() if size != -1)
  if inferred:
    others = ' × '.join(f'mesh.{k}={v}' for k, v in sizes.items() if v != -1)
    if n % known:
      raise MeshError(f'{n} devices do not split into {others} groups')
    sizes[inferred[0]] = n // known
  if math.prod(sizes.values()) != n:
    raise MeshError(
      f'mesh.seed × mesh.data × mesh.model must equal the number of devices ({n}), got '
      f'{sizes["seed"]} × {sizes["data"]} × {sizes["model"]}'
    )
  return sizes['seed'], sizes['data'], sizes['model']


def make_mesh(seed: int = -1, data: int = 1, devices=None, *, model: int = 1) -> Mesh:
  """A ('seed', 'data', 'model') mesh over `devices` (default: all, every process's) with Auto axis
  types."""
  devices = jax.devices() if devices is None else list(devices)
  shape = axis_sizes(seed, data, len(devices), model=model)
  return jax.make_mesh(shape, AXES, axis_types=(AxisType.Auto,) * len(AXES), devices=devices)


def from_config(mesh_config) -> Mesh | None:
  """`config.mesh` (fields `enabled`, `seed`, `data`, `model`, `model_min_size`) to a mesh, or None
  when disabled."""
  if not mesh_config.enabled:
    return None
  min_size = min_size_from_config(mesh_config)
  if isinstance(min_size, bool) or not isinstance(min_size, (int, np.integer)) or min_size < 1:
    raise MeshError(f'mesh.model_min_size must be a positive int (elements), got {min_size!r}')
  return make_mesh(mesh_config.seed, mesh_config.data, model=mesh_config.get('model', 1))


def min_size_from_config(mesh_config) -> int:
  """`mesh.model_min_size` (configs written before it existed: the default)."""
  return mesh_config.get('model_min_size', DEFAULT_MIN_SIZE)


def check_seeds(num_seeds: int, mesh: Mesh | None) -> None:
  """The seed axis must divide the number of seeds (each device holds the same number of seeds)."""
  if mesh is not None and num_seeds % mesh.shape['seed']:
    raise MeshError(
      f'num_seeds ({num_seeds}) must be a multiple of mesh.seed '
      f'({mesh.shape["seed"]}, the devices on the seed axis)'
    )


def seed_sharding(mesh: Mesh) -> NamedSharding:
  """Leading axis over `seed`, the rest replicated."""
  return NamedSharding(mesh, P('seed'))


def data_sharding(mesh: Mesh) -> NamedSharding:
  """Leading axis (rows) over `data`, the rest replicated."""
  return NamedSharding(mesh, P('data'))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def _is_key(x) -> bool:
  return jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def model_spec(shape: tuple[int, ...], model_size: int, min_size: int = DEFAULT_MIN_SIZE) -> P:
  """The spec of one seed's leaf of `shape`: its largest dimension that `model_size` divides over
  `model` (the first of equals), if the leaf has at least `min_size` elements; otherwise whole."""
  if model_size == 1 or math.prod(shape) < min_size:
    return P()
  dims = [d for d in range(len(shape)) if shape[d] % model_size == 0]
  if not dims:
    return P()
  best = max(dims, key=lambda d: (shape[d], -d))
  return P(*([None] * best), 'model')


def state_shardings(one_seed: Any, mesh: Mesh, min_size: int = DEFAULT_MIN_SIZE) -> Any:
  """Shardings for the `[S, ...]` stack of a per-seed state (params, optimizer and method state),
  given one seed's (abstract) state: the seed axis over `seed`, the rest by `model_spec` (PRNG keys
  whole)."""

  def one(x):
    spec = P() if _is_key(x) else model_spec(tuple(x.shape), mesh.shape['model'], min_size)
    return NamedSharding(mesh, P('seed', *spec))

  return jax.tree.map(one, one_seed)


def shards_model(mesh: Mesh | None) -> bool:
  return mesh is not None and mesh.shape['model'] > 1


def constrain_state(tree: Any, mesh: Mesh, min_size: int = DEFAULT_MIN_SIZE) -> Any:
  """`with_sharding_constraint` on the leaves of one seed's state that `model_spec` splits (call it
  inside `jax.vmap(..., spmd_axis_name='seed')`): keeps them split through a loop, where the compiler
  would otherwise be free to gather them whole on every device."""

  def one(x):
    if _is_key(x):
      return x
    spec = model_spec(tuple(x.shape), mesh.shape['model'], min_size)
    return x if spec == P() else jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))

  return jax.tree.map(one, tree)


def _put(x, sharding: NamedSharding):
  if isinstance(x, jax.Array) and _is_key(x):
    # Typed keys: place their raw data, then re-wrap (the sharding applies to the key axes).
    return jax.random.wrap_key_data(
      _put(jax.random.key_data(x), sharding), impl=jax.random.key_impl(x)
    )
  if jax.process_count() == 1:
    return jax.device_put(x, sharding)
  value = np.asarray(x)  # every process holds the whole host value; each takes its devices' part
  return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])


def shard_leading(tree: Any, mesh: Mesh, axis: str = 'seed') -> Any:
  """Every leaf's leading axis split over mesh axis `axis` ('seed' or 'data')."""
  sharding = seed_sharding(mesh) if axis == 'seed' else data_sharding(mesh)
  return jax.tree.map(lambda x: _put(x, sharding), tree)


def replicate(tree: Any, mesh: Mesh) -> Any:
  """Every leaf whole on every device of the mesh."""
  return jax.tree.map(lambda x: _put(x, replicated(mesh)), tree)


def describe(mesh: Mesh | None) -> dict:
  """A JSON-able summary for logs and results."""
  if mesh is None:
    return {'enabled': False, 'devices': 1}
  return {
    'enabled': True,
    'seed': mesh.shape['seed'],
    'data': mesh.shape['data'],
    'model': mesh.shape['model'],
    'devices': mesh.size,
    'platform': mesh.devices.flat[0].platform,
    'processes': jax.process_count(),
  }


# ---------------------------------------------------------------------------------------------------
# How the seeds share the computation (`config.seed_batching`).
#
# 'vmap' batches the seeds into one computation: the fast one, but XLA then picks kernels for the
# batched shapes, whose sums round differently from one seed's, and training amplifies that, so seed i
# of an n-seed run equals seed i run alone only to rounding at first and statistically after many
# steps. 'map' runs each device's seeds one after another (`jax.lax.map`) through one seed's
# computation: seed i is then the same run bit for bit alone, at any position of any number of seeds,
# and on a mesh's `seed` axis (tests/test_seeds.py); it gives up the batching's speed-up.

SEED_BATCHING = ('vmap', 'map')


def check_seed_batching(seed_batching: str, mesh: Mesh | None, *, splits_data: bool = True) -> None:
  """ConfigError unless `seed_batching` is allowed with `mesh`: 'map' computes one seed on each device
  group, so it cannot split that seed over `model`, nor (`splits_data`: the trainer splits a batch
  over `data`, as the CL trainer does) over `data`."""
  if seed_batching not in SEED_BATCHING:
    raise ConfigError(
      f'config.seed_batching must be one of {list(SEED_BATCHING)}, got {seed_batching!r}'
    )
  if seed_batching == 'map' and mesh is not None:
    split = [
      axis for axis in (('data',) if splits_data else ()) + ('model',) if mesh.shape[axis] > 1
    ]
    if split:
      raise ConfigError(
        f"config.seed_batching='map' runs each device's seeds one after another, whole; "
        f"it cannot split a seed over the mesh's {' or '.join(split)} axis (set "
        f"config.mesh.{'=1, config.mesh.'.join(split)}=1, or seed_batching='vmap')"
      )


def over_seeds(fn, in_axes: tuple, seed_batching: str = 'vmap', mesh: Mesh | None = None):
  """One seed's `fn(*args)` as a function of seed-stacked arguments (`in_axes`: 0 for a [S]-leading
  argument, None for one shared by every seed); its outputs have the seed axis first. 'vmap':
  `jax.vmap` (on a mesh with `spmd_axis_name='seed'`); 'map': `jax.lax.map` over the seeds, on a mesh
  inside `jax.shard_map` over `seed`, each device mapping over its own seeds (pass every array as an
  argument: one closed over would be a global array inside the per-device function)."""
  if seed_batching == 'vmap':
    if mesh is None:
      return jax.vmap(fn, in_axes=in_axes)
    return jax.vmap(fn, in_axes=in_axes, spmd_axis_name='seed')

  def mapped(*args):
    def one(seeded):
      seeded = iter(seeded)
      return fn(*[next(seeded) if axis == 0 else a for a, axis in zip(args, in_axes)])

    return jax.lax.map(one, [a for a, axis in zip(args, in_axes) if axis == 0])

  if mesh is None:
    return mapped
  # check_vma=False: the trainers' conds mix per-seed and shared values, which is what they mean.
  return jax.shard_map(
    mapped,
    mesh=mesh,
    in_specs=tuple(P('seed') if axis == 0 else P() for axis in in_axes),
    out_specs=P('seed'),
    check_vma=False,
  )
