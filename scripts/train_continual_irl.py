r"""Continual inverse RL: OPIRL learns the reward of task after task of a stream, its reward learner
consolidated between tasks by a continual-learning method, and every task's reward is measured after
every task (irl/continual_train.py).

  python scripts/train_continual_irl.py --config configs/cirl/pointmaze_goals.py \
      --config.method=kpriors --workdir runs/cirl/kpriors
  python scripts/train_continual_irl.py --config configs/cirl/pointmaze_goals.py:quick \
      --config.method=finetune --workdir /tmp/cirl_smoke

`--config.method` is one of finetune, joint, ewc, online_ewc, replay, kpriors, fromp, fromp_l2,
ewc_fr_replay. Writes to --workdir: `config.json`; per task `task<t>/` (metrics.jsonl, TensorBoard,
checkpoints: OPIRL's run on that task); `stream/` (a checkpoint after each task: the discriminator,
the method's state, the matrices so far); and at the end `results.json` with `epic_matrix`,
`auc_matrix` (row i: after task i; column j: task j), `epic_before`, `auc_before`, their forgetting
metrics (`metrics.epic`, `metrics.auc`), the same per seed (`per_seed`) and `final_policy_returns`
(the policy check: SAC from scratch on each task's reward right after it was learned, `fresh`, and
on the final reward, `final`, their true returns, the random policy's, and `fraction`, the final
reward's normalised return as a fraction of the fresh one's; runs in `policy_check/`), plus
`epic_matrix.png`, `auc_matrix.png` and `epic_drift_matrix.png` (heatmaps; the drift matrix: EPIC
distance of each task's reward now to its reward right after the task, `epic_drift_matrix`).
Rerunning the same command resumes (SIGTERM or SIGUSR1: checkpoint, then exit 75, as the other
training scripts).
"""

from cljax import console

_CONFIG, _WORKDIR, _INIT_DISTRIBUTED = console.define_run_flags(
  'Config file (configs/cirl/pointmaze_goals.py).'
)


def main(argv):
  del argv
  _INIT_DISTRIBUTED()  # jax.distributed, when one of several processes; before any JAX work
  import os

  import numpy as np

  from cl import report
  from cljax import distributed, preemption, runs
  from cljax.config import ConfigError
  from irl import continual_train

  config, workdir = _CONFIG.value, _WORKDIR.value
  with console.bad_input(ConfigError, runs.WorkdirError):
    stream = continual_train.build_stream(config)
    if distributed.is_primary():
      runs.check_or_write_config(config, workdir, console.overridden_fields(_CONFIG))

  with preemption.exit_when_preempted() as guard:
    results = continual_train.train_stream(
      workdir, config, stream=stream, after_checkpoint=guard.check
    )
  if not distributed.is_primary():
    return
  for name, label in (
    ('epic', 'EPIC distance to the true reward'),
    ('auc', 'discriminator AUC'),
    ('epic_drift', 'EPIC distance to the reward as first learned'),
  ):
    report.plot_accuracy_matrix(
      np.asarray(results[f'{name}_matrix'], dtype=float),
      os.path.join(workdir, f'{name}_matrix.png'),
      title=f'{config.method} on {config.stream}',
      label=label,
    )
  runs.write_results(workdir, results)
  epic, auc = results['metrics']['epic'], results['metrics']['auc']
  show = lambda v: 'n/a' if v is None else f'{v:.3f}'  # noqa: E731 (one task: no forgetting)
  check = results.get('final_policy_returns')
  print(
    f'{config.method} on {config.stream}: average EPIC {show(epic["average_epic"])}, EPIC '
    f'forgetting {show(epic["epic_forgetting"])}; average AUC {show(auc["average_auc"])}, AUC '
    f'forgetting {show(auc["auc_forgetting"])}'
    + (f'; task 1 final/fresh reward policy {show(check["fraction"][0])}' if check else '')
    + f'; wrote {workdir}/results.json'
  )


if __name__ == '__main__':
  console.run(main)
