"""SAC experts (scripts/train_expert.py). The config argument names the environment:

  python scripts/train_expert.py --config configs/rl/sac.py:Hopper-v5 --workdir runs/expert/hopper

Environments (envs.registry): PointMaze-Left, PointMaze-Right, PointMaze-Goals-0 … 5, Pendulum (JAX-native: the whole run is
one jitted loop), Hopper-v5, HalfCheetah-v5, Walker2d-v5, Ant-v5, CustomAnt, AmputatedAnt, BigAnt
(Gymnasium MuJoCo: host loop). `expert='scripted'` evaluates and exports the exact scripted controller
(PointMaze, Pendulum) instead of training.
"""

import ml_collections

# Per-environment schedule: (num_env_steps, start_steps, eval_every, default expert). MuJoCo budgets
# are the usual SAC benchmark length; the shipped experts were trained with shorter budgets on CPU
# (docs/envs-and-rl.md, "Shipped experts"), set with --config.loop.num_env_steps.
ENVS = {
  'Pendulum': (20_000, 1_000, 2_000, 'sac'),
  'PointMaze-Left': (50_000, 2_000, 5_000, 'scripted'),
  'PointMaze-Right': (50_000, 2_000, 5_000, 'scripted'),
  **{f'PointMaze-Goals-{k}': (50_000, 2_000, 5_000, 'scripted') for k in range(6)},
  'Hopper-v5': (1_000_000, 10_000, 10_000, 'sac'),
  'HalfCheetah-v5': (1_000_000, 10_000, 10_000, 'sac'),
  'Walker2d-v5': (1_000_000, 10_000, 10_000, 'sac'),
  'Ant-v5': (1_000_000, 10_000, 10_000, 'sac'),
  'CustomAnt': (1_000_000, 10_000, 10_000, 'sac'),
  'AmputatedAnt': (1_000_000, 10_000, 10_000, 'sac'),
  'BigAnt': (1_000_000, 10_000, 10_000, 'sac'),
}


def get_config(arg=None):
  env = arg or 'Pendulum'
  num_env_steps, start_steps, eval_every, expert = ENVS.get(env, ENVS['Hopper-v5'])
  c = ml_collections.ConfigDict()
  c.env = env  # validated against envs.registry by the script
  c.expert = expert  # sac | scripted
  c.seed = 0
  c.sac = ml_collections.ConfigDict(
    dict(
      actor_lr=3e-4,
      critic_lr=3e-4,
      temperature_lr=3e-4,
      discount=0.99,
      tau=0.005,
      batch_size=256,
      init_temperature=1.0,
      learn_temperature=True,
      hidden_sizes=(256, 256),
    )
  )
  # Device mesh (cljax/mesh.py, JAX-native environments): one seed, so the devices go on
  # `model`, which splits the agent state's leaves of >= model_min_size elements.
  c.mesh = ml_collections.ConfigDict(
    dict(enabled=False, seed=1, data=1, model=-1, model_min_size=2**14)
  )
  c.loop = ml_collections.ConfigDict(
    dict(
      num_env_steps=num_env_steps,
      num_envs=1,
      start_steps=start_steps,
      update_after=1_000,
      updates_per_step=1,
      replay_capacity=1_000_000,
      eval_every=eval_every,
      eval_episodes=10,
    )
  )
  return c
