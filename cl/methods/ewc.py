"""Elastic weight consolidation (Kirkpatrick et al., PNAS 2017) and online EWC (Schwarz et al., 2018).

EWC keeps one quadratic penalty per past task s, with the diagonal Fisher F_s and the parameters θ*_s at the
end of task s:

    (λ/2) Σ_{s<t} Σ_k F_{s,k} (θ_k − θ*_{s,k})².

Online EWC keeps a single running Fisher F ← γ F + F_t and the last anchor θ*_{t−1}:

    (λ/2) Σ_k F_k (θ_k − θ*_{t−1,k})².

The Fisher is the average over (up to `fisher_num_examples`) training examples of the squared gradient
of log p(y|x), with y sampled from the model ("sampled", the true Fisher's Monte-Carlo estimate, as in the
EWC paper) or the true label ("empirical").
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from cl.methods.base import Method, TaskData, no_after_step
from cl.models import masked_logits

FISHER_TYPES = ('sampled', 'empirical')


def diagonal_fisher(
  apply_fn,
  params,
  data: TaskData,
  key: jax.Array,
  *,
  num_examples: int,
  fisher_type: str = 'sampled',
  chunk_size: int = 128,
):
  """Diagonal Fisher, mean over a random subset of `num_examples` training examples."""
  n_total = data.x.shape[0]
  n = min(num_examples, n_total)
  chunk = min(chunk_size, n)
  n = (n // chunk) * chunk
  subset_key, label_key = jax.random.split(key)
  idx = jax.random.permutation(subset_key, n_total)[:n]

  def log_likelihood(p, x, y, mask):
    logits = masked_logits(apply_fn(p, x[None]), mask[None])[0]
    return jax.nn.log_softmax(logits)[y]

  def sq_grads(inputs):
    x, mask, y_true, k = inputs
    if fisher_type == 'sampled':
      y = jax.random.categorical(k, masked_logits(apply_fn(params, x[None]), mask[None])[0])
    else:
      y = y_true
    g = jax.grad(log_likelihood)(params, x, y, mask)
    return jax.tree.map(jnp.square, g)

  def chunk_sum(inputs):
    per_example = jax.vmap(sq_grads)(inputs)
    return jax.tree.map(lambda a: a.sum(0), per_example)

  keys = jax.random.split(label_key, n)
  inputs = (data.x[idx], data.mask[idx], data.y[idx], keys)
  chunks = jax.tree.map(lambda a: a.reshape((n // chunk, chunk) + a.shape[1:]), inputs)
  sums = jax.lax.map(chunk_sum, chunks)
  return jax.tree.map(lambda s: s.sum(0) / n, sums)


class EWCState(NamedTuple):
  anchors: object  # params pytree with a leading [num_tasks] axis
  fishers: object  # same structure
  num_penalties: jax.Array  # int32: how many of the slots hold a penalty


def ewc(
  apply_fn,
  *,
  num_tasks: int,
  ewc_lambda: float,
  fisher_num_examples: int = 1024,
  fisher_type: str = 'sampled',
) -> Method:
  """EWC with one penalty (F_s, θ*_s) per past task."""

  def init(params):
    zeros = jax.tree.map(lambda p: jnp.zeros((num_tasks,) + p.shape, p.dtype), params)
    return EWCState(anchors=zeros, fishers=zeros, num_penalties=jnp.zeros((), jnp.int32))

  def loss(params, state, key, num_past=None):
    del key, num_past
    active = (jnp.arange(num_tasks) < state.num_penalties).astype(jnp.float32)

    def term(p, anchor, fisher):
      per_task = jnp.sum((fisher * jnp.square(p[None] - anchor)).reshape(num_tasks, -1), axis=1)
      return jnp.sum(active * per_task)

    terms = jax.tree.map(term, params, state.anchors, state.fishers)
    return 0.5 * ewc_lambda * sum(jax.tree.leaves(terms))

  def consolidate(state, params, data, key, opt_state=None):
    del opt_state
    fisher = diagonal_fisher(
      apply_fn, params, data, key, num_examples=fisher_num_examples, fisher_type=fisher_type
    )
    slot = jnp.minimum(state.num_penalties, num_tasks - 1)
    put = lambda stack, x: jax.lax.dynamic_update_index_in_dim(stack, x, slot, axis=0)
    return EWCState(
      anchors=jax.tree.map(put, state.anchors, params),
      fishers=jax.tree.map(put, state.fishers, fisher),
      num_penalties=state.num_penalties + 1,
    )

  return Method(init=init, loss=loss, after_step=no_after_step, consolidate=consolidate)


class OnlineEWCState(NamedTuple):
  anchor: object
  fisher: object


def online_ewc(
  apply_fn,
  *,
  ewc_lambda: float,
  gamma: float = 1.0,
  fisher_num_examples: int = 1024,
  fisher_type: str = 'sampled',
) -> Method:
  """Online EWC: one running Fisher F ← γF + F_t and one anchor θ*_{t−1}."""

  def init(params):
    zeros = jax.tree.map(jnp.zeros_like, params)
    return OnlineEWCState(anchor=zeros, fisher=zeros)

  def loss(params, state, key, num_past=None):
    del key, num_past
    terms = jax.tree.map(
      lambda p, a, f: jnp.sum(f * jnp.square(p - a)), params, state.anchor, state.fisher
    )
    return 0.5 * ewc_lambda * sum(jax.tree.leaves(terms))

  def consolidate(state, params, data, key, opt_state=None):
    del opt_state
    fisher = diagonal_fisher(
      apply_fn, params, data, key, num_examples=fisher_num_examples, fisher_type=fisher_type
    )
    return OnlineEWCState(
      anchor=params, fisher=jax.tree.map(lambda old, new: gamma * old + new, state.fisher, fisher)
    )

  return Method(init=init, loss=loss, after_step=no_after_step, consolidate=consolidate)
