"""Defaults shared by the IRL configs (scripts/train_irl.py); each env file overrides what it needs.

Hyper-parameters follow OPIRL's official code (reference/irl.md §1.4) unless a comment says otherwise.
"""

import dataclasses

import ml_collections

from irl import hparams  # the algorithms' dataclasses, without jax: a config file is data

# The budgets of the IRL results tables (docs/results.md) (scripts/irl_results_table.py and the configs' sweeps):
# environment steps per seed of the off-policy algorithms; the on-policy ones (irl/onpolicy.py) get
# ONPOLICY_BUDGET_FACTOR times as many (issue 12: 1e5 and 1e6). TABLE_EVALS_PER_RUN evaluations of
# TABLE_EVAL_EPISODES episodes per run. The papers use 1e6 for every algorithm.
TABLE_BUDGETS = {
  'PointMaze-Left': 100_000,
  'Pendulum': 100_000,
  'Hopper-v5': 100_000,
  'HalfCheetah-v5': 100_000,
  'CustomAnt': 10_000,
  'PointMaze-Right': 20_000,
  'AmputatedAnt': 10_000,
  'BigAnt': 10_000,
}
ONPOLICY_BUDGET_FACTOR = 10
OFFPOLICY_TABLE_ALGOS = ('opirl', 'airl', 'dac', 'valuedice', 'bc')
TABLE_ALGOS = OFFPOLICY_TABLE_ALGOS + ('airl_onpolicy', 'gail_onpolicy')  # on JAX-native envs
TABLE_EVALS_PER_RUN = 20
TABLE_EVAL_EPISODES = 20


def table_budget(env: str, algo: str, budgets: dict | None = None) -> int:
  """The environment steps of one results-table run of `algo` on `env` (`budgets` overrides
  TABLE_BUDGETS)."""
  budget = (budgets or TABLE_BUDGETS)[env]
  return budget * ONPOLICY_BUDGET_FACTOR if algo in hparams.ONPOLICY_ALGOS else budget


def mesh_config():
  """`config.mesh` (cljax/mesh.py), off by default."""
  return ml_collections.ConfigDict(
    dict(enabled=False, seed=-1, data=1, model=1, model_min_size=2**14)
  )


def table_overrides(env: str, algo: str = 'opirl') -> dict:
  """The loop overrides of one results-table run of `algo` on `env`."""
  budget = table_budget(env, algo)
  return {
    'loop.num_env_steps': budget,
    'loop.eval_every': budget // TABLE_EVALS_PER_RUN,
    'loop.eval_episodes': TABLE_EVAL_EPISODES,
  }


# Where a config's defaults depart from the official code's (reference/irl.md §1.4): the values the
# OPIRL study (docs/opirl_study.md, scripts/opirl_study.py) chose on seeds 100-102, per environment.
# The `:official` preset drops them. Empty: the official values are the defaults.
STUDY_DEFAULTS = {
  # `sac+net64+goal_rel`: SAC as the policy learner, 64-64 networks, and r, h on the particle's
  # position relative to the target (discriminator.goal_relative); final score 0.66 after 2e4 steps
  # on seeds 100-102, against 0.46-0.49 for every variant on the raw observation (rounds 1-3).
  # Round 5 (5e4 steps, seeds 100-102): the discriminator's shaping network h at 64-64 instead of the
  # official 256-256 (`+disc64`) learns about as well (mean of the last four evaluations -18.1
  # against -16.9, scores 0.74 and 0.77, within a seed's spread) at 2.7x the steps per second: h
  # with its gradient penalty was most of a step's time.
  'PointMaze-Left': {
    'irl.policy_learner': 'sac',
    'sac.hidden_sizes': (64, 64),
    'algaedice.hidden_sizes': (64, 64),
    'discriminator.goal_relative': (0, 3, 3),
    'discriminator.shaping_hidden': (64, 64),
  },
  # `sac+net64`: SAC (lr 3e-4, actor on every update) as the policy learner, 64-64 networks; 3/3
  # seeds at 90 % of the expert after 6k, 9k, 13k steps (the official AlgaeDICE: none, at -1264).
  'Pendulum': {
    'irl.policy_learner': 'sac',
    'sac.hidden_sizes': (64, 64),
    'algaedice.hidden_sizes': (64, 64),
  },
}


def set_fields(c, overrides: dict) -> None:
  """Applies {'group.name': value} overrides to config `c`."""
  for path, value in overrides.items():
    group, _, name = path.rpartition('.')
    (c[group] if group else c)[name] = value


def apply_preset(c, arg, env: str) -> None:
  """The config argument's preset: None (the defaults: the official values with `STUDY_DEFAULTS[env]`
  on top), 'official' (the official code's values only) or 'quick' (the defaults with tiny networks
  and budget, for smoke tests). Raises ValueError naming the allowed values otherwise."""
  if arg not in (None, '', 'official', 'quick'):
    raise ValueError(
      f"the config argument must be one of 'official', 'quick' (or none), got {arg!r}"
    )
  if arg != 'official':
    set_fields(c, STUDY_DEFAULTS.get(env, {}))
  if arg == 'quick':
    c.loop.num_env_steps, c.loop.eval_every, c.loop.eval_episodes = 2_000, 1_000, 4
    c.loop.start_steps, c.loop.update_after, c.loop.replay_capacity = 500, 300, 5_000
    for name in ('algaedice', 'sac', 'valuedice', 'bc'):
      c[name].hidden_sizes = (32, 32)
      c[name].batch_size = 64
    c.irl.batch_size = 64
    c.ppo.num_envs, c.ppo.num_minibatches, c.ppo.hidden_sizes = 4, 5, (32, 32)


def from_dataclass(cls):
  fields = dataclasses.asdict(cls())
  return ml_collections.ConfigDict({k: v for k, v in fields.items() if v is not None})


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.algo = 'opirl'  # opirl | airl | dac | valuedice | bc | airl_onpolicy | gail_onpolicy
  c.env = 'PointMaze-Left'
  c.demos = 'demos/PointMaze-Left'  # demonstration file prefix (irl/demos.py)
  c.num_trajectories = 1  # expert episodes used (the first ones in the file)
  c.seed = 0
  c.num_seeds = 1  # JAX-native environments: seeds vmapped in one run
  c.seed_batching = 'vmap'  # vmap (fast) | map: seed i bit-identical alone or in any group
  c.normalize_states = True  # expert-statistics normalisation
  c.absorbing = True  # DAC absorbing states
  c.num_absorbing = 10  # absorbing rows stored after each agent termination
  c.expert_next_obs_compat = False  # True: the official loader's bug (expert s' = s)
  c.irl = ml_collections.ConfigDict(
    dict(batch_size=256, policy_learner='algaedice', recent_window=10_000)
  )
  # The discriminator's hyper-parameters are DiscriminatorConfig's; its form (AIRL or GAIL, the log π
  # term, the policy's reward) follows the algorithm (irl.imitation.discriminator_defaults).
  disc = hparams.DiscriminatorConfig()
  c.discriminator = ml_collections.ConfigDict(
    dict(
      reward_input=disc.reward_input,
      reward_hidden=disc.reward_hidden,
      shaping_hidden=disc.shaping_hidden,
      gamma_d=disc.gamma_d,
      # None: the algorithm's own (irl.imitation.discriminator_defaults: 1e-5, DAC 1e-3); a number
      # (an env file's, e.g. HalfCheetah 3e-4) applies to every algorithm.
      learning_rate=ml_collections.config_dict.placeholder(float),
      gp_coeff=disc.gp_coeff,
      use_log_pi='auto',  # auto: True for airl, False otherwise
      policy_reward='auto',  # auto: f (shaped) for airl, r for opirl
      reward_clip_max=float('inf'),  # inf: no clipping (PointMaze: 0.0)
      goal_relative=disc.goal_relative,
    )
  )  # (): off; (achieved, desired, size): p - g to r and h
  c.algaedice = from_dataclass(hparams.AlgaeDICEConfig)
  c.sac = from_dataclass(hparams.SACConfig)
  c.valuedice = from_dataclass(hparams.ValueDICEConfig)
  c.bc = from_dataclass(hparams.BCConfig)
  c.ppo = from_dataclass(hparams.PPOConfig)  # airl_onpolicy, gail_onpolicy (irl/onpolicy.py)
  # Device mesh (cljax/mesh.py): vmapped seeds split over `seed`, each seed's agent state
  # (networks, optimizers) leaves of >= model_min_size elements over `model`; -1 = all remaining
  # devices. Devices on `data` hold copies (the IRL loop splits no batch).
  c.mesh = mesh_config()
  # Checkpoints: one per evaluation period (the whole carry: agent, replay buffer, environment
  # states); the newest `keep_checkpoints` stay on disk (0: every one). Their size follows the replay
  # buffer; measured: 8 MB per checkpoint of the 3-seed PointMaze-Left OPIRL table run (16 MB kept).
  c.keep_checkpoints = 2
  c.loop = ml_collections.ConfigDict(
    dict(
      num_env_steps=1_000_000,
      num_envs=1,
      start_steps=2_000,
      update_after=1_000,
      updates_per_step=1,
      replay_capacity=2_000_000,
      eval_every=10_000,
      eval_episodes=20,
    )
  )
  return c
