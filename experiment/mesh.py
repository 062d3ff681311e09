"""Device meshes from config, and placing arrays on them (`jax.jit` + `NamedSharding`: what `pjit`
became).

  mesh = make_mesh(seed=-1, data=1)             # every device on the seed axis
  keys = shard_leading(keys, mesh)              # [S] per-seed keys split over `seed`
  jax.jit(jax.vmap(train))(keys)                # XLA partitions the vmapped program over the seeds

Axes: `seed` carries the vmapped seed axis of the trainers (state, keys, environment states, replay
buffers: everything per seed), `data` the rows of the training data; parameters and optimizer states
are per seed, so inside a seed they are replicated over `data`. A size of -1 takes all the devices the
other axes leave. Axis types are always passed explicitly (`AxisType.Auto`: the compiler propagates
the shardings of the inputs; recent `jax.make_mesh` defaults to Explicit, which rejects some of the
trainers' ops without `out_sharding` annotations).

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

from experiment.config import ConfigError

AXES = ('seed', 'data')


class MeshError(ConfigError):
  """A mesh request that the devices present cannot satisfy."""


def axis_sizes(seed: int = -1, data: int = 1, num_devices: int | None = None) -> tuple[int, int]:
  """(seed, data) sizes with a -1 inferred; MeshError names the field when they do not fit."""
  n = jax.device_count() if num_devices is None else num_devices
  sizes = {'seed': seed, 'data': data}
  for name, size in sizes.items():
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or (size < 1 and size != -1):
      raise MeshError(f'mesh.{name} must be a positive int or -1 (all remaining devices), got {size!r}')
  inferred = [name for name, size in sizes.items() if size == -1]
  if len(inferred) > 1:
    raise MeshError(f'at most one of mesh.seed / mesh.data may be -1, got {sizes}')
  known = math.prod(size for size in sizes.values() if size != -1)
  if inferred:
    if n % known:
      raise MeshError(f'{n} devices do not split into mesh.{AXES[1 - AXES.index(inferred[0])]}='
                      f'{known} groups')
    sizes[inferred[0]] = n // known
  if sizes['seed'] * sizes['data'] != n:
    raise MeshError(f'mesh.seed × mesh.data must equal the number of devices ({n}), got '
                    f'{sizes["seed"]} × {sizes["data"]}')
  return sizes['seed'], sizes['data']


def make_mesh(seed: int = -1, data: int = 1, devices=None) -> Mesh:
  """A ('seed', 'data') mesh over `devices` (default: all, every process's) with Auto axis types."""
  devices = jax.devices() if devices is None else list(devices)
  shape = axis_sizes(seed, data, len(devices))
  return jax.make_mesh(shape, AXES, axis_types=(AxisType.Auto,) * len(AXES), devices=devices)


def from_config(mesh_config) -> Mesh | None:
  """`config.mesh` (fields `enabled`, `seed`, `data`) to a mesh, or None when disabled."""
  if not mesh_config.enabled:
    return None
  return make_mesh(mesh_config.seed, mesh_config.data)


def check_seeds(num_seeds: int, mesh: Mesh | None) -> None:
  """The seed axis must divide the number of seeds (each device holds the same number of seeds)."""
  if mesh is not None and num_seeds % mesh.shape['seed']:
    raise MeshError(f'num_seeds ({num_seeds}) must be a multiple of mesh.seed '
                    f'({mesh.shape["seed"]}, the devices on the seed axis)')


def seed_sharding(mesh: Mesh) -> NamedSharding:
  """Leading axis over `seed`, the rest replicated."""
  return NamedSharding(mesh, P('seed'))


def data_sharding(mesh: Mesh) -> NamedSharding:
  """Leading axis (rows) over `data`, the rest replicated."""
  return NamedSharding(mesh, P('data'))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def _put(x, sharding: NamedSharding):
  if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
    # Typed keys: place their raw data, then re-wrap (the sharding applies to the key axes).
    return jax.random.wrap_key_data(_put(jax.random.key_data(x), sharding),
                                    impl=jax.random.key_impl(x))
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


def seed_split_abstract(abstract: Any, mesh: Mesh) -> Any:
  """Restore targets (ShapeDtypeStructs) split over `seed` along their first axis; scalars replicated."""
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=seed_sharding(mesh) if x.ndim
                                     else replicated(mesh)), abstract)


def describe(mesh: Mesh | None) -> dict:
  """A JSON-able summary for logs and results."""
  if mesh is None:
    return {'enabled': False, 'devices': 1}
  return {'enabled': True, 'seed': mesh.shape['seed'], 'data': mesh.shape['data'],
          'devices': mesh.size, 'platform': mesh.devices.flat[0].platform,
          'processes': jax.process_count()}
