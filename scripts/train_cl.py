r"""Trains a continual-learning method on a task stream and writes its results to --workdir.

  python scripts/train_cl.py --config configs/cl/split_fmnist.py \
      --config.method=ewc --config.seed=3 --workdir runs/split_fmnist/ewc_3

Writes `config.json`, `metrics.jsonl`, TensorBoard events (`tensorboard/`), an orbax checkpoint after
each task (`checkpoints/<tasks done>/`), and at the end `results.json` and `accuracy_matrix.png`.
Rerunning the same command on the same workdir resumes from the last checkpoint.
"""

import os

from cljax import console, distributed

_CONFIG, _WORKDIR, _INIT_DISTRIBUTED = console.define_run_flags(
  'Config file.', 'Directory for this run (config, metrics, checkpoints, results).'
)


def main(argv):
  del argv
  import time

  from cljax.timing import Phases, RunClock  # deferred: jax

  clock = RunClock()  # the run's seconds: imports, data, compilation and training
  phases = Phases()  # this process's seconds by phase: results.json's `time`
  # Heavy imports after flag parsing, so that `--help` and config errors are instant.
  _INIT_DISTRIBUTED()  # jax.distributed, when one of several processes; before any JAX work
  import numpy as np
  from tqdm import tqdm

  from cl import builders, report, train
  from cl.data import DataError
  from cljax import mesh as mesh_lib
  from cljax import preemption, runs
  from cljax.checkpoint import Checkpointer
  from cljax.config import ConfigError
  from cljax.writers import JsonlWriter, MultiWriter, TensorBoardWriter

  phases.add('imports', time.perf_counter() - console.STARTED)
  config, workdir = _CONFIG.value, _WORKDIR.value
  primary = distributed.is_primary()  # only process 0 writes files other than checkpoints
  with console.bad_input(ConfigError, runs.WorkdirError, DataError):
    builders.validate_config(config)
    mesh = builders.build_mesh(config)
    if config.joint_reference and not os.path.isfile(config.joint_reference):
      raise ConfigError(
        'config.joint_reference must be the results.json of a joint run, '
        f'got {config.joint_reference!r} (no such file)'
      )
    if primary:
      runs.check_or_write_config(config, workdir, console.overridden_fields(_CONFIG))
    with phases('data'):
      stream = builders.build_stream(config)
  with phases('setup'):
    learner, method = builders.build_learner(config, stream, mesh)
    compiled = builders.compile_learner(config, learner, mesh)
    keys = builders.seed_keys(config, mesh)
  seeds = list(range(config.seed, config.seed + config.num_seeds))
  num_tasks = stream.num_tasks
  joint_accuracy = None
  if config.joint_reference:
    with console.bad_input(ValueError):
      joint_accuracy = report.joint_reference_accuracy(config.joint_reference, num_tasks)

  with Checkpointer(
    os.path.join(workdir, 'checkpoints'), max_to_keep=config.keep_checkpoints or None
  ) as ckpt:
    # A damaged newest checkpoint is reported and set aside, and the one before it used;
    # none restoring is one line from console.run (CheckpointError).
    with phases('checkpoints'):
      restored = ckpt.restore_newest(
        train.abstract_run_state(compiled, stream, keys, mesh),
        warn=print if primary else (lambda message: None),
      )
    if restored is None:
      with phases('evaluation'):  # the accuracy before training
        run_state = train.init_run(compiled, stream, keys, mesh=mesh)
      with phases('checkpoints'):
        ckpt.save(0, run_state, {'tasks_done': 0, 'wall_s': clock.elapsed()})
    else:
      _, run_state, meta = restored
      clock.resumed(meta.get('wall_s', 0.0))  # the seconds before the kill count too
      print(f'Resuming from the checkpoint after task {meta["tasks_done"]} of {num_tasks}.')

    writer = MultiWriter(
      [
        JsonlWriter(os.path.join(workdir, 'metrics.jsonl')),
        TensorBoardWriter(os.path.join(workdir, 'tensorboard')),
      ]
      if primary
      else []
    )
    bar = None

    def progress_fn(task, epoch, metrics):
      nonlocal bar
      if bar is None:
        bar = tqdm(
          total=config.epochs,
          desc=f'task {task + 1}/{num_tasks}',
          unit='epoch',
          disable=None if primary else True,
          leave=False,
        )
      scalars = {f'train/{k}': float(np.mean(v)) for k, v in metrics.items()}
      # Time: seconds since the run started, and this epoch's training examples (all seeds) per
      # second of wall-clock since the previous record (a task's first epoch includes compilation
      # and the previous task's evaluation and checkpoint).
      trained = stream.tasks[: task + 1] if method.cumulative else stream.tasks[task : task + 1]
      examples = sum(len(t.y_train) for t in trained)
      scalars['time/wall_s'] = clock.elapsed()
      scalars['time/examples_per_s'] = examples * config.num_seeds / clock.lap()
      writer.write_scalars(task * config.epochs + epoch + 1, {'task': task + 1, **scalars})
      bar.set_postfix(loss=f'{scalars["train/loss"]:.4f}')
      bar.update(1)

    def task_end_fn(rs):
      nonlocal bar
      if bar is not None:
        bar.close()
        bar = None
      t = int(rs.tasks_done)
      with phases('checkpoints'):
        ckpt.save(t, rs, {'tasks_done': t, 'wall_s': clock.elapsed()})
      guard.check(t)
      row = np.asarray(rs.accuracy_matrix)[:, t - 1]  # [S, T]
      val_row = np.asarray(rs.val_accuracy_matrix)[:, t - 1]
      scalars = {
        'eval/average_accuracy_seen': float(row[:, :t].mean()),
        'eval/val_average_accuracy_seen': float(val_row[:, :t].mean()),
      }
      scalars.update({f'eval/test_accuracy_task{j + 1}': float(row[:, j].mean()) for j in range(t)})
      writer.write_scalars(t * config.epochs, {'task': t, **scalars})
      if primary:
        tqdm.write(
          f'After task {t}: mean test accuracy on tasks seen '
          f'{scalars["eval/average_accuracy_seen"]:.4f}'
        )

    try:
      with preemption.exit_when_preempted(cleanup=writer.close) as guard:
        run_state = train.run_stream(
          compiled,
          stream,
          keys,
          epochs=config.epochs,
          **train.method_flags(method),
          run_state=run_state,
          progress_fn=progress_fn,
          task_end_fn=task_end_fn,
          mesh=mesh,
          seeds=seeds,
          phases=phases,
        )
    finally:  # a diverged run (DivergenceError, one line from console.run) too
      if bar is not None:
        bar.close()
      writer.close()
  if not primary:
    return

  with phases('report'):
    results = report.results_json(run_state, seeds, joint_accuracy)
    results.update(
      method=config.method,
      dataset=config.dataset,
      stream=stream.name,
      scenario=stream.scenario,
      mesh=mesh_lib.describe(mesh),
    )
    R_mean = np.asarray(run_state.accuracy_matrix).mean(0)
    title = f'{stream.name} ({stream.scenario}-IL), {config.method}, ' + (
      f'seed {seeds[0]}' if len(seeds) == 1 else f'mean of seeds {seeds[0]}..{seeds[-1]}'
    )
    report.plot_accuracy_matrix(R_mean, os.path.join(workdir, 'accuracy_matrix.png'), title)
  # This process's wall-clock by phase (a resumed run: since the resume), issue 16's breakdown.
  results['time'] = phases.summary(time.perf_counter() - console.STARTED)
  runs.write_results(workdir, results)

  print(f'{stream.name} ({stream.scenario}-incremental), method {config.method}, seed {seeds[0]}')
  print('Test accuracy matrix R (row i: after training task i; column j: task j):')
  print(report.format_matrix(results['accuracy_matrix'], results['accuracy_before']))
  for k in report.SCALARS + ('intransigence',):
    if k not in results:
      continue
    v = results[k]
    print(f'{k:>20}: ' + ('n/a' if v is None else f'{v:.4f}'))
  if len(seeds) > 1:
    print(
      f'Over seeds {seeds}: '
      + ', '.join(
        f'{k} {results["mean"][k]:.4f} ± {results["std"][k]:.4f}'
        for k in ('average_accuracy', 'forgetting')
        if results['mean'][k] is not None
      )
    )
  print(f'Wrote {workdir}/results.json and {workdir}/accuracy_matrix.png')


if __name__ == '__main__':
  console.run(main)
