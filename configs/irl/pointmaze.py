"""OPIRL (or a baseline, --config.algo) on PointMaze-Left from 1 expert trajectory.

  python scripts/train_irl.py --config configs/irl/pointmaze.py --config.algo=opirl --workdir runs/irl/pm

Official PointMaze settings (reference/irl.md §1.4, run_point_maze_left.sh): discriminator learning rate
3e-3, replay capacity 3e5, policy reward clipped to <= 0. Departure: no state normalisation. With one
trajectory the target's coordinates are constant in the demonstration, so the expert-statistics scale
would multiply the target of every other episode by 1 / 1e-3.
"""

from configs.irl import common


def get_config(arg=None):
  c = common.base_config()
  c.env = 'PointMaze-Left'
  c.demos = 'demos/PointMaze-Left'
  c.normalize_states = False
  c.discriminator.learning_rate = 3e-3
  c.discriminator.reward_clip_max = 0.0
  c.loop.num_env_steps = 100_000
  c.loop.replay_capacity = 300_000
  c.loop.eval_every = 5_000
  if arg == 'quick':
    c.loop.num_env_steps, c.loop.eval_every, c.loop.eval_episodes = 2_000, 1_000, 4
    c.loop.start_steps, c.loop.update_after, c.loop.replay_capacity = 500, 300, 5_000
    for name in ('algaedice', 'sac', 'valuedice', 'bc'):
      c[name].hidden_sizes = (32, 32)
      c[name].batch_size = 64
    c.irl.batch_size = 64
  return c


def sweep(add, arg=None):
  """OPIRL and every baseline, three seeds each (vmapped inside each run), with the README table's
  budget (`--set loop.num_env_steps=...` for longer runs): its PointMaze rows."""
  del arg
  for algo in ('opirl', 'airl', 'dac', 'valuedice', 'bc'):
    add(algo=algo, num_seeds=3, **common.table_overrides('PointMaze-Left'))
