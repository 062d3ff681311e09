"""Experts: scripted controllers where one is exact, SAC actors saved to disk, and deterministic rollouts
into the demonstration format of `irl.demos`.

An expert directory (written by `save_sac_expert`, read by `load_policy`) holds
  expert.json   {"format_version", "kind": "sac", "env", "obs_dim", "act_dim", "sac_config": {...},
                 "return_mean", "return_std", "num_eval_episodes", "env_steps", "seed", "created", ...}
  actor/        an orbax checkpoint (step 0) of the SAC actor's parameters.
Scripted experts need no parameters: `load_policy('scripted', spec)`, or a directory whose expert.json
has "kind": "scripted" (what scripts/train_expert.py exports for them).
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from cljax import distributed
from cljax.checkpoint import Checkpointer
from envs import pendulum, pointmaze
from envs.core import EnvError, EnvSpec
from irl.sac import agent as sac_agent

FORMAT_VERSION = 1
SCRIPTED = {
  'PointMaze-Left': lambda obs: pointmaze.scripted_expert(obs, 'left'),
  'PointMaze-Right': lambda obs: pointmaze.scripted_expert(obs, 'right'),
  'Pendulum': pendulum.scripted_expert,
  **{  # the continual stream's tasks: each through its own gap (envs.pointmaze.GOAL_TASKS)
    f'{pointmaze.GOALS_PREFIX}{k}': functools.partial(pointmaze.scripted_expert, variant=variant)
    for k, (variant, _) in enumerate(pointmaze.GOAL_TASKS)
  },
}

Policy = Callable[[jax.Array], jax.Array]  # deterministic: obs [n, d] -> actions [n, |A|]


def save_sac_expert(
  directory: str, spec: EnvSpec, sac_config, actor_params: Any, meta: dict
) -> None:
  """Writes `directory/expert.json` and `directory/actor/` (see the module docstring). With several
  processes all of them call this (orbax writes collectively); process 0 writes the JSON."""
  os.makedirs(directory, exist_ok=True)
  with Checkpointer(os.path.join(directory, 'actor')) as ckpt:
    ckpt.save(0, actor_params, {'env': spec.name})
  if not distributed.is_primary():
    return
  record = {
    'format_version': FORMAT_VERSION,
    'kind': 'sac',
    'env': spec.name,
    'obs_dim': int(spec.observation.shape[0]),
    'act_dim': int(spec.action.shape[0]),
    'sac_config': dataclasses.asdict(sac_config),
    'created': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
    **meta,
  }
  with open(os.path.join(directory, 'expert.json'), 'w', encoding='utf-8') as f:
    json.dump(record, f, indent=1)


def load_policy(source: str, spec: EnvSpec) -> tuple[Policy, dict]:
  """The deterministic policy of an expert for the environment `spec`: `source` is 'scripted' or an
  expert directory. Returns `(policy, description)`; raises EnvError if the expert was made for
  another environment or shapes disagree."""
  if source == 'scripted':
    if spec.name not in SCRIPTED:
      raise EnvError(
        f'no scripted expert for {spec.name}; scripted experts exist for '
        f'{sorted(SCRIPTED)} (use an expert directory from scripts/train_expert.py)'
      )
    return SCRIPTED[spec.name], {'kind': 'scripted', 'env': spec.name}
  path = os.path.join(source, 'expert.json')
  if not os.path.exists(path):
    raise EnvError(f'expert {source!r} is neither "scripted" nor a directory with expert.json')
  with open(path, encoding='utf-8') as f:
    record = json.load(f)
  if record.get('format_version') != FORMAT_VERSION or record.get('kind') not in (
    'sac',
    'scripted',
  ):
    raise EnvError(
      f'{path}: unsupported expert (format_version {record.get("format_version")!r}, '
      f'kind {record.get("kind")!r}); expected format {FORMAT_VERSION}, kind "sac" or '
      '"scripted"'
    )
  if record['env'] != spec.name:
    raise EnvError(f'{path} is an expert for {record["env"]!r}, not {spec.name!r}')
  if record['kind'] == 'scripted':
    return load_policy('scripted', spec)[0], record
  if (record['obs_dim'], record['act_dim']) != (spec.observation.shape[0], spec.action.shape[0]):
    raise EnvError(
      f'{path}: expert obs/act dims {(record["obs_dim"], record["act_dim"])} differ from '
      f"the environment's {(spec.observation.shape[0], spec.action.shape[0])}"
    )
  fields = dict(record['sac_config'])
  fields['hidden_sizes'] = tuple(fields['hidden_sizes'])
  sac = sac_agent.make_sac(spec, sac_agent.SACConfig(**fields))
  abstract = jax.eval_shape(sac.init, jax.random.key(0)).actor_params
  with Checkpointer(os.path.join(source, 'actor')) as ckpt:
    actor_params, _ = ckpt.restore(0, abstract)
  policy = lambda obs: sac.act(actor_params, obs, jax.random.key(0), True)
  return policy, record


def rollout_jax(env, policy: Policy, key: jax.Array, num_episodes: int) -> dict[str, np.ndarray]:
  """`num_episodes` deterministic episodes of a JAX-native env, as the arrays of `irl.demos`
  (episodes back to back; rows after an episode's end are dropped)."""
  steps = env.spec.max_episode_steps

  @jax.jit
  def run(key):
    state, obs = jax.vmap(env.reset)(jax.random.split(key, num_episodes))

    def body(carry, _):
      state, obs, alive = carry
      action = policy(obs)
      state, next_obs, reward, terminated, truncated, _ = jax.vmap(env.step)(state, action)
      row = (obs, action, next_obs, reward, terminated, truncated, alive)
      return (state, next_obs, alive & ~(terminated | truncated)), row

    _, rows = jax.lax.scan(body, (state, obs, jnp.ones(num_episodes, bool)), None, length=steps)
    return rows

  obs, action, next_obs, reward, terminated, truncated, alive = (
    np.swapaxes(np.asarray(x), 0, 1) for x in run(key)
  )  # [episodes, steps, ...]
  truncated = truncated | (~terminated & (np.arange(steps) == steps - 1))
  keep = alive.reshape(-1)
  episode = np.repeat(np.arange(num_episodes, dtype=np.int32), steps)
  flat = lambda x: x.reshape((num_episodes * steps,) + x.shape[2:])[keep]
  return dict(
    obs=flat(obs),
    action=flat(action),
    next_obs=flat(next_obs),
    reward=flat(reward),
    terminated=flat(terminated),
    truncated=flat(truncated),
    episode=episode[keep],
  )


def rollout_host(env, policy: Policy, seed: int, num_episodes: int) -> dict[str, np.ndarray]:
  """`num_episodes` deterministic episodes of a host env with `num_envs == 1` (`envs.gym_adapter`),
  seeded `seed` once and then continuing its random stream, as the arrays of `irl.demos`."""
  if getattr(env, 'num_envs', 1) != 1:
    raise ValueError(f'rollout_host needs num_envs == 1, got {env.num_envs}')
  act = jax.jit(policy)
  rows: dict[str, list] = {
    k: [] for k in ('obs', 'action', 'next_obs', 'reward', 'terminated', 'truncated', 'episode')
  }
  obs = env.reset(seed=seed)
  for episode in range(num_episodes):
    while True:
      action = np.asarray(act(jnp.asarray(obs, jnp.float32)), np.float32)
      out = env.step(action)
      for k, v in (
        ('obs', obs[0]),
        ('action', action[0]),
        ('next_obs', out.next_obs[0]),
        ('reward', out.reward[0]),
        ('terminated', out.terminated[0]),
        ('truncated', out.truncated[0]),
        ('episode', episode),
      ):
        rows[k].append(v)
      obs = out.obs
      if out.terminated[0] or out.truncated[0]:
        break
  dtypes = dict(
    obs=np.float32,
    action=np.float32,
    next_obs=np.float32,
    reward=np.float32,
    terminated=bool,
    truncated=bool,
    episode=np.int32,
  )
  return {k: np.asarray(v, dtypes[k]) for k, v in rows.items()}
