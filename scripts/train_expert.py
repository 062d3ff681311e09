r"""Trains a SAC expert (or evaluates a scripted one) and exports it for scripts/collect_demos.py.

  python scripts/train_expert.py --config configs/rl/sac.py:Hopper-v5 --workdir runs/expert/hopper
  python scripts/train_expert.py --config configs/rl/sac.py:PointMaze-Left --workdir runs/expert/maze

Writes to --workdir: `config.json`, `metrics.jsonl` and TensorBoard events (`tensorboard/`) per
evaluation period (eval_return, train_return, SAC losses, α), orbax checkpoints of the whole training
state (agent, replay buffer, keys) after every period (`checkpoints/`), and at the end
`learning_curve.png`, `results.json` and the expert (`expert/`: `expert.json` + `actor/`, read by
`irl.experts.load_policy`; `--export_dir` writes it elsewhere too). Rerunning the same command on the
same workdir resumes from the last checkpoint. JAX-native environments run the jitted loop one
evaluation period per call; Gymnasium ones the host loop.
"""

import json
import os
import sys

from absl import app, flags
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (configs/rl/sac.py:<env>).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for this run.')
_EXPORT = flags.DEFINE_string('export_dir', '', 'Also write the expert here (e.g. experts/<env>).')
_FINAL_EPISODES = flags.DEFINE_integer('final_eval_episodes', 20,
                                       'Deterministic episodes scored at the end for the expert\'s '
                                       'return mean and std.')
flags.mark_flags_as_required(['config', 'workdir'])

EXPERTS = ('sac', 'scripted')


def validate(config):
  """Raises ConfigError naming the first bad field, before anything is built."""
  from envs import registry
  from experiment.config import ConfigError, check_choice
  from irl import experts, loops
  from irl.sac import agent as sac_agent
  check_choice('env', config.env, registry.JAX_ENVS + registry.GYM_ENVS)
  check_choice('expert', config.expert, EXPERTS)
  if config.expert == 'scripted' and config.env not in experts.SCRIPTED:
    raise ConfigError(f'config.expert=scripted needs one of {sorted(experts.SCRIPTED)} as '
                      f'config.env, got {config.env!r} (use expert=sac)')
  try:
    sac_config = sac_agent.SACConfig(**{**config.sac.to_dict(),
                                        'hidden_sizes': tuple(config.sac.hidden_sizes)})
    sac_config.validate()
    loop_config = loops.LoopConfig(**config.loop.to_dict())
    loop_config.validate()
  except (TypeError, ValueError) as e:
    raise ConfigError(f'config.sac / config.loop: {e}') from None
  if _FINAL_EPISODES.value < 1:
    raise ConfigError(f'--final_eval_episodes must be >= 1, got {_FINAL_EPISODES.value}')
  return sac_config, loop_config


def main(argv):
  del argv
  import jax
  import numpy as np
  from tqdm import tqdm

  from envs import registry
  from experiment.checkpoint import Checkpointer
  from experiment.config import ConfigError
  from experiment import runs
  from experiment.writers import JsonlWriter, MultiWriter, TensorBoardWriter
  from irl import experts, loops
  from irl.sac import agent as sac_agent

  config = _CONFIG.value
  workdir = _WORKDIR.value
  try:
    sac_config, loop_config = validate(config)
  except ConfigError as e:
    raise app.UsageError(str(e)) from None
  try:
    runs.check_or_write_config(config, workdir)
  except runs.WorkdirError as e:
    raise app.UsageError(str(e)) from None

  is_jax = registry.is_jax_env(config.env)
  if is_jax:
    env = registry.make(config.env)
  else:
    env = registry.make(config.env, num_envs=loop_config.num_envs, seed=config.seed)
  spec = env.spec
  results = {'env': config.env, 'expert': config.expert, 'seed': config.seed}

  if config.expert == 'scripted':
    policy, _ = experts.load_policy('scripted', spec)
    returns = _final_returns(env, spec, policy, config, is_jax)
    results.update(env_steps=0, final_return=float(np.mean(returns)))
    meta = {'kind': 'scripted', 'env': spec.name, 'return_mean': float(np.mean(returns)),
            'return_std': float(np.std(returns)), 'num_eval_episodes': len(returns),
            'seed': config.seed}
    for directory in filter(None, (os.path.join(workdir, 'expert'), _EXPORT.value)):
      os.makedirs(directory, exist_ok=True)
      with open(os.path.join(directory, 'expert.json'), 'w', encoding='utf-8') as f:
        json.dump({'format_version': experts.FORMAT_VERSION, **meta}, f, indent=1)
    _finish(workdir, results, meta)
    return

  sac = sac_agent.make_sac(spec, sac_config)
  agent = sac_agent.as_agent(sac)
  key = jax.random.key(config.seed)
  writer = MultiWriter([JsonlWriter(os.path.join(workdir, 'metrics.jsonl')),
                        TensorBoardWriter(os.path.join(workdir, 'tensorboard'))])
  num_periods = loop_config.num_env_steps // loop_config.eval_every
  bar = tqdm(total=loop_config.num_env_steps, unit='step', disable=None, desc=config.env)
  pending = {}

  def log(env_steps, metrics):
    scalars = {k: float(v) for k, v in metrics.items() if k != 'env_steps'}
    writer.write_scalars(env_steps, scalars)
    bar.n = env_steps
    bar.set_postfix(eval_return=f'{scalars["eval_return"]:.1f}')
    bar.refresh()

  with Checkpointer(os.path.join(workdir, 'checkpoints'), max_to_keep=2) as ckpt:
    latest = ckpt.latest_step()
    if is_jax:
      abstract = jax.eval_shape(lambda k: loops.init_carry(env, agent, loop_config, k), key)
      if latest is None:
        carry, first = loops.init_carry(env, agent, loop_config, key), 0
      else:
        carry, meta = ckpt.restore(latest, abstract)
        first = meta['env_steps'] // loop_config.eval_every
        print(f'Resuming {workdir} at {meta["env_steps"]} environment steps.')
      for period in range(first, num_periods):
        carry, metrics = loops.train_periods(env, agent, loop_config, carry, period, num_periods=1)
        env_steps = (period + 1) * loop_config.eval_every
        # Log first: a kill between the two repeats this period's record (read_curve keeps the
        # last), while the other order could lose it.
        log(env_steps, {k: np.asarray(v)[0] for k, v in metrics.items()})
        ckpt.save(env_steps, carry, {'env_steps': env_steps})
      actor_params = carry.agent_state.actor_params
    else:
      eval_env = registry.make(config.env, num_envs=loop_config.eval_episodes,
                               seed=config.seed + 10_000)
      initial = None
      if latest is not None:
        initial, meta = ckpt.restore(latest, loops.abstract_host_carry(spec, agent, loop_config))
        print(f'Resuming {workdir} at {meta["env_steps"]} environment steps.')

      def progress_fn(env_steps, metrics):
        pending[env_steps] = metrics

      def checkpoint_fn(env_steps, carry):
        log(env_steps, pending.pop(env_steps))   # before saving: a kill may repeat it, not lose it
        ckpt.save(env_steps, carry, {'env_steps': env_steps})

      carry, _ = loops.train_host(env, agent, loop_config, key, eval_env=eval_env,
                                  progress_fn=progress_fn, checkpoint_fn=checkpoint_fn,
                                  initial=initial)
      actor_params = carry.agent_state.actor_params
  bar.close()
  writer.close()

  policy = lambda obs: sac.act(actor_params, obs, jax.random.key(0), True)
  returns = _final_returns(env, spec, policy, config, is_jax)
  curve = runs.read_curve(os.path.join(workdir, 'metrics.jsonl'))
  results.update(env_steps=loop_config.num_env_steps, final_return=float(np.mean(returns)),
                 learning_curve=curve)
  meta = {'return_mean': float(np.mean(returns)), 'return_std': float(np.std(returns)),
          'num_eval_episodes': len(returns), 'env_steps': loop_config.num_env_steps,
          'seed': config.seed, 'trained_with': 'scripts/train_expert.py ' + ' '.join(sys.argv[1:])}
  for directory in filter(None, (os.path.join(workdir, 'expert'), _EXPORT.value)):
    experts.save_sac_expert(directory, spec, sac_config, actor_params, meta)
  runs.plot_curves({'SAC': curve}, os.path.join(workdir, 'learning_curve.png'), f'SAC on {config.env}',
                   'evaluation return (deterministic)')
  _finish(workdir, results, meta)


def _final_returns(env, spec, policy, config, is_jax):
  import jax
  import numpy as np
  from envs import registry
  from irl import experts
  n = _FINAL_EPISODES.value
  if is_jax:
    arrays = experts.rollout_jax(env, policy, jax.random.key(config.seed + 20_000), n)
  else:
    single = registry.make(config.env, num_envs=1, seed=config.seed + 20_000)
    arrays = experts.rollout_host(single, policy, config.seed + 20_000, n)
    single.close()
  del spec
  return np.bincount(arrays['episode'], weights=arrays['reward'])


def _finish(workdir, results, meta):
  results.update(expert_return_mean=meta['return_mean'], expert_return_std=meta['return_std'])
  with open(os.path.join(workdir, 'results.json'), 'w', encoding='utf-8') as f:
    json.dump(results, f, indent=2)
  print(f'{results["env"]}: expert ({results["expert"]}) return {meta["return_mean"]:.1f} ± '
        f'{meta["return_std"]:.1f} over {meta["num_eval_episodes"]} deterministic episodes; '
        f'wrote {workdir}/results.json')


if __name__ == '__main__':
  app.run(main)
