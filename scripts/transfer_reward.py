r"""Reward transfer: trains SAC from scratch on a frozen learned reward (or on the true reward) in a
target environment and evaluates it on the target's true reward.

  python scripts/transfer_reward.py --config configs/irl/transfer.py:PointMaze-Right \
      --config.reward=runs/irl/pm_opirl/reward/seed0 --workdir runs/transfer/pm_right_opirl
  python scripts/transfer_reward.py --config configs/irl/transfer.py:AmputatedAnt \
      --config.reward=true --workdir runs/transfer/amputated_true

`--config.reward` is `true` (SAC on the environment's reward: the reference) or a directory that
scripts/train_irl.py wrote (`<workdir>/reward/seed<i>/`: `reward.json` and the parameters), learned in
`config.source_env`. With a learned reward, SAC's replay buffer holds observations preprocessed as the
reward's training data were (expert-statistics normalisation, absorbing states after terminations) and
its reward is the frozen r(s, a) (or whatever the reward's config gave the IRL policy); the evaluation
always uses the target environment's true return with the deterministic policy.

Writes `config.json`, `metrics.jsonl` / TensorBoard (`eval_return` the true return, SAC's losses,
`reward` the mean training reward of the sampled batches: the learned one when transferring), checkpoints of the whole state
(rerunning the command resumes), `learning_curve.png` and `results.json` with `reward` ('true' or the
directory), `source_algo`, `source_env`, `env`, `env_steps`, `final_return` (± `final_return_std`
over seeds), `random_return`, `learning_curve`, `per_seed` and `mesh`.

Scale as scripts/train_irl.py: `--config.mesh.enabled=True` splits the vmapped seeds of a JAX-native
target over the devices (and `mesh.model` the agent state), and under `srun` or with
`--coordinator_address/--num_processes/--process_id` the processes form one `jax.distributed` cluster
(process 0 writes the logs and results).
"""

import os

from cljax import console, distributed

_CONFIG, _WORKDIR, _INIT_DISTRIBUTED = console.define_run_flags(
  'Config file (configs/irl/transfer.py).'
)


def build(config):
  """(env, is_jax, agent, transform_fn, loop_config, reward record or None); ConfigError first."""
  from cljax.config import ConfigError, check_choice
  from envs import registry
  from envs.core import EnvError
  from irl import builders, rewards
  from irl.sac import agent as sac_agent

  check_choice('env', config.env, registry.JAX_ENVS + registry.GYM_ENVS)
  is_jax = registry.is_jax_env(config.env)
  builders.check_seeds(config, is_jax)
  loop_config = builders.loop_config_from(config.loop)
  sac_config = builders.dataclass_from_config(sac_agent.SACConfig, config.sac, 'sac')
  if not isinstance(config.reward, str) or not config.reward:
    raise ConfigError(f"config.reward must be 'true' or a reward directory, got {config.reward!r}")
  try:
    env = (
      registry.make(config.env)
      if is_jax
      else registry.make(config.env, num_envs=loop_config.num_envs, seed=config.seed)
    )
  except EnvError as e:
    raise ConfigError(f'config.env: {e}') from None
  if config.reward == 'true':
    return (
      env,
      is_jax,
      sac_agent.as_agent(sac_agent.make_sac(env.spec, sac_config)),
      None,
      loop_config,
      None,
    )
  loaded = rewards.load_reward(config.reward, env.spec)
  if loaded.record['env'] != config.source_env:
    raise ConfigError(
      f'config.reward: {config.reward} was learned on {loaded.record["env"]!r}; '
      f'transfers to {config.env} take rewards learned on config.source_env = '
      f'{config.source_env!r}'
    )
  policy = sac_agent.make_sac(loaded.prep.spec(env.spec), sac_config)
  agent = rewards.frozen_reward_agent(policy, loaded)
  return env, is_jax, agent, loaded.prep.transitions, loop_config, loaded.record


def main(argv):
  del argv
  _INIT_DISTRIBUTED()  # jax.distributed, when one of several processes; before any JAX work

  from cljax import mesh as mesh_lib
  from cljax import preemption, runs
  from cljax.config import ConfigError
  from envs import registry
  from irl import builders, report, train

  config, workdir = _CONFIG.value, _WORKDIR.value
  with console.bad_input(ConfigError, runs.WorkdirError):
    mesh = builders.build_mesh(config, registry.is_jax_env(config.env))
    env, is_jax, agent, transform_fn, loop_config, record = build(config)
    if distributed.is_primary():
      runs.check_or_write_config(config, workdir, console.overridden_fields(_CONFIG))

  seeds = list(range(config.seed, config.seed + config.num_seeds))
  source_algo = record['algo'] if record else 'true reward'
  random_return = report.random_return(config.env, env, loop_config.eval_episodes)
  with preemption.exit_when_preempted() as guard:
    train.train(
      workdir,
      env,
      agent,
      loop_config,
      seeds,
      env_name=config.env,
      transform_fn=transform_fn,
      desc=f'SAC on {source_algo} reward, {config.env}',
      mesh=mesh,
      model_min_size=config.mesh.model_min_size,
      seed_batching=config.seed_batching,
      keep_checkpoints=config.keep_checkpoints,
      after_checkpoint=guard.check,
    )
  if not is_jax:
    env.close()
  if not distributed.is_primary():
    return
  summary = report.summarise(workdir, seeds, None, random_return)
  results = {
    'reward': config.reward,
    'source_algo': source_algo,
    'source_env': record['env'] if record else None,
    'env': config.env,
    'env_steps': loop_config.num_env_steps,
    'mesh': mesh_lib.describe(mesh),
    **summary,
  }
  runs.write_results(workdir, results)
  runs.plot_curves(
    {f'SAC on {source_algo} reward': results['learning_curve']},
    os.path.join(workdir, 'learning_curve.png'),
    f'Reward transfer to {config.env}',
    'true return (deterministic policy)',
    hlines={'random': random_return},
  )
  print(
    f'SAC on the {source_algo} reward in {config.env}: final true return '
    f'{results["final_return"]:.1f} ± {results["final_return_std"]:.1f} (random '
    f'{random_return:.1f}); wrote {workdir}/results.json'
  )


if __name__ == '__main__':
  console.run(main)
