"""OPIRL (or a baseline, --config.algo) on PointMaze-Left from 1 expert trajectory.

  python scripts/train_irl.py --config configs/irl/pointmaze.py --config.algo=opirl --workdir runs/irl/pm
  python scripts/train_irl.py --config configs/irl/pointmaze.py:official --workdir runs/irl/pm_official

`:official` keeps the official OPIRL code's settings; the defaults depart from them where the study in
docs/opirl_study.md chose other values (configs/irl/common.STUDY_DEFAULTS). `:quick` is a smoke test.

The defaults (configs/irl/common.STUDY_DEFAULTS, chosen on seeds 100-102): SAC as OPIRL's policy
learner with 64-64 networks, a goal-relative reward (discriminator.goal_relative = (0, 3, 3): r and h
see the particle's position minus the target's, so a reward learned from the one demonstrated target
applies to every target; irl/discriminator.py), and a 64-64 shaping network h (official 256-256:
about as good a learner here, at 2.7x the speed; study round 5). They apply to every adversarial
algorithm here.

Official PointMaze settings (reference/irl.md §1.4, run_point_maze_left.sh): discriminator learning rate
3e-3, replay capacity 3e5, policy reward clipped to <= 0. Departure: no state normalisation. With one
trajectory the target's coordinates are constant in the demonstration, so the expert-statistics scale
would multiply the target of every other episode by 1 / 1e-3.
"""

from irl import config_defaults as common


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
  common.apply_preset(c, arg, 'PointMaze-Left')
  return c


def sweep(add, arg=None):
  """OPIRL and every baseline, on- and off-policy, three seeds each (vmapped inside each run), with
  the results table's budgets (common.table_budget): its PointMaze rows."""
  del arg
  for algo in common.TABLE_ALGOS:
    add(algo=algo, num_seeds=3, **common.table_overrides('PointMaze-Left', algo))
