"""From an IRL config (configs/irl/*.py) to the objects a run needs, every field checked first:

  built = build(config)                 # ConfigError (naming the field) before any compute
  mesh = build_mesh(config, built.is_jax)

`build` gives the environment, the agent of `config.algo` (irl.imitation, irl.onpolicy), the
preprocessed expert buffer and the loop config; `irl.train` runs them, `irl.report` summarises the run,
`irl.rewards` saves and loads the learned reward.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

from cljax import mesh as mesh_lib
from cljax.config import ConfigError, check_choice, check_positive
from envs import registry
from envs.core import EnvError
from irl import algaedice, bc, demos, imitation, loops, onpolicy, valuedice
from irl.sac import agent as sac_agent

# Every --config.algo: the off-policy algorithms (irl.imitation) and the on-policy ones (irl.onpolicy).
ALGOS = imitation.ALGOS + onpolicy.ONPOLICY_ALGOS


class Built(NamedTuple):
  env: Any  # a JAX-native env (envs.registry) or a host GymEnv
  is_jax: bool
  agent: Any  # a loops.Agent, or an irl.onpolicy.OnPolicyRunner (airl/gail_onpolicy)
  parts: imitation.Parts
  loop_config: loops.LoopConfig
  expert_buffer: Any  # irl.replay.ExpertBuffer, preprocessed
  meta: dict  # the demonstrations' provenance record (irl.demos)


def dataclass_from_config(cls, config_dict, name: str):
  """`cls(**config_dict)` validated; lists become tuples; errors become ConfigError naming `name`."""
  fields = {k: (tuple(v) if isinstance(v, list) else v) for k, v in config_dict.to_dict().items()}
  try:
    built = cls(**fields)
    built.validate()
  except (TypeError, ValueError) as e:
    raise ConfigError(f'config.{name}: {e}') from None
  return built


def loop_config_from(config_dict) -> loops.LoopConfig:
  try:
    loop_config = loops.LoopConfig(**config_dict.to_dict())
    loop_config.validate()
  except (TypeError, ValueError) as e:
    raise ConfigError(f'config.loop: {e}') from None
  return loop_config


def check_seeds(config, is_jax: bool) -> None:
  check_positive('num_seeds', config.num_seeds, integer=True)
  if config.num_seeds > 1 and not is_jax:
    raise ConfigError(
      f'config.num_seeds > 1 needs a JAX-native environment ({list(registry.JAX_ENVS)}); '
      f'run one process per seed (--config.seed) for {config.env!r}'
    )


def build_mesh(config, is_jax: bool, num_seeds: int | None = None):
  """`config.mesh` to a mesh (or None), checked against the environment and the number of seeds
  (default `config.num_seeds`), with the other run fields every IRL/RL script shares
  (`seed_batching`, `keep_checkpoints`); ConfigError otherwise."""
  mesh = mesh_lib.from_config(config.mesh)
  if mesh is not None:
    if not is_jax:
      raise ConfigError(
        f'config.mesh.enabled places vmapped seeds on devices, which needs a '
        f'JAX-native environment; {config.env} runs on the host'
      )
    mesh_lib.check_seeds(config.num_seeds if num_seeds is None else num_seeds, mesh)
  # configs/rl trains one seed and has no such field. The IRL loop splits no batch over `data`.
  mesh_lib.check_seed_batching(config.get('seed_batching', 'vmap'), mesh, splits_data=False)
  check_positive(
    'keep_checkpoints', config.get('keep_checkpoints', 2), integer=True, allow_zero=True
  )
  return mesh


def build(config) -> Built:
  """Checks an IRL config (configs/irl/*.py) and builds everything a run needs; ConfigError first."""

  check_choice('algo', config.algo, ALGOS)
  is_onpolicy = config.algo in onpolicy.ONPOLICY_ALGOS
  check_choice('env', config.env, registry.JAX_ENVS + registry.GYM_ENVS)
  check_positive('num_trajectories', config.num_trajectories, integer=True)
  check_positive('num_absorbing', config.num_absorbing, integer=True)
  check_choice('discriminator.use_log_pi', config.discriminator.use_log_pi, ('auto', True, False))
  check_choice(
    'discriminator.policy_reward', config.discriminator.policy_reward, ('auto', 'r', 'f')
  )
  is_jax = registry.is_jax_env(config.env)
  check_seeds(config, is_jax)
  loop_config = loop_config_from(config.loop)
  try:
    irl_config = imitation.IRLConfig(**config.irl.to_dict())
    irl_config.validate()
  except (TypeError, ValueError) as e:
    raise ConfigError(f'config.irl: {e}') from None
  if is_onpolicy:
    ppo_config = dataclass_from_config(onpolicy.PPOConfig, config.ppo, 'ppo')
    if loop_config.eval_every % ppo_config.steps_per_round:
      raise ConfigError(
        f'config.loop.eval_every ({loop_config.eval_every}) must be a multiple of '
        f'config.ppo.num_envs × config.ppo.num_steps ({ppo_config.steps_per_round}) '
        f'for {config.algo}'
      )
  policy_config = (
    None
    if is_onpolicy
    else {
      'opirl': (algaedice.AlgaeDICEConfig, 'algaedice')
      if irl_config.policy_learner == 'algaedice'
      else (sac_agent.SACConfig, 'sac'),
      'airl': (sac_agent.SACConfig, 'sac'),
      'dac': (sac_agent.SACConfig, 'sac'),
      'valuedice': (valuedice.ValueDICEConfig, 'valuedice'),
      'bc': (bc.BCConfig, 'bc'),
    }[config.algo]
  )
  if policy_config is not None:
    policy_config = dataclass_from_config(
      policy_config[0], config[policy_config[1]], policy_config[1]
    )

  disc_config = None
  if config.algo in imitation.ADVERSARIAL_ALGOS + onpolicy.ONPOLICY_ALGOS:
    # The algorithm's defaults (imitation.discriminator_defaults) with the config's fields on top;
    # 'auto' keeps the algorithm's choice.
    d = config.discriminator
    fields = dict(
      reward_input=d.reward_input,
      reward_hidden=tuple(d.reward_hidden),
      shaping_hidden=tuple(d.shaping_hidden),
      gamma_d=d.gamma_d,
      gp_coeff=d.gp_coeff,
      reward_clip_max=None if math.isinf(d.reward_clip_max) else d.reward_clip_max,
      goal_relative=tuple(d.goal_relative),
    )
    form = onpolicy.DISCRIMINATOR_FORM.get(config.algo, config.algo)  # airl_onpolicy: airl's
    if form != 'dac':
      fields.update({k: d[k] for k in ('use_log_pi', 'policy_reward') if d[k] != 'auto'})
    defaults = imitation.discriminator_defaults(form)
    if d.learning_rate is not None:
      fields['learning_rate'] = d.learning_rate
    elif config.algo in onpolicy.ONPOLICY_ALGOS:  # DAC's own rate is for DAC alone
      fields['learning_rate'] = imitation.DiscriminatorConfig.learning_rate
    try:
      disc_config = dataclasses.replace(defaults, **fields)
      disc_config.validate()
    except (TypeError, ValueError) as e:
      raise ConfigError(f'config.discriminator: {e}') from None
    if disc_config.goal_relative and config.normalize_states:
      raise ConfigError(
        'config.discriminator.goal_relative needs config.normalize_states=False '
        '(normalisation scales the position and the goal apart)'
      )

  try:
    # On-policy runs on the host step PPO's `num_envs` environments in lock-step.
    host_envs = ppo_config.num_envs if is_onpolicy else loop_config.num_envs
    env = (
      registry.make(config.env)
      if is_jax
      else registry.make(config.env, num_envs=host_envs, seed=config.seed)
    )
    spec = env.spec
    expert, meta = demos.load(
      config.demos,
      env=config.env,
      obs_dim=spec.observation.shape[0],
      act_dim=spec.action.shape[0],
      num_episodes=config.num_trajectories,
    )
  except (EnvError, demos.DemoError) as e:
    raise ConfigError(f'config.env / config.demos: {e}') from None
  prep = imitation.ObsTransform.from_expert(
    expert,
    normalize=config.normalize_states,
    absorbing=config.absorbing,
    num_absorbing=config.num_absorbing,
  )
  expert_buffer = prep.expert_buffer(expert, compat_next_obs=config.expert_next_obs_compat)
  if is_onpolicy:
    try:
      agent = onpolicy.make_onpolicy(
        config.algo, env, prep, ppo_config, disc_config, expert_buffer, loop_config.eval_episodes
      )
    except ValueError as e:
      raise ConfigError(f'config: {e}') from None
    parts = imitation.Parts(agent, agent.discriminator, prep)
  else:
    agent, parts = imitation.make_agent(
      config.algo,
      spec,
      prep,
      irl_config,
      discriminator_config=disc_config,
      policy_config=policy_config,
    )
  return Built(env, is_jax, agent, parts, loop_config, expert_buffer, meta)
