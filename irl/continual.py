r"""Continual inverse RL: the reward learner seen as the binary classifier it is, so that the methods of
`cl.methods` (EWC, replay, K-priors, FROMP) consolidate it between tasks as they do a network.

OPIRL's discriminator is D(s, a, s') = σ(f(s, a, s')) (`irl.discriminator`), trained with expert
transitions labelled 1 and the policy's labelled 0. Written as a two-class softmax over the logits
[0, f], the class-1 probability is softmax([0, f])₁ = σ(f), and the cross-entropy with label y is the
discriminator's binary cross-entropy, term for term. `cl.methods` and `cl.dual` take any
`apply_fn(params, x) -> logits [N, C]`, so with `classifier_apply` below they need no change:

- the dual variables of a binary logistic output are the residual p − y and the curvature p(1 − p)
  (the constant logit has no Jacobian, so the two-class GGN is J_fᵀ p(1 − p) J_f, the binary one);
- memorable transitions are chosen by λ-descend on Σ_c p_c(1 − p_c) = 2 p(1 − p), the same order;
- K-priors' and FROMP's targets are the previous discriminator's σ(f) on the stored transitions.

A transition enters as one row x = [s, a, s'] (`transition_inputs`). Only OPIRL's form is covered:
AIRL's posterior logit f − log π (`use_log_pi`) depends on the policy, not on the reward learner alone.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from cl.methods.base import TaskData
from irl.discriminator import Discriminator, DiscriminatorParams
from irl.replay import Transition

EXPERT_LABEL, POLICY_LABEL = 1, 0  # the classes of `classifier_apply`'s two logits


def transition_inputs(batch: Transition) -> jax.Array:
  """[..., 2·obs_dim + act_dim] rows [s, a, s'] of `batch`: the classifier's input."""
  return jnp.concatenate([batch.obs, batch.action.astype(batch.obs.dtype), batch.next_obs], -1)


def classifier_apply(disc: Discriminator):
  """`apply_fn(params, x) -> [N, 2]` logits [0, f(s, a, s')] of the discriminator `disc` on rows x of
  `transition_inputs`, for `cl.methods` / `cl.dual` (module docstring). `params` are
  `DiscriminatorParams` (a `DiscriminatorState`'s `.params`)."""
  if disc.config.use_log_pi:
    raise ValueError(
      'irl.continual needs a discriminator without the log π term (use_log_pi=False, as OPIRL): '
      'the posterior logit depends on the policy, not on the reward learner alone'
    )
  obs_dim, act_dim = disc.obs_dim, disc.act_dim

  def apply_fn(params: DiscriminatorParams, x: jax.Array) -> jax.Array:
    obs, action = x[..., :obs_dim], x[..., obs_dim : obs_dim + act_dim]
    next_obs = x[..., obs_dim + act_dim :]
    f = disc.logits(params, obs, action, next_obs)
    return jnp.stack([jnp.zeros_like(f), f], axis=-1)

  return apply_fn


def task_data(expert: Transition, policy: Transition, task_index: int) -> TaskData:
  """One task's labelled transitions for `cl.methods`' `consolidate`: `expert` rows labelled 1, the
  policy's (replay) rows labelled 0, both classes open in the mask."""
  x = jnp.concatenate([transition_inputs(expert), transition_inputs(policy)], axis=0)
  y = jnp.concatenate(
    [
      jnp.full(expert.obs.shape[:1], EXPERT_LABEL, jnp.int32),
      jnp.full(policy.obs.shape[:1], POLICY_LABEL, jnp.int32),
    ]
  )
  return TaskData(
    x=x,
    y=y,
    mask=jnp.ones((x.shape[0], 2), bool),
    task_index=jnp.asarray(task_index, jnp.int32),
  )


def auc(positive_scores, negative_scores) -> float:
  """Area under the ROC curve of scores that should rank `positive_scores` above `negative_scores`:
  the probability that a random positive outscores a random negative, ties counting one half (the
  Mann–Whitney U statistic over n₊·n₋). 1 separates perfectly, 0.5 is chance."""
  pos = np.asarray(positive_scores, np.float64).ravel()
  neg = np.asarray(negative_scores, np.float64).ravel()
  if pos.size == 0 or neg.size == 0:
    raise ValueError(f'auc needs scores of both classes, got {pos.size} and {neg.size}')
  if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(neg))):
    raise ValueError('auc: the scores must be finite')
  neg_sorted = np.sort(neg)
  below = np.searchsorted(neg_sorted, pos, side='left')  # negatives strictly below each positive
  ties = np.searchsorted(neg_sorted, pos, side='right') - below
  return float(np.sum(below + 0.5 * ties) / (pos.size * neg.size))
