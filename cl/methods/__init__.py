"""Continual-learning methods behind one interface (`cl.methods.base.Method`)."""

from __future__ import annotations

from cl.methods.base import Method, TaskData, cross_entropy, finetune, joint
from cl.methods.ewc import FISHER_TYPES, diagonal_fisher, ewc, online_ewc
from cl.methods.replay import MEMORY_SELECTIONS, replay
from cl.methods.si import si

METHODS = ('finetune', 'joint', 'ewc', 'online_ewc', 'si', 'replay')


def make_method(config, apply_fn, *, input_shape, num_outputs: int, num_tasks: int) -> Method:
  """Builds the method named by `config.method` from its sub-config (`config.ewc`, `config.si`, ...)."""
  name = config.method
  if name == 'finetune':
    return finetune()
  if name == 'joint':
    return joint()
  if name == 'ewc':
    c = config.ewc
    return ewc(apply_fn, num_tasks=num_tasks, ewc_lambda=c.ewc_lambda,
               fisher_num_examples=c.fisher_num_examples, fisher_type=c.fisher_type)
  if name == 'online_ewc':
    c = config.ewc
    return online_ewc(apply_fn, ewc_lambda=c.ewc_lambda, gamma=c.gamma,
                      fisher_num_examples=c.fisher_num_examples, fisher_type=c.fisher_type)
  if name == 'si':
    return si(si_c=config.si.c, xi=config.si.xi)
  if name == 'replay':
    c = config.replay
    return replay(apply_fn, input_shape=input_shape, num_outputs=num_outputs, num_tasks=num_tasks,
                  memory_size=c.memory_size, replay_batch_size=c.batch_size,
                  replay_weight=c.weight, selection=c.selection)
  raise ValueError(f'config.method must be one of {list(METHODS)}, got {name!r}')


__all__ = ['FISHER_TYPES', 'MEMORY_SELECTIONS', 'METHODS', 'Method', 'TaskData', 'cross_entropy',
           'diagonal_fisher', 'ewc', 'finetune', 'joint', 'make_method', 'online_ewc', 'replay', 'si']
