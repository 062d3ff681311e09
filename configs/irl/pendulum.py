"""OPIRL (or a baseline, --config.algo) on Pendulum (JAX-native Pendulum-v1) from 1 expert trajectory.

  python scripts/train_irl.py --config configs/irl/pendulum.py --config.algo=opirl --workdir runs/irl/pendulum
  python scripts/train_irl.py --config configs/irl/pendulum.py:official --workdir runs/irl/pendulum_official

The demonstrations are the shipped SAC expert's (demos/Pendulum, 25 episodes of 200 steps; the first is
used). Pendulum never terminates, so absorbing states only add the indicator dimension. The whole run is
one jitted loop; `--config.num_seeds=N` vmaps N seeds.

`:official` keeps the official OPIRL code's settings (reference/irl.md §1.4), which this config's
defaults depart from where the study in docs/opirl_study.md chose other values.
"""

from irl import config_defaults as common


def get_config(arg=None):
  c = common.base_config()
  c.env = 'Pendulum'
  c.demos = 'demos/Pendulum'
  c.loop.num_env_steps = 100_000
  c.loop.replay_capacity = 100_000
  c.loop.eval_every = 5_000
  c.loop.eval_episodes = 20
  common.apply_preset(c, arg, 'Pendulum')
  return c


def sweep(add, arg=None):
  """OPIRL and every baseline, on- and off-policy, seeds 0-2 vmapped inside each run, with the results
  table's budgets (common.table_budget): its Pendulum rows."""
  del arg
  for algo in common.TABLE_ALGOS:
    add(algo=algo, num_seeds=3, **common.table_overrides('Pendulum', algo))
