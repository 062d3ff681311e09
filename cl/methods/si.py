"""Synaptic intelligence (Zenke, Poole & Ganguli, ICML 2017).

During task s, each parameter accumulates the path integral ω_k = −Σ_steps g_k Δθ_k, where g is the
gradient of the *unregularised* task loss (as in the paper's released code) and Δθ the step actually
taken. At the end of the task the importance grows by Ω_k += ω_k / ((Δ_k)² + ξ), with Δ_k the total
change of θ_k over the task, and the anchor moves to the current parameters. The penalty is

    c Σ_k Ω_k (θ_k − θ*_k)²       (the paper's eq. 4, no factor 1/2).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from cl.methods.base import Method


class SIState(NamedTuple):
  path_integral: object  # ω for the current task
  importance: object  # Ω, summed over past tasks
  anchor: object  # θ* at the end of the last task
  task_start: object  # θ at the start of the current task


def si(*, si_c: float, xi: float = 1e-3) -> Method:

  def init(params):
    zeros = jax.tree.map(jnp.zeros_like, params)
    return SIState(path_integral=zeros, importance=zeros, anchor=params, task_start=params)

  def loss(params, state, key, num_past=None):
    del key, num_past
    terms = jax.tree.map(
      lambda p, o, a: jnp.sum(o * jnp.square(p - a)), params, state.importance, state.anchor
    )
    return si_c * sum(jax.tree.leaves(terms))

  def after_step(state, params_before, params_after, grads):
    path = jax.tree.map(
      lambda w, g, a, b: w - g * (a - b), state.path_integral, grads, params_after, params_before
    )
    return state._replace(path_integral=path)

  def consolidate(state, params, data, key, opt_state=None):
    del data, key, opt_state
    importance = jax.tree.map(
      lambda o, w, p, s: o + w / (jnp.square(p - s) + xi),
      state.importance,
      state.path_integral,
      params,
      state.task_start,
    )
    zeros = jax.tree.map(jnp.zeros_like, params)
    return SIState(path_integral=zeros, importance=importance, anchor=params, task_start=params)

  return Method(init=init, loss=loss, after_step=after_step, consolidate=consolidate)
