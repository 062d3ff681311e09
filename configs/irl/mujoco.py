"""OPIRL (or a baseline, --config.algo) on a Gymnasium MuJoCo task from 1 expert trajectory. The config
argument names the environment:

  python scripts/train_irl.py --config configs/irl/mujoco.py:Hopper-v5 --config.algo=opirl \
      --workdir runs/irl/hopper_opirl --config.seed=2

Environments with shipped demonstrations (demos/<env>): Hopper-v5, HalfCheetah-v5, CustomAnt (the
source of the Ant reward transfers). Settings follow the official scripts (reference/irl.md §1.4, §2.1):
expert-statistics normalisation on (off for CustomAnt), the Q-filtered BC regulariser on, discriminator
learning rate 1e-5 (HalfCheetah 3e-4), budget 1e6 steps with an evaluation of 20 episodes every 1e4.
The MuJoCo environments run on the host, so seeds are separate processes (--config.seed).
"""

from irl import config_defaults as common

# env -> overrides of the common defaults (official per-task script flags).
ENVS = {
  'Hopper-v5': {},
  'HalfCheetah-v5': {'discriminator.learning_rate': 3e-4},
  'CustomAnt': {'normalize_states': False},
}


def get_config(arg=None):
  env = arg or 'Hopper-v5'
  if env not in ENVS:
    raise ValueError(
      f'configs/irl/mujoco.py: the config argument must be one of {sorted(ENVS)}, got {env!r}'
    )
  c = common.base_config()
  c.env = env
  c.demos = f'demos/{env}'
  c.loop.replay_capacity = 1_000_000
  for path, value in ENVS[env].items():
    group, _, name = path.rpartition('.')
    (c[group] if group else c)[name] = value
  return c


def sweep(add, arg=None):
  """OPIRL and every baseline on this environment, seeds 0-2 as separate tasks (MuJoCo runs on the
  host, one seed per process), with the results table's budget (`--set loop.num_env_steps=...` for
  longer runs)."""
  for algo in common.OFFPOLICY_TABLE_ALGOS:
    for seed in range(3):
      add(algo=algo, seed=seed, **common.table_overrides(arg or 'Hopper-v5', algo))
