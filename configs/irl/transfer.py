"""Reward transfer (scripts/transfer_reward.py): SAC from scratch on a frozen learned reward, or on the
true reward, in an environment whose dynamics differ from the one the reward was learned in. The config
argument names the target environment:

  python scripts/transfer_reward.py --config configs/irl/transfer.py:PointMaze-Right \
      --config.reward=runs/irl/pm_opirl/reward/seed0 --workdir runs/transfer/pm_right_opirl
  python scripts/transfer_reward.py --config configs/irl/transfer.py:AmputatedAnt \
      --config.reward=true --workdir runs/transfer/amputated_true

Targets and the environment their reward must come from (reference/irl.md §2.1): PointMaze-Right
(wall shifted) <- PointMaze-Left; AmputatedAnt (one leg disabled) and BigAnt (gear 150) <- CustomAnt.
The SAC learner is the transfer SAC of the official scripts (initial temperature 0.2, learned).
"""

import ml_collections

from irl import config_defaults as common
from irl import hparams  # the algorithms' dataclasses, without jax: a config file is data

# target -> (source env, num_env_steps, eval_every)
TARGETS = {
  'PointMaze-Right': ('PointMaze-Left', 100_000, 5_000),
  'AmputatedAnt': ('CustomAnt', 1_000_000, 10_000),
  'BigAnt': ('CustomAnt', 1_000_000, 10_000),
}


def get_config(arg=None):
  target = arg or 'PointMaze-Right'
  if target not in TARGETS:
    raise ValueError(
      f'configs/irl/transfer.py: the config argument must be one of {sorted(TARGETS)}, '
      f'got {target!r}'
    )
  source, num_env_steps, eval_every = TARGETS[target]
  c = ml_collections.ConfigDict()
  c.env = target
  c.source_env = source  # the reward must have been learned here (checked against reward.json)
  c.reward = 'true'  # 'true', or a reward directory written by train_irl.py (reward/seed<i>)
  c.seed = 0
  c.num_seeds = 1  # JAX-native targets: seeds vmapped in one run
  c.seed_batching = 'vmap'  # vmap (fast) | map: seed i bit-identical alone or in any group
  c.mesh = common.mesh_config()
  # Checkpoints: one per evaluation period (the whole carry: SAC agent, replay buffer, environment
  # states); the newest `keep_checkpoints` stay on disk (0: every one). Their size follows the replay
  # buffer; measured: 8 MB per checkpoint of the 3-seed PointMaze-Left OPIRL table run (16 MB kept).
  c.keep_checkpoints = 2
  c.sac = common.from_dataclass(hparams.SACConfig)
  c.sac.init_temperature = 0.2
  c.loop = ml_collections.ConfigDict(
    dict(
      num_env_steps=num_env_steps,
      num_envs=1,
      start_steps=2_000,
      update_after=1_000,
      updates_per_step=1,
      replay_capacity=1_000_000,
      eval_every=eval_every,
      eval_episodes=20,
    )
  )
  return c
