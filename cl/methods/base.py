"""The method interface: a continual-learning method is a small set of pure functions.

The generic trainer (`cl.train`) minimises, for the current task's minibatch B,

    mean_{i in B} CE(y_i, masked_logits_i(params))  +  method.loss(params, method_state, key)

and calls the hooks below. Everything is jit-compiled and vmapped over seeds by the trainer, so a method
keeps all of its memory in `method_state` (a pytree of arrays with a shape fixed at `init`).

Bayes-duality methods plug into the same seams: `consolidate` is where dual parameters, memorable points
and kernels are computed after a task; `loss` is where functional regularisers (FROMP, K-priors, FR) and
replay terms live; `after_step` sees every update (SI's path integral).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from cl.models import masked_logits

Params = Any
MethodState = Any


@struct.dataclass
class TaskData:
  """Training examples of one task (or of the union of tasks, for joint training), on device."""

  x: jax.Array  # [N, ...] float32 inputs
  y: jax.Array  # [N] int32 labels (global class ids)
  mask: jax.Array  # [N, num_outputs] bool, logits each example may use
  task_index: (
    jax.Array
  )  # [] int32, index of the task these data belong to (the last one for unions)


class Method(NamedTuple):
  """Pure functions the trainer calls; see the module docstring."""

  init: Callable[[Params], MethodState]
  """Initial method state from the initial params."""
  loss: Callable[..., jax.Array]
  """`(params, state, key, num_past) -> scalar`: extra loss terms (penalties, replay, functional
  regularisers), added to the current minibatch's mean cross-entropy. `num_past` is the number of
  finished tasks as a static Python int when `static_task_count` is True (the trainer then compiles one
  epoch function per task), else None."""
  after_step: Callable[[MethodState, Params, Params, Params], MethodState]
  """`(state, params_before, params_after, data_grads) -> state`, after every optimizer step."""
  consolidate: Callable[..., MethodState]
  """`(state, params, task_data, key, opt_state=None) -> state` at the end of each task; `opt_state` is
  the optimizer's state (VCL reads IVON's posterior from it)."""
  prepare_optimizer: Callable[..., Any] | None = None
  """`(state, params, opt_state, task_data) -> opt_state` at the start of each task, after the optimizer
  state is (re)initialised; None = leave it. VCL writes the propagated prior into IVON's state here."""
  cumulative: bool = False
  """Whether the trainer should train on the union of all tasks seen so far (joint training)."""
  static_task_count: bool = False
  """Whether `loss` wants `num_past` as a static int, e.g. to touch only the memories of finished tasks."""


def cross_entropy(logits: jax.Array, labels: jax.Array, mask: jax.Array) -> jax.Array:
  """Mean softmax cross-entropy over the logits allowed by `mask`."""
  logp = jax.nn.log_softmax(masked_logits(logits, mask))
  return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=-1))


def no_loss(params, state, key, num_past=None):
  del params, state, key, num_past
  return jnp.zeros((), jnp.float32)


def no_after_step(state, params_before, params_after, grads):
  del params_before, params_after, grads
  return state


def no_consolidate(state, params, data, key, opt_state=None):
  del params, data, key, opt_state
  return state


def finetune() -> Method:
  """Plain sequential training: the lower bound."""
  return Method(
    init=lambda params: (), loss=no_loss, after_step=no_after_step, consolidate=no_consolidate
  )


def joint() -> Method:
  """Joint / multitask training: at task t, train on the union of tasks 1..t. The upper bound."""
  return finetune()._replace(cumulative=True)
