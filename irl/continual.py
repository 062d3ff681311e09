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

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from cl.methods.base import Method, TaskData
from irl import epic, loops
from irl.discriminator import Discriminator, DiscriminatorParams
from irl.replay import Transition

EXPERT_LABEL, POLICY_LABEL = 1, 0  # the classes of `classifier_apply`'s two logits


class Consolidation(NamedTuple):
  """A `cl.methods.Method` consolidating the reward learner (`irl.opirl.make_opirl`'s
  `consolidation`): its state lives in the agent state's `consolidation` field, its term is added to
  the discriminator's loss. `num_past` is the number of finished tasks, static for methods that
  want it (`Method.static_task_count`), else None."""

  method: Method
  num_past: int | None

  def init(self, params: DiscriminatorParams) -> Any:
    return self.method.init(params)

  def loss(self, params: DiscriminatorParams, state: Any, key: jax.Array) -> jax.Array:
    return self.method.loss(params, state, key, self.num_past)


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


class TaskEvaluation(NamedTuple):
  """What one task's reward is measured on (`evaluation_data`), fixed for a whole run: EPIC's
  coverage (`irl.epic.Coverage`: the task's held-out expert transitions, uniform-random-policy
  transitions and uniformly drawn states, each stepped once with a uniform action) and the AUC's two
  classes (held-out expert transitions against the random policy's)."""

  coverage: epic.Coverage
  expert: Transition
  random: Transition


def random_policy_transitions(env, key: jax.Array, num_episodes: int) -> Transition:
  """[num_episodes · T] transitions of uniform random actions in `env` (a JAX-native environment
  with `max_episode_steps` T; episodes are cut there, never reset inside)."""
  steps = env.spec.max_episode_steps

  def episode(key):
    reset_key, action_key = jax.random.split(key)
    state, obs = env.reset(reset_key)
    actions = loops.random_action(env.spec, action_key, steps)

    def body(carry, action):
      state, obs = carry
      state, next_obs, reward, terminated, truncated, _ = env.step(state, action)
      row = Transition(obs, action, reward, next_obs, terminated, truncated)
      return (state, next_obs), row

    return jax.lax.scan(body, (state, obs), actions)[1]

  rows = jax.vmap(episode)(jax.random.split(key, num_episodes))
  return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), rows)


def uniform_state_transitions(env, key: jax.Array, num: int) -> Transition:
  """[num] transitions from states drawn by `env.uniform_state` (e.g. `envs.pointmaze`), one uniform
  action each."""
  if not hasattr(env, 'uniform_state'):
    raise ValueError(f'{env.spec.name} has no uniform_state: EPIC needs it for its coverage')
  state_key, action_key = jax.random.split(key)
  states, obs = jax.vmap(env.uniform_state)(jax.random.split(state_key, num))
  actions = loops.random_action(env.spec, action_key, num)
  _, next_obs, reward, terminated, truncated, _ = jax.vmap(env.step)(states, actions)
  return Transition(obs, actions, reward, next_obs, terminated, truncated)


def evaluation_data(
  env,
  held_out_expert: Transition,
  key: jax.Array,
  *,
  num_random_episodes: int,
  num_uniform: int,
  num_samples: int,
  transform_fn=None,
) -> TaskEvaluation:
  """One task's `TaskEvaluation` (the coverage mixes the three sources in the proportions given:
  every held-out expert row, `num_random_episodes` random episodes, `num_uniform` uniform states).
  EPIC's S and S' are `num_samples` of the coverage's states, its A uniform actions. `transform_fn`
  is the learners' preprocessing (`ObsTransform.transitions`), applied to every row."""
  random_key, uniform_key, sample_key, action_key = jax.random.split(key, 4)
  size = (
    held_out_expert.obs.shape[0] + num_random_episodes * env.spec.max_episode_steps + num_uniform
  )
  if num_samples > size:
    raise ValueError(f'num_samples ({num_samples}) exceeds the coverage ({size} transitions)')
  prep = (lambda t: transform_fn(t)[0]) if transform_fn is not None else (lambda t: t)
  expert = prep(jax.tree.map(jnp.asarray, held_out_expert))
  random_rows = prep(random_policy_transitions(env, random_key, num_random_episodes))
  uniform_rows = prep(uniform_state_transitions(env, uniform_key, num_uniform))
  rows = jax.tree.map(lambda *x: jnp.concatenate(x), expert, random_rows, uniform_rows)
  pick = jax.random.choice(sample_key, rows.obs.shape[0], (num_samples,), replace=False)
  coverage = epic.Coverage(
    obs=rows.obs,
    action=rows.action,
    next_obs=rows.next_obs,
    sample_obs=rows.obs[pick],
    sample_action=loops.random_action(env.spec, action_key, num_samples).astype(rows.action.dtype),
  )
  return TaskEvaluation(coverage=coverage, expert=expert, random=random_rows)


def evaluate_reward(
  disc: Discriminator,
  params: DiscriminatorParams,
  evaluation: TaskEvaluation,
  true_reward: epic.RewardFn,
  discount: float,
  key: jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(EPIC distance of the discriminator's policy reward to `true_reward` on the task's coverage,
  the logits of the held-out expert rows and of the random policy's rows) for one task; jittable
  and vmappable over `params`. The AUC of the two logit vectors is `auc`'s, on the host."""
  learned = lambda obs, action, next_obs: disc.reward(params, obs, action, next_obs)  # noqa: E731
  distance = epic.epic_distance(learned, true_reward, evaluation.coverage, discount, key)
  logit = lambda t: disc.logits(params, t.obs, t.action, t.next_obs)  # noqa: E731
  return distance, logit(evaluation.expert), logit(evaluation.random)


def reward_drift(
  disc: Discriminator,
  params: DiscriminatorParams,
  reference: DiscriminatorParams,
  evaluation: TaskEvaluation,
  discount: float,
  key: jax.Array,
) -> jax.Array:
  """EPIC distance between the policy rewards of two discriminators (e.g. now and right after a task
  was learned) on the task's coverage: how far a learned reward has moved, whatever the true one;
  jittable and vmappable over both parameter sets."""
  reward = lambda p: lambda o, a, n: disc.reward(p, o, a, n)  # noqa: E731
  return epic.epic_distance(reward(params), reward(reference), evaluation.coverage, discount, key)
