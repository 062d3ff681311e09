"""From a config to a finished run: what scripts/train_irl.py, scripts/transfer_reward.py and
scripts/bench_irl.py share.

  built = build(config)                     # ConfigError (naming the field) before any compute
  states = train(workdir, built.env, built.agent, built.loop_config, seeds, env_name=config.env, ...)
  summary = summarise(workdir, seeds, expert_return, random_return)

`train` writes `metrics.jsonl` and TensorBoard events, checkpoints the whole training state after every
evaluation period (`checkpoints/`) and resumes from the newest checkpoint when it finds one. Learned
rewards are saved with `save_reward` (a `reward.json` record + an orbax checkpoint of the parameters)
and read back, as a function on raw environment observations, with `load_reward`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
from typing import Any, Callable, NamedTuple

import flax.struct
import jax
import numpy as np
from tqdm import tqdm

from envs import registry
from envs.core import EnvError, EnvSpec
from experiment import distributed, divergence, runs
from experiment import mesh as mesh_lib
from experiment.checkpoint import Checkpointer
from experiment.config import ConfigError, check_choice, check_positive
from experiment.writers import JsonlWriter, MultiWriter, TensorBoardWriter
from irl import algaedice, bc, demos, imitation, loops, onpolicy, replay, valuedice
from irl.discriminator import DiscriminatorConfig, make_discriminator
from irl.sac import agent as sac_agent

REWARD_FORMAT_VERSION = 1
# Every --config.algo: the off-policy algorithms (irl.imitation) and the on-policy ones (irl.onpolicy).
ALGOS = imitation.ALGOS + onpolicy.ONPOLICY_ALGOS


class Built(NamedTuple):
  env: Any                 # a JAX-native env (envs.registry) or a host GymEnv
  is_jax: bool
  agent: Any               # a loops.Agent, or an irl.onpolicy.OnPolicyRunner (airl/gail_onpolicy)
  parts: imitation.Parts
  loop_config: loops.LoopConfig
  expert_buffer: Any       # irl.replay.ExpertBuffer, preprocessed
  meta: dict               # the demonstrations' provenance record (irl.demos)


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
    raise ConfigError(f'config.num_seeds > 1 needs a JAX-native environment ({list(registry.JAX_ENVS)}); '
                      f'run one process per seed (--config.seed) for {config.env!r}')


def build_mesh(config, is_jax: bool, num_seeds: int | None = None):
  """`config.mesh` to a mesh (or None), checked against the environment and the number of seeds
  (default `config.num_seeds`), with the other run fields every IRL/RL script shares
  (`seed_batching`, `keep_checkpoints`); ConfigError otherwise."""
  mesh = mesh_lib.from_config(config.mesh)
  if mesh is not None:
    if not is_jax:
      raise ConfigError(f'config.mesh.enabled places vmapped seeds on devices, which needs a '
                        f'JAX-native environment; {config.env} runs on the host')
    mesh_lib.check_seeds(config.num_seeds if num_seeds is None else num_seeds, mesh)
  # configs/rl trains one seed and has no such field. The IRL loop splits no batch over `data`.
  mesh_lib.check_seed_batching(config.get('seed_batching', 'vmap'), mesh, splits_data=False)
  check_positive('keep_checkpoints', config.get('keep_checkpoints', 2), integer=True, allow_zero=True)
  return mesh


def build(config) -> Built:
  """Checks an IRL config (configs/irl/*.py) and builds everything a run needs; ConfigError first."""

  check_choice('algo', config.algo, ALGOS)
  is_onpolicy = config.algo in onpolicy.ONPOLICY_ALGOS
  check_choice('env', config.env, registry.JAX_ENVS + registry.GYM_ENVS)
  check_positive('num_trajectories', config.num_trajectories, integer=True)
  check_positive('num_absorbing', config.num_absorbing, integer=True)
  check_choice('discriminator.use_log_pi', config.discriminator.use_log_pi, ('auto', True, False))
  check_choice('discriminator.policy_reward', config.discriminator.policy_reward, ('auto', 'r', 'f'))
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
      raise ConfigError(f'config.loop.eval_every ({loop_config.eval_every}) must be a multiple of '
                        f'config.ppo.num_envs × config.ppo.num_steps ({ppo_config.steps_per_round}) '
                        f'for {config.algo}')
  policy_config = None if is_onpolicy else {
      'opirl': (algaedice.AlgaeDICEConfig, 'algaedice') if irl_config.policy_learner == 'algaedice'
               else (sac_agent.SACConfig, 'sac'),
      'airl': (sac_agent.SACConfig, 'sac'), 'dac': (sac_agent.SACConfig, 'sac'),
      'valuedice': (valuedice.ValueDICEConfig, 'valuedice'), 'bc': (bc.BCConfig, 'bc'),
  }[config.algo]
  if policy_config is not None:
    policy_config = dataclass_from_config(policy_config[0], config[policy_config[1]], policy_config[1])

  disc_config = None
  if config.algo in imitation.ADVERSARIAL_ALGOS + onpolicy.ONPOLICY_ALGOS:
    # The algorithm's defaults (imitation.discriminator_defaults) with the config's fields on top;
    # 'auto' keeps the algorithm's choice.
    d = config.discriminator
    fields = dict(reward_input=d.reward_input, reward_hidden=tuple(d.reward_hidden),
                  shaping_hidden=tuple(d.shaping_hidden), gamma_d=d.gamma_d,
                  learning_rate=d.learning_rate, gp_coeff=d.gp_coeff,
                  reward_clip_max=None if math.isinf(d.reward_clip_max) else d.reward_clip_max,
                  goal_relative=tuple(d.goal_relative))
    form = onpolicy.DISCRIMINATOR_FORM.get(config.algo, config.algo)   # airl_onpolicy: airl's
    if form != 'dac':
      fields.update({k: d[k] for k in ('use_log_pi', 'policy_reward') if d[k] != 'auto'})
    try:
      disc_config = dataclasses.replace(imitation.discriminator_defaults(form), **fields)
      disc_config.validate()
    except (TypeError, ValueError) as e:
      raise ConfigError(f'config.discriminator: {e}') from None
    if disc_config.goal_relative and config.normalize_states:
      raise ConfigError('config.discriminator.goal_relative needs config.normalize_states=False '
                        '(normalisation scales the position and the goal apart)')

  try:
    # On-policy runs on the host step PPO's `num_envs` environments in lock-step.
    host_envs = ppo_config.num_envs if is_onpolicy else loop_config.num_envs
    env = (registry.make(config.env) if is_jax
           else registry.make(config.env, num_envs=host_envs, seed=config.seed))
    spec = env.spec
    expert, meta = demos.load(config.demos, env=config.env, obs_dim=spec.observation.shape[0],
                              act_dim=spec.action.shape[0], num_episodes=config.num_trajectories)
  except (EnvError, demos.DemoError) as e:
    raise ConfigError(f'config.env / config.demos: {e}') from None
  prep = imitation.ObsTransform.from_expert(expert, normalize=config.normalize_states,
                                            absorbing=config.absorbing,
                                            num_absorbing=config.num_absorbing)
  expert_buffer = prep.expert_buffer(expert, compat_next_obs=config.expert_next_obs_compat)
  if is_onpolicy:
    try:
      agent = onpolicy.make_onpolicy(config.algo, env, prep, ppo_config, disc_config, expert_buffer,
                                     loop_config.eval_episodes)
    except ValueError as e:
      raise ConfigError(f'config: {e}') from None
    parts = imitation.Parts(agent, agent.discriminator, prep)
  else:
    agent, parts = imitation.make_agent(config.algo, spec, prep, irl_config,
                                        discriminator_config=disc_config, policy_config=policy_config)
  return Built(env, is_jax, agent, parts, loop_config, expert_buffer, meta)


# ---------------------------------------------------------------------------------------------------
# Running


def seed_keys(seeds: list[int]) -> jax.Array:
  return jax.vmap(jax.random.key)(np.asarray(seeds))


def seed_functions(env, agent: loops.Agent, loop_config: loops.LoopConfig, expert_buffer=None,
                   transform_fn=None, mesh=None, model_min_size: int | None = None,
                   seed_batching: str = 'vmap'):
  """The jitted, seed-vmapped `init(keys) -> carry` and `period_fn(carry, period) -> (carry,
  metrics)` (one evaluation period) of a JAX-native run. With `mesh`, every output (all of which
  have the seed axis first) is split over its `seed` axis: without `out_shardings` the compiler may
  return leaves it finds cheap to replicate, and the next call would then recompile. On a mesh with
  a `model` axis the agent state's leaves of at least `model_min_size` elements per seed are split
  over it too (`experiment.mesh.state_shardings`), and kept split through the loop.

  `seed_batching` (`experiment.mesh.over_seeds`): 'vmap' batches the seeds (fast; seed i of n equals
  seed i alone to rounding, which training amplifies); 'map' runs one seed's computation per seed, so
  seed i is the same run bit for bit alone, in any group and on a mesh."""
  mesh_lib.check_seed_batching(seed_batching, mesh, splits_data=False)
  if isinstance(agent, onpolicy.OnPolicyRunner):   # PPO-based AIRL / GAIL: rounds of fresh rollouts
    init_one = agent.init
    rounds = loop_config.eval_every // agent.config.steps_per_round
    period_one = lambda carry, p, constraint, buffer=None: agent.train_periods(
        carry, p, num_periods=1, rounds_per_period=rounds, state_constraint=constraint)
  else:
    init_one = lambda k: loops.init_carry(env, agent, loop_config, k, transform_fn=transform_fn)
    period_one = lambda carry, p, constraint, buffer=expert_buffer: loops.train_periods(
        env, agent, loop_config, carry, p, num_periods=1, expert_buffer=buffer,
        transform_fn=transform_fn, state_constraint=constraint)
  init_out = period_out = state_constraint = None
  if mesh is not None:
    min_size = mesh_lib.DEFAULT_MIN_SIZE if model_min_size is None else model_min_size
    init_out = carry_shardings(jax.eval_shape(init_one, jax.random.key(0)), mesh, min_size)
    period_out = (init_out, mesh_lib.seed_sharding(mesh))
    if mesh_lib.shards_model(mesh):
      state_constraint = lambda state: mesh_lib.constrain_state(state, mesh, min_size)
  if seed_batching == 'map':   # the expert buffer goes in as an argument (over_seeds)
    init = jax.jit(mesh_lib.over_seeds(init_one, (0,), 'map', mesh), out_shardings=init_out)
    period_jit = jax.jit(mesh_lib.over_seeds(lambda carry, p, buffer: period_one(carry, p, None, buffer),
                                             (0, None, None), 'map', mesh), out_shardings=period_out)
    return init, lambda carry, p: period_jit(carry, p, expert_buffer)
  vmap = jax.vmap if mesh is None else functools.partial(jax.vmap, spmd_axis_name='seed')
  init = jax.jit(vmap(init_one), out_shardings=init_out)
  period_fn = jax.jit(vmap(lambda carry, p: period_one(carry, p, state_constraint),
                           in_axes=(0, None)), out_shardings=period_out)
  return init, period_fn


def carry_shardings(one_seed_carry, mesh, model_min_size: int):
  """The shardings of a `[S]`-seed carry given one seed's (abstract) carry: everything over `seed`,
  and the agent state's large leaves over `model` as well (`experiment.mesh.state_shardings`)."""
  shardings = jax.tree.map(lambda x: mesh_lib.seed_sharding(mesh), one_seed_carry)
  return shardings.replace(agent_state=mesh_lib.state_shardings(one_seed_carry.agent_state, mesh,
                                                                model_min_size))


def train(workdir: str, env, agent: loops.Agent, loop_config: loops.LoopConfig, seeds: list[int], *,
          env_name: str, expert_buffer=None, transform_fn=None, desc: str = '',
          mesh=None, after_checkpoint: Callable[[int], None] | None = None,
          model_min_size: int | None = None, seed_batching: str = 'vmap',
          keep_checkpoints: int = 2) -> list[Any]:
  """Trains one agent per seed (vmapped on a JAX-native env; one seed on a host env), logging every
  evaluation period to `workdir/metrics.jsonl` and TensorBoard (means over seeds and
  `eval_return_seed<i>`) and checkpointing the whole state (agent, replay buffer, environment states
  and keys) to `workdir/checkpoints/` after logging it. Resumes from the newest checkpoint: exactly
  on JAX-native environments; host environments start fresh episodes. Returns the final agent states,
  one per seed.

  `mesh` (`experiment.mesh`, JAX-native environments only): the whole per-seed carry is split over
  the mesh's `seed` axis (the number of seeds must be a multiple of its size), the agent state's leaves
  of at least `model_min_size` elements over its `model` axis (`seed_functions`), and the expert buffer
  is replicated; checkpoints are restored with the same shardings. `seed_batching` ('vmap' or 'map'):
  how the seeds share the computation (`seed_functions`). The newest `keep_checkpoints` checkpoints
  stay on disk (0: every one). `after_checkpoint(env_steps)` runs
  after every checkpoint (e.g. `experiment.preemption.Guard.check`, which may raise to stop)."""



  is_jax = registry.is_jax_env(env_name)
  if not is_jax and len(seeds) != 1:
    raise ValueError(f'a host environment ({env_name}) trains one seed per process, got {seeds}')
  if not is_jax and mesh is not None:
    raise ValueError(f'a device mesh shards vmapped seeds, which needs a JAX-native environment; '
                     f'{env_name} runs on the host')
  keys = seed_keys(seeds)
  if mesh is not None:
    mesh_lib.check_seeds(len(seeds), mesh)
    keys = mesh_lib.shard_leading(keys, mesh)
    if expert_buffer is not None:
      expert_buffer = mesh_lib.replicate(expert_buffer, mesh)
  num_periods = loop_config.num_env_steps // loop_config.eval_every
  primary = distributed.is_primary()   # with several processes only process 0 writes logs
  writer = MultiWriter([JsonlWriter(os.path.join(workdir, 'metrics.jsonl')),
                        TensorBoardWriter(os.path.join(workdir, 'tensorboard'))] if primary else [])
  bar = tqdm(total=loop_config.num_env_steps, unit='step', disable=None if primary else True,
             desc=desc)

  def log(env_steps, metrics):
    """metrics: name -> [num_seeds] values of one period."""
    scalars = {k: float(np.nanmean(v)) if not np.all(np.isnan(v)) else float('nan')
               for k, v in metrics.items() if k != 'env_steps'}
    scalars.update({f'eval_return_seed{s}': float(v) for s, v in zip(seeds, metrics['eval_return'])})
    writer.write_scalars(env_steps, scalars)
    bar.n = env_steps
    bar.set_postfix(eval_return=f'{scalars["eval_return"]:.1f}')
    bar.refresh()
    if bar.disable and primary:   # no terminal (a log file, a SLURM job): a plain line per period
      print(f'{desc + ": " if desc else ""}{env_steps:,} environment steps, evaluation return '
            f'{scalars["eval_return"]:.1f}', flush=True)

  def check_finite(env_steps, metrics, params_finite):
    """The divergence guard, once per period before its checkpoint (experiment/divergence.py):
    the agent's parameters, and the period's losses (NaN there also means "not computed")."""
    divergence.check(f'{env_steps:,} environment steps', metrics, params_finite, seeds,
                     skip=('eval_return', 'train_return'), nan_is_missing=True)

  try:
    with Checkpointer(os.path.join(workdir, 'checkpoints'), max_to_keep=keep_checkpoints or None) as ckpt:
      warn = print if primary else (lambda message: None)
      if is_jax:
        init, period_fn = seed_functions(env, agent, loop_config, expert_buffer, transform_fn, mesh,
                                         model_min_size, seed_batching)
        # A damaged newest checkpoint is reported and set aside; the one before it is used.
        restored = ckpt.restore_newest(jax.eval_shape(init, keys), warn)   # init's out_shardings
        if restored is None:
          carry, first = init(keys), 0
        else:
          _, carry, ckpt_meta = restored
          first = ckpt_meta['env_steps'] // loop_config.eval_every
          if primary:
            print(f'Resuming {workdir} at {ckpt_meta["env_steps"]} environment steps.')
        finite_fn = jax.jit(jax.vmap(divergence.all_finite))
        for period in range(first, num_periods):
          carry, metrics = period_fn(carry, period)
          env_steps = (period + 1) * loop_config.eval_every
          # Log first: a kill between the two repeats this period's record (read_curve keeps the
          # last), while the other order could lose it.
          host_metrics = {k: distributed.to_host(v)[:, 0] for k, v in metrics.items()}
          log(env_steps, host_metrics)
          check_finite(env_steps, host_metrics, distributed.to_host(finite_fn(carry.agent_state)))
          ckpt.save(env_steps, carry, {'env_steps': env_steps})
          if after_checkpoint is not None:
            after_checkpoint(env_steps)
        states = [jax.tree.map(lambda x: x[i], carry.agent_state) for i in range(len(seeds))]
      else:
        eval_env = registry.make(env_name, num_envs=loop_config.eval_episodes, seed=seeds[0] + 10_000)
        initial = None
        is_onpolicy = isinstance(agent, onpolicy.OnPolicyRunner)
        abstract = (onpolicy.abstract_host_carry(agent) if is_onpolicy
                    else loops.abstract_host_carry(env.spec, agent, loop_config, transform_fn))
        restored = ckpt.restore_newest(abstract, warn)
        if restored is not None:
          _, initial, ckpt_meta = restored
          print(f'Resuming {workdir} at {ckpt_meta["env_steps"]} environment steps.')
        pending = {}

        finite_fn = jax.jit(divergence.all_finite)

        def checkpoint_fn(env_steps, carry):
          # Before saving: a kill between the two repeats this record, the other order could lose it.
          host_metrics = {k: np.asarray([v]) for k, v in pending.pop(env_steps).items()}
          log(env_steps, host_metrics)
          check_finite(env_steps, host_metrics, np.asarray([finite_fn(carry.agent_state)]))
          ckpt.save(env_steps, carry, {'env_steps': env_steps})
          if after_checkpoint is not None:
            after_checkpoint(env_steps)

        progress_fn = lambda s, m: pending.__setitem__(s, m)
        try:
          if is_onpolicy:   # PPO rounds on the Gymnasium vector environment
            carry = onpolicy.train_host(env, agent, keys[0], num_env_steps=loop_config.num_env_steps,
                                        eval_every=loop_config.eval_every, eval_env=eval_env,
                                        progress_fn=progress_fn, checkpoint_fn=checkpoint_fn,
                                        initial=initial)
          else:
            carry, _ = loops.train_host(env, agent, loop_config, keys[0], expert_buffer=expert_buffer,
                                        transform_fn=transform_fn, eval_env=eval_env,
                                        progress_fn=progress_fn, checkpoint_fn=checkpoint_fn,
                                        initial=initial)
        finally:
          eval_env.close()
        states = [carry.agent_state]
  finally:
    bar.close()
    writer.close()
  return states


def random_return(env_name: str, env, seed: int, num_episodes: int) -> float:
  """Mean return of uniform random actions over `num_episodes` episodes (`env` is used when it is
  JAX-native; a host env of `num_episodes` environments is made otherwise). The scripts pass seed 0
  whatever their seeds: the reference of the normalised score is the environment's, so seed i reports
  the same score alone or in a group."""
  key = jax.random.key(seed + 30_000)
  spec = env.spec
  if registry.is_jax_env(env_name):
    policy = lambda obs, k: loops.random_action(spec, k, obs.shape[0])
    return float(jax.jit(lambda k: loops.evaluate(env, policy, k, num_episodes).mean())(key))
  eval_env = registry.make(env_name, num_envs=num_episodes, seed=seed + 30_000)
  try:
    greedy = lambda state, obs, k: loops.random_action(spec, k, obs.shape[0])
    return float(np.mean(loops.evaluate_host(eval_env, greedy, None, key)))
  finally:
    eval_env.close()


def steps_to(curve: list, expert_return: float, random_return: float, fraction: float = 0.9):
  """First step whose normalised score (R − R_random)/(R_expert − R_random) ≥ fraction, or None."""
  gap = expert_return - random_return
  for step, value in curve:
    if value is not None and gap > 0 and (value - random_return) / gap >= fraction:
      return step
  return None


def mean_score_curve(per_seed_curves: list, expert_return: float, random_return: float) -> list:
  """[(steps, normalised score (R − R_random)/(R_expert − R_random) of the mean over seeds)] of
  per-seed learning curves [[steps, return], ...] that share their steps."""
  gap = expert_return - random_return
  return [(step, (float(np.mean([c[i][1] for c in per_seed_curves])) - random_return) / gap)
          for i, (step, _) in enumerate(per_seed_curves[0])]


def steps_at_best_score(slow_curves: list, fast_curves: list, expert_return: float,
                        random_return: float, names=('slow', 'fast')) -> dict:
  """The best normalised score (of the mean over seeds) the `slow` algorithm's curves reach, the
  steps each algorithm first reaches it at (None: never), and slow steps / fast steps."""
  slow = mean_score_curve(slow_curves, expert_return, random_return)
  fast = mean_score_curve(fast_curves, expert_return, random_return)
  score = max(value for _, value in slow)
  first = lambda curve: next((step for step, value in curve if value >= score), None)
  slow_steps, fast_steps = first(slow), first(fast)
  return {'score': score, f'{names[0]}_steps': slow_steps, f'{names[1]}_steps': fast_steps,
          'step_ratio': slow_steps / fast_steps if fast_steps else None}


def summarise(workdir: str, seeds: list[int], expert_return: float | None,
              random_return: float) -> dict:
  """Per-seed and mean learning curves, final returns and (with `expert_return`) steps to 90 % of
  the expert, from `workdir/metrics.jsonl`."""
  metrics_path = os.path.join(workdir, 'metrics.jsonl')
  per_seed = []
  for s in seeds:
    curve = runs.read_curve(metrics_path, f'eval_return_seed{s}')
    record = {'seed': s, 'learning_curve': curve, 'final_return': curve[-1][1]}
    if expert_return is not None:
      record['steps_to_90pct_expert'] = steps_to(curve, expert_return, random_return)
    per_seed.append(record)
  finals = [r['final_return'] for r in per_seed]
  summary = {'seeds': list(seeds), 'final_return': float(np.mean(finals)),
             'final_return_std': float(np.std(finals)), 'random_return': random_return,
             'learning_curve': runs.read_curve(metrics_path, 'eval_return'), 'per_seed': per_seed}
  if expert_return is not None:
    summary['steps_to_90pct_expert'] = steps_to(summary['learning_curve'], expert_return,
                                                random_return)
    summary['steps_to_90pct_expert_per_seed'] = [r['steps_to_90pct_expert'] for r in per_seed]
  return summary


# ---------------------------------------------------------------------------------------------------
# Learned rewards


class LoadedReward(NamedTuple):
  record: dict                     # reward.json
  discriminator: Any               # irl.discriminator.Discriminator
  params: Any                      # its DiscriminatorParams
  prep: imitation.ObsTransform     # the observation preprocessing it was trained with

  def reward_fn(self) -> Callable:
    """(obs, action, next_obs) -> reward on *preprocessed* rows (replay-buffer rows)."""
    return self.discriminator.reward_fn(self.params)


def save_reward(directory: str, parts: imitation.Parts, discriminator_state, *, algo: str,
                env: str) -> None:
  """The learned reward for transfer: `reward.json` + an orbax checkpoint of its parameters. With
  several processes all of them call this (orbax writes collectively); process 0 writes the JSON."""
  os.makedirs(directory, exist_ok=True)
  with Checkpointer(os.path.join(directory, 'params')) as ckpt:
    if 0 in ckpt.all_steps():   # a rerun (killed after saving it, before its results): replace it
      ckpt.delete(0)
    ckpt.save(0, discriminator_state.params, {'env': env})
  if not distributed.is_primary():
    return
  prep = parts.prep
  record = {'format_version': REWARD_FORMAT_VERSION, 'algo': algo, 'env': env,
            'discriminator_config': dataclasses.asdict(parts.discriminator.config),
            'obs_dim': parts.discriminator.obs_dim, 'act_dim': parts.discriminator.act_dim,
            'normalize_mean': np.asarray(prep.mean).tolist(),
            'normalize_std': np.asarray(prep.std).tolist(), 'absorbing': prep.absorbing,
            'num_absorbing': prep.num_absorbing}
  with open(os.path.join(directory, 'reward.json'), 'w', encoding='utf-8') as f:
    json.dump(record, f, indent=1)


def load_reward(directory: str, env_spec: EnvSpec | None = None) -> LoadedReward:
  """Reads a `save_reward` directory; with `env_spec`, checks that the reward fits that environment's
  observation and action sizes. Raises ConfigError on a missing or mismatched reward."""
  path = os.path.join(directory, 'reward.json')
  if not os.path.exists(path):
    raise ConfigError(f'{directory!r} holds no learned reward (no reward.json; scripts/train_irl.py '
                      'writes them under <workdir>/reward/seed<i>/ for opirl, airl and dac)')
  with open(path, encoding='utf-8') as f:
    record = json.load(f)
  if record.get('format_version') != REWARD_FORMAT_VERSION:
    raise ConfigError(f'{path}: format_version {record.get("format_version")!r}, this code reads '
                      f'{REWARD_FORMAT_VERSION}')
  fields = {k: (tuple(v) if isinstance(v, list) else v)
            for k, v in record['discriminator_config'].items()}
  disc = make_discriminator(record['obs_dim'], record['act_dim'], DiscriminatorConfig(**fields))
  prep = imitation.ObsTransform(np.asarray(record['normalize_mean'], np.float32),
                                np.asarray(record['normalize_std'], np.float32),
                                bool(record['absorbing']), int(record.get('num_absorbing', 10)))
  if env_spec is not None:
    spec = prep.spec(env_spec)
    sizes = (spec.observation.shape[0], spec.action.shape[0])
    if sizes != (record['obs_dim'], record['act_dim']):
      raise ConfigError(f'{path}: the reward was learned on {record["env"]} with (obs, action) sizes '
                        f'{(record["obs_dim"], record["act_dim"])}, the target environment '
                        f'{env_spec.name} has {sizes}')
  # Explicit target shardings (this process's first device): the reward may have been saved from
  # other devices (a GPU, a multi-process mesh), which orbax refuses to guess across.
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
                          jax.eval_shape(disc.init, jax.random.key(0)).params)
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
    return FrozenRewardState(policy=policy.init(key),
                             reward_params=jax.tree.map(jax.numpy.asarray, reward_params))

  def update(state, replay_buffer, key, expert_buffer=None):
    del expert_buffer
    sample_key, update_key = jax.random.split(key)
    batch = replay.sample(replay_buffer, sample_key, policy.config.batch_size)
    policy_state, metrics = policy.update(state.policy, batch, update_key,
                                          disc.reward_fn(state.reward_params))
    return state.replace(policy=policy_state), metrics

  def act(state, obs, key, deterministic):
    return policy.act(state.policy, prep.obs(obs), key, deterministic)

  return loops.Agent(init=init, act=act, update=update)
