"""Variational continual learning with IVON (Nguyen et al., ICLR 2018; with IVON as in "Fast and Slow
Variational Continual Learning").

The posterior after task t, q_t = N(m_t, diag(1 / P_t)) with P_t = λ_t (h_t + δ_t) read from IVON's state,
becomes the prior of task t+1: IVON is re-initialised at the start of each task (fresh h, momentum) with
prior mean m_t and per-parameter prior precision δ_{t+1} = P_t / λ_{t+1} in IVON's per-example units,
λ_{t+1} being the new task's effective sample size. Training on task t+1 then minimises
E_q[ℓ_{t+1}] + KL(q ‖ q_t) / λ_{t+1}, the VCL objective. The method adds no loss term of its own: the
prior lives in the optimizer (`cl.ivon.IVONState.prior_mean / prior_prec`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from cl import ivon
from cl.methods.base import Method, no_after_step, no_loss


class VCLState(NamedTuple):
  prior_mean: object  # m_t
  prior_prec: object  # P_t, absolute precision of the posterior after the last finished task
  has_prior: jax.Array  # bool []: whether a task has finished


def vcl(*, ess: float | None = None, prior_scale: float = 1.0) -> Method:
  """VCL; `ess` is λ for every task (None: each task's number of training examples).

  `prior_scale` β multiplies the propagated precision: the prior of task t+1 is N(m_t, diag(1/(β P_t))).
  β = 1 is exact VCL. β < 1 is ours (a tempered prior, like online EWC's γ): the precision of an exact
  posterior grows with every task, IVON's steps shrink as 1/(h + δ), and in a few epochs per task the
  mean can no longer move far enough to fit new tasks; β < 1 trades some forgetting for plasticity.
  """

  def init(params):
    zeros = jax.tree.map(jnp.zeros_like, params)
    return VCLState(prior_mean=zeros, prior_prec=zeros, has_prior=jnp.zeros((), bool))

  def consolidate(state, params, data, key, opt_state=None):
    del data, key
    precision = jax.tree.map(lambda s: 1.0 / jnp.square(s), ivon.posterior_std(opt_state))
    return VCLState(prior_mean=params, prior_prec=precision, has_prior=jnp.ones((), bool))

  def prepare_optimizer(state, params, opt_state, data):
    del params
    new_ess = jnp.asarray(ess if ess else data.y.shape[0], jnp.float32)
    opt_state = opt_state._replace(ess=new_ess)
    propagated = ivon.with_prior(
      opt_state,
      state.prior_mean,
      jax.tree.map(lambda p: prior_scale * p / new_ess, state.prior_prec),
    )
    return jax.tree.map(lambda a, b: jnp.where(state.has_prior, a, b), propagated, opt_state)

  return Method(
    init=init,
    loss=no_loss,
    after_step=no_after_step,
    consolidate=consolidate,
    prepare_optimizer=prepare_optimizer,
  )
