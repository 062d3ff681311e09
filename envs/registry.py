"""Environments by name: `make(name, **kwargs)`.

  JAX-native (`JAX_ENVS`)   'PointMaze-Left', 'PointMaze-Right', the continual stream's
                            'PointMaze-Goals-0' … 'PointMaze-Goals-5' (`envs.pointmaze`), 'Pendulum'
                            (`envs.pendulum`): pure `reset`/`step`, run inside `jit`/`scan`/`vmap`.
  Gymnasium (`GYM_ENVS`)    the MuJoCo tasks, via `envs.gym_adapter.make_gym(name, **kwargs)`:
                            host-side NumPy batches, stepped from a Python loop.
  Brax ('brax:<name>')      `envs.brax_adapter.make_brax(<name>, **kwargs)`, e.g. 'brax:ant'.

The adapters are imported only when one of their names is asked for, so the JAX-native environments need
neither Gymnasium nor Brax installed.
"""

from __future__ import annotations

import inspect
from typing import Any

from envs.core import EnvError
from envs.pendulum import Pendulum
from envs.pointmaze import GOAL_TASKS, GOALS_PREFIX, PointMaze

BRAX_PREFIX = 'brax:'
GOAL_ENVS = tuple(f'{GOALS_PREFIX}{k}' for k in range(len(GOAL_TASKS)))
JAX_ENVS = ('PointMaze-Left', 'PointMaze-Right', 'Pendulum', *GOAL_ENVS)
GYM_ENVS = (
  'Hopper-v5',
  'HalfCheetah-v5',
  'Walker2d-v5',
  'Ant-v5',
  'CustomAnt',
  'AmputatedAnt',
  'BigAnt',
)

_JAX_FACTORIES = {
  'PointMaze-Left': (PointMaze, {'variant': 'left'}),
  'PointMaze-Right': (PointMaze, {'variant': 'right'}),
  'Pendulum': (Pendulum, {}),
  **{
    name: (PointMaze, {'variant': variant, 'target_xs': target_xs, 'name': name})
    for name, (variant, target_xs) in zip(GOAL_ENVS, GOAL_TASKS)
  },
}


def is_jax_env(name: str) -> bool:
  """Whether `make(name)` returns a JAX-native environment (pure `reset`/`step` that can run inside
  `jit` and `lax.scan`): the names in `JAX_ENVS` and every 'brax:' name. Gymnasium names are host-side."""
  return name in JAX_ENVS or (isinstance(name, str) and name.startswith(BRAX_PREFIX))


def make(name: str, **kwargs: Any):
  """The environment called `name`, built with `kwargs`.

  JAX-native environments take their constructor's keywords except the fixed ones (`variant`, …)
  (e.g. `max_episode_steps`); Gymnasium and Brax names pass `kwargs` through to their adapter.
  Raises EnvError for an unknown name or an unknown keyword of a JAX-native environment.
  """
  if name in _JAX_FACTORIES:
    factory, fixed = _JAX_FACTORIES[name]
    allowed = tuple(p for p in inspect.signature(factory).parameters if p not in fixed)
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
      raise EnvError(f'{name}: unknown keyword(s) {unknown}; allowed keywords are {allowed}')
    return factory(**fixed, **kwargs)
  if name in GYM_ENVS:
    from envs import gym_adapter  # deferred: Gymnasium and MuJoCo only when asked for

    return gym_adapter.make_gym(name, **kwargs)
  if isinstance(name, str) and name.startswith(BRAX_PREFIX) and len(name) > len(BRAX_PREFIX):
    from envs import brax_adapter  # deferred: Brax (optional, slow to import) only when asked for

    return brax_adapter.make_brax(name[len(BRAX_PREFIX) :], **kwargs)
  raise EnvError(
    f'name must be one of {JAX_ENVS + GYM_ENVS} or "{BRAX_PREFIX}<brax env name>" '
    f'(e.g. "brax:ant"), got {name!r}'
  )
