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
`expert_return`, `random_return`, `steps_to_90pct_expert`, the per-seed values and, for the
discriminator-based algorithms, `discriminator`: its config as trained (the learning rate each
algorithm resolved when `config.discriminator.learning_rate` is None).

`steps_to_90pct_expert` is the first evaluation step at which the normalised score
(R − R_random) / (R_expert − R_random) reaches 0.9 (null if never), where R_expert is the mean return of
the demonstrations file's episodes and R_random that of uniform random actions on the same evaluation
episodes. Normalising by the random return makes "90 % of the expert" meaningful for negative returns
(PointMaze) and equal to the plain ratio when random scores 0.
"""

import os

from cljax import console, distributed

_CONFIG, _WORKDIR, _INIT_DISTRIBUTED = console.define_run_flags('Config file (configs/irl/*.py).')


def main(argv):
  del argv
  _INIT_DISTRIBUTED()  # jax.distributed, when one of several processes; before any JAX work
  import dataclasses
  import time

  import jax

  from cljax import mesh as mesh_lib
  from cljax import preemption, runs
  from cljax.config import ConfigError
  from cljax.timing import Phases
  from irl import builders, report, rewards, train

  phases = Phases()  # this process's seconds by phase: results.json's `time`
  phases.add('imports', time.perf_counter() - console.STARTED)
  config, workdir = _CONFIG.value, _WORKDIR.value
  with console.bad_input(ConfigError, runs.WorkdirError), phases('data'):
    # The demonstrations, and the environment and agent built around them.
    built = builders.build(config)
    mesh = builders.build_mesh(config, built.is_jax)
    if distributed.is_primary():
      runs.check_or_write_config(config, workdir, console.overridden_fields(_CONFIG))

  seeds = list(range(config.seed, config.seed + config.num_seeds))
  loop_config, parts = built.loop_config, built.parts
  with phases('evaluation'):  # the uniform-random policy's reference return
    random_return = report.random_return(config.env, built.env, loop_config.eval_episodes)
  with preemption.exit_when_preempted() as guard:
    states = train.train(
      workdir,
      built.env,
      built.agent,
      loop_config,
      seeds,
      env_name=config.env,
      expert_buffer=built.expert_buffer,
      transform_fn=parts.prep.transitions,
      desc=f'{config.algo} {config.env}',
      mesh=mesh,
      model_min_size=config.mesh.model_min_size,
      seed_batching=config.seed_batching,
      keep_checkpoints=config.keep_checkpoints,
      after_checkpoint=guard.check,
      phases=phases,
    )
  if not built.is_jax:
    built.env.close()

  reward_dirs = []
  if parts.discriminator is not None:  # every process: orbax saves collectively
    with phases('checkpoints'):  # the learned rewards
      for s, state in zip(seeds, states):
        reward_dirs.append(os.path.join(os.path.abspath(workdir), 'reward', f'seed{s}'))
        rewards.save_reward(
          reward_dirs[-1], parts, state.discriminator, algo=config.algo, env=config.env
        )
  if not distributed.is_primary():
    return

  with phases('report'):
    expert_return = float(built.meta['return_mean'])
    summary = report.summarise(workdir, seeds, expert_return, random_return)
    results = {
      'algo': config.algo,
      'env': config.env,
      'env_steps': loop_config.num_env_steps,
      'num_trajectories': config.num_trajectories,
      'expert_return': expert_return,
      'expert_return_used_trajectories': built.meta['used_return_mean'],
      'mesh': mesh_lib.describe(mesh),
      'device': jax.devices()[0].device_kind,  # the wall-clock figures are this device's
      **summary,
    }
    if reward_dirs:
      results['reward_dirs'] = reward_dirs
    if (
      parts.discriminator is not None
    ):  # as trained: config.json shows None for "the algorithm's own"
      results['discriminator'] = dataclasses.asdict(parts.discriminator.config)
    runs.plot_curves(
      {
        f'{config.algo} (mean of {len(seeds)} seed{"s" * (len(seeds) > 1)})': results[
          'learning_curve'
        ]
      },
      os.path.join(workdir, 'learning_curve.png'),
      f'{config.algo} on {config.env}',
      'true return (deterministic policy)',
      hlines={'expert': expert_return, 'random': random_return},
    )
  # This process's wall-clock by phase (a resumed run: since the resume), issue 16's breakdown.
  results['time'] = phases.summary(time.perf_counter() - console.STARTED)
  runs.write_results(workdir, results)
  reached = results['steps_to_90pct_expert']
  print(
    f'{config.algo} on {config.env}: final return {results["final_return"]:.1f} '
    f'(expert {expert_return:.1f}, random {random_return:.1f}); 90 % of the expert: '
    f'{"not reached" if reached is None else f"reached after {reached:,} steps"}; '
    f'wrote {workdir}/results.json'
  )


if __name__ == '__main__':
  console.run(main)
