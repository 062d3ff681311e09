r"""OPIRL: off-policy inverse RL (Hoshino, Ota, Kanezaki and Yokota, "OPIRL: Sample Efficient Off-Policy
Inverse Reinforcement Learning via Distribution Matching", ICRA 2022, arXiv 2109.04307).

  agent, parts = make_opirl(env.spec, prep, IRLConfig(), DiscriminatorConfig(), AlgaeDICEConfig())
  carry, metrics = loops.train_jax(env, agent, loop_config, key, expert_buffer=...,
                                   transform_fn=prep.transitions)

OPIRL alternates two learners on one stream of environment interaction. After every environment step
(once the warm-up is over) it makes one update of each, in this order:

1. **Reward learning** (`discriminator_step`): the AIRL-form discriminator (Fu, Luo and Levine,
   "Learning Robust Rewards with Adversarial Inverse RL", ICLR 2018, section 5)

     D(s, a, s') = σ(f(s, a, s')),   f = r_θ(s, a) + γ_d (1 − d) h_φ(s') − h_φ(s),

   is trained by one Adam step on the binary cross-entropy with expert transitions as positives and
   **transitions drawn uniformly from the whole replay buffer** as negatives (what makes it
   off-policy: AIRL draws its negatives from the current policy's rollouts), plus WGAN-GP on r and h:

     L(θ, φ) = −E_{D_E}[log σ(f)] − E_{D_replay}[log(1 − σ(f))] + λ_GP (GP_r + GP_h).

   `irl.discriminator` holds the loss, its official-code details and its switches.
2. **Policy learning** (`policy_step`): a replay batch is relabelled with the learned reward of the
   discriminator just updated, r̂(s, a) = min(r_θ(s, a), c) (`relabel`; the reward is r alone, without
   the shaping term, as the official code gives it, and c is `reward_clip_max`, PointMaze: 0), and the
   policy learner makes one update on it: AlgaeDICE (`irl.algaedice`, the official learner) or SAC
   (`irl.sac`), chosen by `IRLConfig.policy_learner`.

The paper's own equation numbers were not at hand when this was written (reference/irl.md §0: only the
abstract and the official code were); the formulas above are the official code's
(github.com/sff1019/opirl, `src/algos/airl.py`, `src/algos/opirl_policy.py`), which the notes verify.

`discriminator_step`, `relabel` and `policy_step` are also the steps of the adversarial baselines in
`irl.imitation` (off-policy AIRL and DAC), which differ in their negatives, the log π term and the
reward they give the policy.
"""

from __future__ import annotations

from typing import Any

import jax

from envs.core import EnvSpec
from irl import imitation, loops, replay
from irl.discriminator import Discriminator, DiscriminatorConfig, make_discriminator
from irl.replay import Transition


def relabel(disc: Discriminator, disc_state, batch: Transition) -> Transition:
  """`batch` with its reward replaced by the discriminator's policy reward (r̂ of the module
  docstring, or the baselines' choice in `disc.config`), gradient stopped; true terminations mask
  the shaping term's h(s') when the reward is shaped."""
  reward = disc.reward(
    jax.lax.stop_gradient(disc_state.params),
    batch.obs,
    batch.action,
    batch.next_obs,
    batch.terminated,
  )
  return batch._replace(reward=jax.lax.stop_gradient(reward))


def discriminator_step(
  disc: Discriminator,
  disc_state,
  expert_batch: Transition,
  negatives: Transition,
  key: jax.Array,
  **log_pis,
) -> tuple[Any, dict]:
  """Step 1 of the module docstring: one Adam step on L(θ, φ), expert rows against `negatives`
  (OPIRL: uniform over the whole replay buffer). `log_pis` (`expert_log_pi`, `policy_log_pi`) are
  only for AIRL's posterior form (`use_log_pi`); `penalty` adds a continual-learning term
  (`irl.continual`)."""
  return disc.update(disc_state, expert_batch, negatives, key, **log_pis)


def policy_step(
  policy, policy_state, disc: Discriminator, disc_state, batch: Transition, key: jax.Array
) -> tuple[Any, dict]:
  """Step 2 of the module docstring: one update of the policy learner on `batch` relabelled with the
  learned reward of `disc_state`."""
  return policy.update(policy_state, relabel(disc, disc_state, batch), key)


def both_steps(
  policy,
  disc: Discriminator,
  state,
  expert_batch: Transition,
  negatives: Transition,
  replay_buffer: replay.ReplayBuffer,
  disc_key: jax.Array,
  batch_key: jax.Array,
  policy_key: jax.Array,
  **log_pis,
):
  """Steps 1 and 2 of the module docstring, in order: the discriminator on `expert_batch` against
  `negatives`, then the policy learner on an independent replay batch relabelled with the reward
  just learned. Returns (new `imitation.IRLState`, metrics); the state's other fields (a continual
  learner's `consolidation`) pass through."""
  disc_state, disc_metrics = discriminator_step(
    disc, state.discriminator, expert_batch, negatives, disc_key, **log_pis
  )
  policy_state, policy_metrics = policy_step(
    policy,
    state.policy,
    disc,
    disc_state,
    replay.sample(replay_buffer, batch_key, policy.config.batch_size),
    policy_key,
  )
  return (
    state.replace(policy=policy_state, discriminator=disc_state),
    imitation.prefixed(policy_metrics, disc_metrics),
  )


def make_opirl(
  env_spec: EnvSpec,
  prep,
  config,
  discriminator_config: DiscriminatorConfig,
  policy_config: Any = None,
  consolidation=None,
):
  """OPIRL behind the `irl.loops.Agent` interface, and its `irl.imitation.Parts`.

  `prep` is the observation preprocessing (`irl.imitation.ObsTransform`: expert-statistics
  normalisation, absorbing indicator), `config` an `irl.imitation.IRLConfig` (discriminator batch
  size, policy learner), `policy_config` the policy learner's config (None: its defaults).
  `consolidation` (`irl.continual.Consolidation`, continual IRL) adds its method's term to the
  discriminator's loss; the method's state is the agent state's `consolidation` field."""
  config.validate()
  spec = prep.spec(env_spec)
  disc = make_discriminator(spec.observation.shape[0], spec.action.shape[0], discriminator_config)
  policy = imitation.make_policy_learner('opirl', spec, config, policy_config)
  batch_size = config.batch_size

  def init(key: jax.Array) -> imitation.IRLState:
    policy_key, disc_key = jax.random.split(key)
    disc_state = disc.init(disc_key)
    return imitation.IRLState(
      policy=policy.init(policy_key),
      discriminator=disc_state,
      consolidation=None if consolidation is None else consolidation.init(disc_state.params),
    )

  def update(
    state: imitation.IRLState,
    replay_buffer: replay.ReplayBuffer,
    key: jax.Array,
    expert_buffer: replay.ExpertBuffer,
  ) -> tuple[imitation.IRLState, dict]:
    expert_key, negative_key, disc_key, batch_key, policy_key = jax.random.split(key, 5)
    penalty = {}
    if consolidation is not None:  # the penalty's key: independent of this step's other draws
      penalty_key = jax.random.fold_in(disc_key, 1)
      penalty['penalty'] = lambda params: consolidation.loss(
        params, state.consolidation, penalty_key
      )
    # Reward learning against negatives from the whole replay buffer, then policy learning.
    return both_steps(
      policy,
      disc,
      state,
      replay.sample(expert_buffer, expert_key, batch_size),
      replay.sample(replay_buffer, negative_key, batch_size),
      replay_buffer,
      disc_key,
      batch_key,
      policy_key,
      **penalty,
    )

  def act(state: imitation.IRLState, obs: jax.Array, key: jax.Array, deterministic: bool):
    return policy.act(state.policy, prep.obs(obs), key, deterministic)

  return loops.Agent(init=init, act=act, update=update), imitation.Parts(policy, disc, prep)
