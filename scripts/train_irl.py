r"""Trains OPIRL or a baseline from expert demonstrations and writes its results to --workdir.

  python scripts/train_irl.py --config configs/irl/pointmaze.py --config.algo=opirl --workdir runs/irl/pm_opirl
  python scripts/train_irl.py --config configs/irl/pointmaze.py:quick --config.algo=dac --workdir /tmp/smoke

`--config.algo` is one of opirl, airl, dac, valuedice, bc (irl/imitation.py). Writes `config.json`,
`metrics.jsonl` and TensorBoard events (per evaluation period, mean over seeds: `eval_return` — the
true environment return of the deterministic policy — `eval_return_seed<i>`, `train_return`, the
learned reward, discriminator accuracies and losses, the policy learner's losses), orbax checkpoints of
the whole training state after every period (`checkpoints/`: agent, discriminator, replay buffer,
environment states and keys; rerunning the same command resumes, exactly for JAX-native
environments), and at the end `learning_curve.png`, the learned reward (`reward/seed<i>/`, for the
discriminator-based algorithms) and `results.json` with `algo`, `env`, `env_steps`, `final_return`,
`expert_return`, `random_return`, `steps_to_90pct_expert` and the per-seed values.

`steps_to_90pct_expert` is the first evaluation step at which the normalised score
(R − R_random) / (R_expert − R_random) reaches 0.9 (null if never), where R_expert is the mean return of
the demonstrations file's episodes and R_random that of uniform random actions on the same evaluation
episodes. Normalising by the random return makes "90 % of the expert" meaningful for negative returns
(PointMaze) and equal to the plain ratio when random scores 0.
"""

import json
import os
import sys

from absl import app, flags
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (configs/irl/*.py).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for this run.')
flags.mark_flags_as_required(['config', 'workdir'])


def build(config):
  """Checks the config and builds (env, agent, parts, loop config, expert data); ConfigError first."""
  import math

  from envs import registry
  from envs.core import EnvError
  from experiment.config import ConfigError, check_choice, check_positive
  from irl import algaedice, bc, demos, imitation, loops, valuedice
  from irl.discriminator import DiscriminatorConfig
  from irl.sac import agent as sac_agent

  check_choice('algo', config.algo, imitation.ALGOS)
  check_choice('env', config.env, registry.JAX_ENVS + registry.GYM_ENVS)
  check_positive('num_trajectories', config.num_trajectories, integer=True)
  check_positive('num_seeds', config.num_seeds, integer=True)
  check_positive('num_absorbing', config.num_absorbing, integer=True)
  check_choice('discriminator.use_log_pi', config.discriminator.use_log_pi, ('auto', True, False))
  check_choice('discriminator.policy_reward', config.discriminator.policy_reward, ('auto', 'r', 'f'))
  is_jax = registry.is_jax_env(config.env)
  if config.num_seeds > 1 and not is_jax:
    raise ConfigError(f'config.num_seeds > 1 needs a JAX-native environment ({list(registry.JAX_ENVS)}); '
                      f'run one process per seed for {config.env!r}')

  def dataclass_config(cls, name):
    fields = {k: (tuple(v) if isinstance(v, list) else v) for k, v in config[name].to_dict().items()}
    try:
      built = cls(**fields)
      built.validate()
    except (TypeError, ValueError) as e:
      raise ConfigError(f'config.{name}: {e}') from None
    return built

  try:
    loop_config = loops.LoopConfig(**config.loop.to_dict())
    loop_config.validate()
    irl_config = imitation.IRLConfig(**config.irl.to_dict())
    irl_config.validate()
  except (TypeError, ValueError) as e:
    raise ConfigError(f'config.loop / config.irl: {e}') from None
  policy_config = {
      'opirl': (algaedice.AlgaeDICEConfig, 'algaedice') if irl_config.policy_learner == 'algaedice'
               else (sac_agent.SACConfig, 'sac'),
      'airl': (sac_agent.SACConfig, 'sac'), 'dac': (sac_agent.SACConfig, 'sac'),
      'valuedice': (valuedice.ValueDICEConfig, 'valuedice'), 'bc': (bc.BCConfig, 'bc'),
  }[config.algo]
  policy_config = dataclass_config(*policy_config)

  disc_config = None
  if config.algo in ('opirl', 'airl', 'dac'):
    d = config.discriminator
    use_log_pi = (config.algo == 'airl') if d.use_log_pi == 'auto' else bool(d.use_log_pi)
    policy_reward = ('f' if config.algo == 'airl' else 'r') if d.policy_reward == 'auto' else d.policy_reward
    fields = dict(kind='gail' if config.algo == 'dac' else 'airl', reward_input=d.reward_input,
                  reward_hidden=tuple(d.reward_hidden), shaping_hidden=tuple(d.shaping_hidden),
                  gamma_d=d.gamma_d, learning_rate=d.learning_rate, gp_coeff=d.gp_coeff,
                  reward_clip_max=None if math.isinf(d.reward_clip_max) else d.reward_clip_max)
    if config.algo != 'dac':
      fields.update(use_log_pi=use_log_pi, policy_reward=policy_reward)
    try:
      disc_config = DiscriminatorConfig(**fields)
      disc_config.validate()
    except (TypeError, ValueError) as e:
      raise ConfigError(f'config.discriminator: {e}') from None

  try:
    env = (registry.make(config.env) if is_jax
           else registry.make(config.env, num_envs=loop_config.num_envs, seed=config.seed))
    spec = env.spec
    expert, meta = demos.load(config.demos, env=config.env, obs_dim=spec.observation.shape[0],
                              act_dim=spec.action.shape[0], num_episodes=config.num_trajectories)
  except (EnvError, demos.DemoError) as e:
    raise ConfigError(f'config.env / config.demos: {e}') from None
  prep = imitation.ObsTransform.from_expert(expert, normalize=config.normalize_states,
                                            absorbing=config.absorbing,
                                            num_absorbing=config.num_absorbing)
  agent, parts = imitation.make_agent(config.algo, spec, prep, irl_config,
                                      discriminator_config=disc_config, policy_config=policy_config)
  expert_buffer = prep.expert_buffer(expert, compat_next_obs=config.expert_next_obs_compat)
  return env, is_jax, agent, parts, loop_config, expert_buffer, meta


def main(argv):
  del argv
  import jax
  import numpy as np
  from tqdm import tqdm

  from envs import registry
  from experiment import runs
  from experiment.checkpoint import Checkpointer
  from experiment.config import ConfigError
  from experiment.writers import JsonlWriter, MultiWriter, TensorBoardWriter
  from irl import loops

  config = _CONFIG.value
  workdir = _WORKDIR.value
  try:
    env, is_jax, agent, parts, loop_config, expert_buffer, meta = build(config)
    runs.check_or_write_config(config, workdir)
  except (ConfigError, runs.WorkdirError) as e:
    raise app.UsageError(str(e)) from None

  spec = env.spec
  seeds = list(range(config.seed, config.seed + config.num_seeds))
  keys = jax.vmap(jax.random.key)(np.asarray(seeds))
  transform_fn = parts.prep.transitions
  num_periods = loop_config.num_env_steps // loop_config.eval_every
  writer = MultiWriter([JsonlWriter(os.path.join(workdir, 'metrics.jsonl')),
                        TensorBoardWriter(os.path.join(workdir, 'tensorboard'))])
  bar = tqdm(total=loop_config.num_env_steps, unit='step', disable=None,
             desc=f'{config.algo} {config.env}')

  def log(env_steps, metrics):
    """metrics: name -> [num_seeds] values of one period."""
    scalars = {k: float(np.nanmean(v)) if not np.all(np.isnan(v)) else float('nan')
               for k, v in metrics.items() if k != 'env_steps'}
    scalars.update({f'eval_return_seed{s}': float(v) for s, v in zip(seeds, metrics['eval_return'])})
    writer.write_scalars(env_steps, scalars)
    bar.n = env_steps
    bar.set_postfix(eval_return=f'{scalars["eval_return"]:.1f}')
    bar.refresh()

  random_return = _random_return(env, spec, config, loop_config, is_jax)

  with Checkpointer(os.path.join(workdir, 'checkpoints'), max_to_keep=2) as ckpt:
    latest = ckpt.latest_step()
    if is_jax:
      init = jax.jit(jax.vmap(lambda k: loops.init_carry(env, agent, loop_config, k,
                                                         transform_fn=transform_fn)))
      period_fn = jax.jit(jax.vmap(
          lambda carry, p: loops.train_periods(env, agent, loop_config, carry, p, num_periods=1,
                                               expert_buffer=expert_buffer,
                                               transform_fn=transform_fn), in_axes=(0, None)))
      if latest is None:
        carry, first = init(keys), 0
      else:
        carry, ckpt_meta = ckpt.restore(latest, jax.eval_shape(init, keys))
        first = ckpt_meta['env_steps'] // loop_config.eval_every
        print(f'Resuming {workdir} at {ckpt_meta["env_steps"]} environment steps.')
      for period in range(first, num_periods):
        carry, metrics = period_fn(carry, period)
        env_steps = (period + 1) * loop_config.eval_every
        # Log first: a kill between the two repeats this period's record (read_curve keeps the
        # last), while the other order could lose it.
        log(env_steps, {k: np.asarray(v)[:, 0] for k, v in metrics.items()})
        ckpt.save(env_steps, carry, {'env_steps': env_steps})
      agent_states = [jax.tree.map(lambda x: x[i], carry.agent_state) for i in range(len(seeds))]
    else:
      eval_env = registry.make(config.env, num_envs=loop_config.eval_episodes,
                               seed=config.seed + 10_000)
      initial = None
      if latest is not None:
        abstract = loops.abstract_host_carry(spec, agent, loop_config, transform_fn)
        initial, ckpt_meta = ckpt.restore(latest, abstract)
        print(f'Resuming {workdir} at {ckpt_meta["env_steps"]} environment steps.')
      pending = {}

      def checkpoint_fn(env_steps, carry):
        # Before saving: a kill between the two repeats this record, the other order could lose it.
        log(env_steps, {k: np.asarray([v]) for k, v in pending.pop(env_steps).items()})
        ckpt.save(env_steps, carry, {'env_steps': env_steps})

      carry, _ = loops.train_host(env, agent, loop_config, keys[0], expert_buffer=expert_buffer,
                                  transform_fn=transform_fn, eval_env=eval_env,
                                  progress_fn=lambda s, m: pending.__setitem__(s, m),
                                  checkpoint_fn=checkpoint_fn, initial=initial)
      agent_states = [carry.agent_state]
  bar.close()
  writer.close()

  metrics_path = os.path.join(workdir, 'metrics.jsonl')
  expert_return = float(meta['return_mean'])
  per_seed = []
  for s in seeds:
    curve = runs.read_curve(metrics_path, f'eval_return_seed{s}')
    per_seed.append({'seed': s, 'learning_curve': curve, 'final_return': curve[-1][1],
                     'steps_to_90pct_expert': _steps_to(curve, expert_return, random_return)})
  mean_curve = runs.read_curve(metrics_path, 'eval_return')
  reached = [r['steps_to_90pct_expert'] for r in per_seed]
  results = {
      'algo': config.algo, 'env': config.env, 'env_steps': loop_config.num_env_steps,
      'num_trajectories': config.num_trajectories, 'seeds': seeds,
      'final_return': float(np.mean([r['final_return'] for r in per_seed])),
      'final_return_std': float(np.std([r['final_return'] for r in per_seed])),
      'expert_return': expert_return, 'expert_return_used_trajectories': meta['used_return_mean'],
      'random_return': random_return,
      'steps_to_90pct_expert': _steps_to(mean_curve, expert_return, random_return),
      'steps_to_90pct_expert_per_seed': reached,
      'learning_curve': mean_curve, 'per_seed': per_seed}
  if parts.discriminator is not None:
    for s, state in zip(seeds, agent_states):
      _save_reward(os.path.join(workdir, 'reward', f'seed{s}'), parts, state.discriminator, config)
    results['reward_dirs'] = [os.path.join(workdir, 'reward', f'seed{s}') for s in seeds]
  with open(os.path.join(workdir, 'results.json'), 'w', encoding='utf-8') as f:
    json.dump(results, f, indent=2)
  runs.plot_curves({f'{config.algo} (mean of {len(seeds)} seed{"s" * (len(seeds) > 1)})': mean_curve},
                   os.path.join(workdir, 'learning_curve.png'), f'{config.algo} on {config.env}',
                   'true return (deterministic policy)',
                   hlines={'expert': expert_return, 'random': random_return})
  print(f'{config.algo} on {config.env}: final return {results["final_return"]:.1f} '
        f'(expert {expert_return:.1f}, random {random_return:.1f}); steps to 90 % of the expert: '
        f'{results["steps_to_90pct_expert"]}; wrote {workdir}/results.json')


def _steps_to(curve, expert_return, random_return, fraction=0.9):
  """First step whose normalised score (R − R_random)/(R_expert − R_random) ≥ fraction, or None."""
  gap = expert_return - random_return
  for step, value in curve:
    if value is not None and gap > 0 and (value - random_return) / gap >= fraction:
      return step
  return None


def _random_return(env, spec, config, loop_config, is_jax) -> float:
  """Mean return of uniform random actions over `eval_episodes` episodes."""
  import jax
  import numpy as np
  from irl import loops
  key = jax.random.key(config.seed + 30_000)
  if is_jax:
    policy = lambda obs, k: loops._random_action(spec, k, obs.shape[0])  # pylint: disable=protected-access
    return float(jax.jit(lambda k: loops.evaluate(env, policy, k, loop_config.eval_episodes).mean())(key))
  from envs import registry
  eval_env = registry.make(config.env, num_envs=loop_config.eval_episodes, seed=config.seed + 30_000)
  greedy = lambda state, obs, k: loops._random_action(spec, k, obs.shape[0])  # pylint: disable=protected-access
  returns = loops._host_evaluate(eval_env, greedy, None, key)  # pylint: disable=protected-access
  eval_env.close()
  return float(np.mean(returns))


def _save_reward(directory, parts, discriminator_state, config):
  """The learned reward for transfer: `reward.json` + an orbax checkpoint of its parameters."""
  import dataclasses
  import numpy as np
  from experiment.checkpoint import Checkpointer
  os.makedirs(directory, exist_ok=True)
  with Checkpointer(os.path.join(directory, 'params')) as ckpt:
    ckpt.save(0, discriminator_state.params, {'env': config.env})
  record = {'format_version': 1, 'algo': config.algo, 'env': config.env,
            'discriminator_config': dataclasses.asdict(parts.discriminator.config),
            'obs_dim': parts.discriminator.obs_dim, 'act_dim': parts.discriminator.act_dim,
            'normalize_mean': np.asarray(parts.prep.mean).tolist(),
            'normalize_std': np.asarray(parts.prep.std).tolist(), 'absorbing': parts.prep.absorbing}
  with open(os.path.join(directory, 'reward.json'), 'w', encoding='utf-8') as f:
    json.dump(record, f, indent=1)


if __name__ == '__main__':
  app.run(main)
