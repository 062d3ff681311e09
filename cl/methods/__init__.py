"""Continual-learning methods behind one interface (`cl.methods.base.Method`)."""

from __future__ import annotations

from cl.hparams import METHODS
from cl.methods.base import Method, TaskData, cross_entropy, finetune, joint
from cl.methods.ewc import FISHER_TYPES, diagonal_fisher, ewc, online_ewc
from cl.methods.functional import (
  SELECTION_RULES,
  TARGETS,
  TASKS_PER_STEP,
  ewc_fr_replay,
  fromp,
  kpriors,
)
from cl.methods.replay import MEMORY_SELECTIONS, replay
from cl.methods.si import si
from cl.methods.vcl import vcl


def make_method(
  config, apply_fn, *, input_shape, num_outputs: int, num_tasks: int, classes_per_task: int
) -> Method:
  """Builds the method named by `config.method` from its sub-config (`config.ewc`, `config.si`, ...)."""
  name = config.method

  def memory_args(c):
    """The arguments every functional-memory method takes: the stream's shapes and the memory's
    size, selection, schedule and targets from its sub-config `c`."""
    return dict(
      input_shape=input_shape,
      num_outputs=num_outputs,
      num_tasks=num_tasks,
      classes_per_task=classes_per_task,
      memory_per_task=c.memory_per_task,
      tau=c.tau,
      selection=c.selection,
      tasks_per_step=c.tasks_per_step,
      targets=c.targets,
    )

  if name in ('fromp', 'fromp_l2'):
    c = config.fromp
    return fromp(
      apply_fn,
      prior_precision=c.prior_precision,
      jitter=c.jitter,
      relative_jitter=c.relative_jitter,
      use_kernel=name == 'fromp',
      ggn_num_examples=c.ggn_num_examples,
      **memory_args(c),
    )
  if name == 'kpriors':
    c = config.kpriors
    return kpriors(
      apply_fn,
      delta=c.delta,
      **memory_args(c),
    )
  if name == 'ewc_fr_replay':
    c = config.ewc_fr_replay
    return ewc_fr_replay(
      apply_fn,
      ewc_lambda=c.ewc_lambda,
      replay_weight=c.replay_weight,
      m2_fraction=c.m2_fraction,
      temperature=c.temperature,
      fisher_num_examples=c.fisher_num_examples,
      fisher_type=c.fisher_type,
      **memory_args(c),
    )
  if name == 'vcl':
    return vcl(ess=config.ivon.ess or None, prior_scale=config.vcl.prior_scale)
  if name == 'finetune':
    return finetune()
  if name == 'joint':
    return joint()
  if name == 'ewc':
    c = config.ewc
    return ewc(
      apply_fn,
      num_tasks=num_tasks,
      ewc_lambda=c.ewc_lambda,
      fisher_num_examples=c.fisher_num_examples,
      fisher_type=c.fisher_type,
    )
  if name == 'online_ewc':
    c = config.ewc
    return online_ewc(
      apply_fn,
      ewc_lambda=c.ewc_lambda,
      gamma=c.gamma,
      fisher_num_examples=c.fisher_num_examples,
      fisher_type=c.fisher_type,
    )
  if name == 'si':
    return si(si_c=config.si.c, xi=config.si.xi)
  if name == 'replay':
    c = config.replay
    return replay(
      apply_fn,
      input_shape=input_shape,
      num_outputs=num_outputs,
      num_tasks=num_tasks,
      memory_size=c.memory_size,
      replay_batch_size=c.batch_size,
      replay_weight=c.weight,
      selection=c.selection,
    )
  raise ValueError(f'config.method must be one of {list(METHODS)}, got {name!r}')


__all__ = [
  'FISHER_TYPES',
  'MEMORY_SELECTIONS',
  'METHODS',
  'SELECTION_RULES',
  'TASKS_PER_STEP',
  'Method',
  'TaskData',
  'cross_entropy',
  'diagonal_fisher',
  'ewc',
  'ewc_fr_replay',
  'finetune',
  'fromp',
  'joint',
  'kpriors',
  'vcl',
  'make_method',
  'online_ewc',
  'replay',
  'si',
]
