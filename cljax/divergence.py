"""The divergence guard: a run whose losses or parameters stop being finite stops, in one line.

Checked once per continual-learning epoch and once per RL evaluation period, from values the loop
already brings to the host (the epoch's mean losses, the period's metrics) and one flag per seed
(`all_finite`: inside the jitted CL epoch; one small jitted reduction per RL period), so no training
step pays an extra device-to-host sync. The
check runs before the checkpoint of that epoch's task or that period, so the newest checkpoint on
disk is the last good one. Scripts exit with `EXIT_STATUS` (console.run).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

EXIT_STATUS = 3


class DivergenceError(RuntimeError):
  """The run's losses or parameters went non-finite; the message says where and which."""


def all_finite(tree) -> jax.Array:
  """True when every float leaf of `tree` is finite (a jnp bool scalar; vmap it for seeds)."""
  leaves = [
    x
    for x in jax.tree.leaves(tree)
    if hasattr(x, 'dtype') and jnp.issubdtype(x.dtype, jnp.floating)
  ]
  return (
    jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])) if leaves else jnp.bool_(True)
  )


def check(where: str, metrics: dict, params_finite, seeds, skip=(), nan_is_missing: bool = False):
  """Raises DivergenceError naming `where`, the seeds and the non-finite metrics when a seed's
  parameters are non-finite (`params_finite`: [S] bools) or, unless `nan_is_missing` (RL metrics,
  where NaN marks "not computed this period"), a metric is non-finite. `metrics`: name -> [S]
  host values; names in `skip` are not loss terms."""
  params_finite = np.asarray(params_finite, bool).reshape(-1)
  bad_terms, bad_seeds = [], set(np.asarray(seeds)[~params_finite].tolist())
  for name, value in metrics.items():
    if name in skip:
      continue
    value = np.asarray(value, np.float64).reshape(-1)
    if not np.all(np.isfinite(value)):
      bad_terms.append(name)
      if not nan_is_missing or np.any(np.isinf(value)):
        bad_seeds.update(np.asarray(seeds)[~np.isfinite(value)].tolist())
  if not bad_seeds:
    return
  what = (['parameters'] if not params_finite.all() else []) + (
    [f'loss terms {", ".join(sorted(bad_terms))}'] if bad_terms else []
  )
  raise DivergenceError(
    f'the run diverged at {where}: non-finite {" and ".join(what)} '
    f'(seed{"s" * (len(bad_seeds) > 1)} {", ".join(map(str, sorted(bad_seeds)))}); '
    f'the newest checkpoint is the last good one: lower the learning rate and rerun in a new workdir'
  )
