"""Learned rewards on disk: `save_reward` writes a `reward.json` record and an orbax checkpoint of the
discriminator's parameters; `load_reward` reads them back as a function of raw environment
observations (scripts/transfer_reward.py), and `frozen_reward_agent` trains a policy on it."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable, NamedTuple

import flax.struct
import jax
import numpy as np

from cljax import distributed
from cljax.checkpoint import Checkpointer
from cljax.config import ConfigError
from envs.core import EnvSpec
from irl import imitation, loops, replay
from irl.discriminator import DiscriminatorConfig, make_discriminator

REWARD_FORMAT_VERSION = 1


class LoadedReward(NamedTuple):
  record: dict  # reward.json
  discriminator: Any  # irl.discriminator.Discriminator
  params: Any  # its DiscriminatorParams
  prep: imitation.ObsTransform  # the observation preprocessing it was trained with

  def reward_fn(self) -> Callable:
    """(obs, action, next_obs) -> reward on *preprocessed* rows (replay-buffer rows)."""
    return self.discriminator.reward_fn(self.params)


def save_reward(
  directory: str, parts: imitation.Parts, discriminator_state, *, algo: str, env: str
) -> None:
  """The learned reward for transfer: `reward.json` + an orbax checkpoint of its parameters. With
  several processes all of them call this (orbax writes collectively); process 0 writes the JSON."""
  os.makedirs(directory, exist_ok=True)
  with Checkpointer(os.path.join(directory, 'params')) as ckpt:
    if 0 in ckpt.all_steps():  # a rerun (killed after saving it, before its results): replace it
      ckpt.delete(0)
    ckpt.save(0, discriminator_state.params, {'env': env})
  if not distributed.is_primary():
    return
  prep = parts.prep
  record = {
    'format_version': REWARD_FORMAT_VERSION,
    'algo': algo,
    'env': env,
    'discriminator_config': dataclasses.asdict(parts.discriminator.config),
    'obs_dim': parts.discriminator.obs_dim,
    'act_dim': parts.discriminator.act_dim,
    'normalize_mean': np.asarray(prep.mean).tolist(),
    'normalize_std': np.asarray(prep.std).tolist(),
    'absorbing': prep.absorbing,
    'num_absorbing': prep.num_absorbing,
  }
  with open(os.path.join(directory, 'reward.json'), 'w', encoding='utf-8') as f:
    json.dump(record, f, indent=1)


def load_reward(directory: str, env_spec: EnvSpec | None = None) -> LoadedReward:
  """Reads a `save_reward` directory; with `env_spec`, checks that the reward fits that environment's
  observation and action sizes. Raises ConfigError on a missing or mismatched reward."""
  path = os.path.join(directory, 'reward.json')
  if not os.path.exists(path):
    raise ConfigError(
      f'{directory!r} holds no learned reward (no reward.json; scripts/train_irl.py '
      'writes them under <workdir>/reward/seed<i>/ for opirl, airl and dac)'
    )
  with open(path, encoding='utf-8') as f:
    record = json.load(f)
  if record.get('format_version') != REWARD_FORMAT_VERSION:
    raise ConfigError(
      f'{path}: format_version {record.get("format_version")!r}, this code reads '
      f'{REWARD_FORMAT_VERSION}'
    )
  fields = {
    k: (tuple(v) if isinstance(v, list) else v) for k, v in record['discriminator_config'].items()
  }
  disc = make_discriminator(record['obs_dim'], record['act_dim'], DiscriminatorConfig(**fields))
  prep = imitation.ObsTransform(
    np.asarray(record['normalize_mean'], np.float32),
    np.asarray(record['normalize_std'], np.float32),
    bool(record['absorbing']),
    int(record.get('num_absorbing', 10)),
  )
  if env_spec is not None:
    spec = prep.spec(env_spec)
    sizes = (spec.observation.shape[0], spec.action.shape[0])
    if sizes != (record['obs_dim'], record['act_dim']):
      raise ConfigError(
        f'{path}: the reward was learned on {record["env"]} with (obs, action) sizes '
        f'{(record["obs_dim"], record["act_dim"])}, the target environment '
        f'{env_spec.name} has {sizes}'
      )
  # Explicit target shardings (this process's first device): the reward may have been saved from
  # other devices (a GPU, a multi-process mesh), which orbax refuses to guess across.
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  abstract = jax.tree.map(
    lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
    jax.eval_shape(disc.init, jax.random.key(0)).params,
  )
  with Checkpointer(os.path.join(directory, 'params')) as ckpt:
    params, _ = ckpt.restore(0, abstract)
  return LoadedReward(record, disc, params, prep)


@flax.struct.dataclass
class FrozenRewardState:
  """A policy learner's state next to the frozen reward's parameters: the reward travels in the
  carry (vmapped, sharded and checkpointed like the rest) rather than as constants compiled into the
  loop, so every topology runs the same program on the same arguments."""

  policy: Any
  reward_params: Any


def frozen_reward_agent(policy, loaded: LoadedReward) -> loops.Agent:
  """A policy learner (SAC) trained on a frozen learned reward: the replay buffer holds rows
  preprocessed as the reward's were (pass `loaded.prep.transitions` as the loops' `transform_fn`),
  and acting preprocesses the raw observations the loops pass. Its state is a `FrozenRewardState`;
  `loaded.params` may be device or host arrays."""
  prep, disc = loaded.prep, loaded.discriminator
  reward_params = jax.tree.map(np.asarray, jax.device_get(loaded.params))

  def init(key):
    return FrozenRewardState(
      policy=policy.init(key), reward_params=jax.tree.map(jax.numpy.asarray, reward_params)
    )

  def update(state, replay_buffer, key, expert_buffer=None):
    del expert_buffer
    sample_key, update_key = jax.random.split(key)
    batch = replay.sample(replay_buffer, sample_key, policy.config.batch_size)
    policy_state, metrics = policy.update(
      state.policy, batch, update_key, disc.reward_fn(state.reward_params)
    )
    return state.replace(policy=policy_state), metrics

  def act(state, obs, key, deterministic):
    return policy.act(state.policy, prep.obs(obs), key, deterministic)

  return loops.Agent(init=init, act=act, update=update)
