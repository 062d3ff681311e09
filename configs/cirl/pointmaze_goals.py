"""Continual inverse RL on the PointMaze-Goals stream (scripts/train_continual_irl.py, issue 17).

  python scripts/train_continual_irl.py --config configs/cirl/pointmaze_goals.py \
      --config.method=kpriors --workdir runs/cirl/kpriors
  python scripts/train_continual_irl.py --config configs/cirl/pointmaze_goals.py:quick \
      --config.method=finetune --workdir /tmp/cirl_smoke

Six tasks (envs/pointmaze.py, GOAL_TASKS): a third of the goals each, the barrier's gap alternating
sides. OPIRL per task with PointMaze-Left's shipped settings (configs/irl/pointmaze.py, one
demonstration), except the absorbing indicator (PointMaze never terminates). `method` is one of
irl.continual_train.METHODS; its section (`ewc`, `replay`, `kpriors`, `fromp`, ...) is the
continual-learning configs' (cl/config_defaults.py). `:quick` runs the whole pipeline in minutes; `:official` drops the OPIRL study's defaults.
"""

import ml_collections

from cl import config_defaults as cl_common
from irl import config_defaults as common

METHOD_SECTIONS = ('ewc', 'replay', 'fromp', 'kpriors', 'ewc_fr_replay', 'si', 'vcl', 'ivon')


def get_config(arg=None):
  c = common.base_config()
  c.env = 'PointMaze-Goals-0'  # each task's env and demos are set by the stream
  c.demos = 'demos/PointMaze-Goals-0'
  c.normalize_states = False
  c.absorbing = False
  c.discriminator.learning_rate = 3e-3
  c.discriminator.reward_clip_max = 0.0
  # Per task. Chosen on the validation seed 100 (docs/continual-irl.md): at 1.5·10⁴ steps every
  # task's discriminator separates its held-out expert from random transitions (AUC ≥ 0.98).
  c.loop.num_env_steps = 15_000
  c.loop.replay_capacity = 100_000
  c.loop.eval_every = 5_000
  c.num_seeds = 3
  common.apply_preset(c, arg, 'PointMaze-Left')  # the study's defaults; 'quick': tiny networks

  c.stream = 'PointMaze-Goals'
  c.num_tasks = 0  # the first this many tasks of the stream; 0: all
  c.demos_dir = 'demos'  # <demos_dir>/<task env name>.{npz,json}
  c.method = 'finetune'  # irl.continual_train.METHODS
  cl = cl_common.base_config()
  for name in METHOD_SECTIONS:
    c[name] = cl[name]
  c.consolidation = ml_collections.ConfigDict(
    dict(num_negatives=1000)
  )  # replay rows labelled 0 in each task's data
  # Reward measures (irl/continual.py): EPIC's coverage per task (its held-out demonstrations, random
  # episodes, uniform states) and samples, its discount; fixed keys from `seed`, the same for every
  # method and seed.
  c.evaluation = ml_collections.ConfigDict(
    dict(num_random_episodes=10, num_uniform=1000, num_samples=256, discount=0.99, seed=12_345)
  )
  # The policy check: SAC from scratch on each task's reward right after it was learned and on the
  # final one, this many steps each (irl.continual_train.policy_check).
  c.policy_check = ml_collections.ConfigDict(dict(enabled=True, num_env_steps=20_000))
  if arg == 'quick':
    c.policy_check.num_env_steps = 1_000
    c.loop.num_env_steps, c.loop.eval_every = 1_000, 500
    c.num_seeds, c.num_tasks = 2, 3
    c.consolidation.num_negatives = 64
    c.evaluation.num_random_episodes, c.evaluation.num_uniform = 2, 100
    c.evaluation.num_samples = 32
    for name in ('fromp', 'kpriors', 'ewc_fr_replay'):
      c[name].memory_per_task = 10
    c.ewc.fisher_num_examples = 64
    c.replay.memory_size = 60
  return c


def sweep(add, arg=None):
  """Every method on the stream, three seeds each (vmapped inside each run)."""
  del arg
  for method in ('finetune', 'joint', 'ewc', 'replay', 'kpriors', 'fromp'):
    add(method=method)
