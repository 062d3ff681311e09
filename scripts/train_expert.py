r"""Trains a SAC expert (or evaluates a scripted one) and exports it for scripts/collect_demos.py.

  python scripts/train_expert.py --config configs/rl/sac.py:Hopper-v5 --workdir runs/expert/hopper
  python scripts/train_expert.py --config configs/rl/sac.py:PointMaze-Left --workdir runs/expert/maze

Writes to --workdir: `config.json`, `metrics.jsonl` and TensorBoard events (`tensorboard/`) per
evaluation period (eval_return, train_return, SAC losses, α), orbax checkpoints of the whole training
state (agent, replay buffer, keys) after every period (`checkpoints/`), and at the end
`learning_curve.png`, `results.json` and the expert (`expert/`: `expert.json` + `actor/`, read by
`irl.experts.load_policy`; `--export_dir` writes it elsewhere too). Rerunning the same command on the
same workdir resumes from the last checkpoint (SIGTERM or SIGUSR1: checkpoint, then exit 75, as the
other training scripts). JAX-native environments run the jitted loop one
evaluation period per call; Gymnasium ones the host loop. Training is `irl.train.train` with one
seed, as the IRL scripts': `--config.mesh.enabled=True` (JAX-native environments) places the run on a
device mesh, whose `model` axis (by default all devices) splits the agent's large leaves, and under
`srun` or with `--coordinator_address/--num_processes/--process_id` the processes form one
`jax.distributed` cluster (process 0 writes the logs, results and the expert).
"""

import json
import os
import sys

from absl import flags

from cljax import console, distributed

_CONFIG, _WORKDIR, _INIT_DISTRIBUTED = console.define_run_flags(
  'Config file (configs/rl/sac.py:<env>).'
)
_EXPORT = flags.DEFINE_string('export_dir', '', 'Also write the expert here (e.g. experts/<env>).')
_FINAL_EPISODES = flags.DEFINE_integer(
  'final_eval_episodes',
  20,
  "Deterministic episodes scored at the end for the expert's return mean and std.",
)

EXPERTS = ('sac', 'scripted')


def validate(config):
  """Raises ConfigError naming the first bad field, before anything is built."""
  from cljax.config import ConfigError, check_choice
  from envs import registry
  from irl import experts, loops
  from irl.sac import agent as sac_agent

  check_choice('env', config.env, registry.JAX_ENVS + registry.GYM_ENVS)
  check_choice('expert', config.expert, EXPERTS)
  if config.expert == 'scripted' and config.env not in experts.SCRIPTED:
    raise ConfigError(
      f'config.expert=scripted needs one of {sorted(experts.SCRIPTED)} as '
      f'config.env, got {config.env!r} (use expert=sac)'
    )
  try:
    sac_config = sac_agent.SACConfig(
      **{**config.sac.to_dict(), 'hidden_sizes': tuple(config.sac.hidden_sizes)}
    )
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
  _INIT_DISTRIBUTED()  # jax.distributed, when one of several processes; before any JAX work
  import jax
  import numpy as np

  from cljax import mesh as mesh_lib
  from cljax import preemption, runs
  from cljax.config import ConfigError
  from envs import registry
  from irl import builders, experts, train
  from irl.sac import agent as sac_agent

  config, workdir = _CONFIG.value, _WORKDIR.value
  primary = distributed.is_primary()
  with console.bad_input(ConfigError, runs.WorkdirError):
    sac_config, loop_config = validate(config)
    is_jax = registry.is_jax_env(config.env)
    mesh = builders.build_mesh(config, is_jax, num_seeds=1)
    if primary:
      runs.check_or_write_config(config, workdir, console.overridden_fields(_CONFIG))

  if is_jax:
    env = registry.make(config.env)
  else:
    env = registry.make(config.env, num_envs=loop_config.num_envs, seed=config.seed)
  spec = env.spec
  results = {
    'env': config.env,
    'expert': config.expert,
    'seed': config.seed,
    'mesh': mesh_lib.describe(mesh),
  }

  if config.expert == 'scripted':
    policy, _ = experts.load_policy('scripted', spec)
    returns = _final_returns(env, spec, policy, config, is_jax)
    results.update(env_steps=0, final_return=float(np.mean(returns)))
    meta = {
      'kind': 'scripted',
      'env': spec.name,
      'return_mean': float(np.mean(returns)),
      'return_std': float(np.std(returns)),
      'num_eval_episodes': len(returns),
      'seed': config.seed,
    }
    if primary:
      for directory in filter(None, (os.path.join(workdir, 'expert'), _EXPORT.value)):
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, 'expert.json'), 'w', encoding='utf-8') as f:
          json.dump({'format_version': experts.FORMAT_VERSION, **meta}, f, indent=1)
      _finish(workdir, results, meta)
    return

  sac = sac_agent.make_sac(spec, sac_config)
  with preemption.exit_when_preempted() as guard:
    states = train.train(
      workdir,
      env,
      sac_agent.as_agent(sac),
      loop_config,
      [config.seed],
      env_name=config.env,
      desc=config.env,
      mesh=mesh,
      model_min_size=config.mesh.model_min_size,
      after_checkpoint=guard.check,
    )
  actor_params = jax.tree.map(distributed.to_host, states[0].actor_params)

  policy = lambda obs: sac.act(actor_params, obs, jax.random.key(0), True)
  returns = _final_returns(env, spec, policy, config, is_jax)
  if not is_jax:
    env.close()
  meta = {
    'return_mean': float(np.mean(returns)),
    'return_std': float(np.std(returns)),
    'num_eval_episodes': len(returns),
    'env_steps': loop_config.num_env_steps,
    'seed': config.seed,
    'trained_with': 'scripts/train_expert.py ' + ' '.join(sys.argv[1:]),
  }
  for directory in filter(None, (os.path.join(workdir, 'expert'), _EXPORT.value)):
    experts.save_sac_expert(directory, spec, sac_config, actor_params, meta)  # every process
  if not primary:
    return
  curve = runs.read_curve(os.path.join(workdir, 'metrics.jsonl'))
  results.update(
    env_steps=loop_config.num_env_steps, final_return=float(np.mean(returns)), learning_curve=curve
  )
  runs.plot_curves(
    {'SAC': curve},
    os.path.join(workdir, 'learning_curve.png'),
    f'SAC on {config.env}',
    'evaluation return (deterministic)',
  )
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
  from cljax import runs

  results.update(expert_return_mean=meta['return_mean'], expert_return_std=meta['return_std'])
  runs.write_results(workdir, results)
  print(
    f'{results["env"]}: expert ({results["expert"]}) return {meta["return_mean"]:.1f} ± '
    f'{meta["return_std"]:.1f} over {meta["num_eval_episodes"]} deterministic episodes; '
    f'wrote {workdir}/results.json'
  )


if __name__ == '__main__':
  console.run(main)
