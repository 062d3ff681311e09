"""Imitation / inverse-RL agents behind the `irl.loops.Agent` interface: OPIRL and its baselines.

  prep = ObsTransform.from_expert(expert_transitions, normalize=True, absorbing=True)
  agent, parts = make_agent('opirl', env.spec, prep, config)
  carry, metrics = loops.train_jax(env, agent, loop_config, key,
                                   expert_buffer=prep.expert_buffer(expert_transitions),
                                   transform_fn=prep.transitions)

Observations. Every learner sees *preprocessed* observations: shifted and scaled by the expert's mean
and std (OPIRL / ValueDICE `--normalize_states`; scale 1 / max(std, 1e-3)) and, with absorbing states,
one indicator dimension appended (DAC; Kostrikov et al. 2019). The replay buffer stores preprocessed
rows (`ObsTransform.transitions` is the loops' `transform_fn`; a true termination becomes
(s, a, s_absorbing) followed by `num_absorbing` absorbing → absorbing rows), the expert buffer is
preprocessed once (`ObsTransform.expert_buffer`, one absorbing row after each terminated episode), and
`act` preprocesses the raw observations the loops pass. Absorbing rows carry the zero action in both
data sets (the official code uses random actions for the agent's and zeros for the expert's, which lets
a discriminator tell them apart by the action alone).

Algorithms (`ALGOS`):
- 'opirl' (Hoshino et al., ICRA 2022; reference/irl.md §1.2; `irl.opirl`): the AIRL-form discriminator
  f = r + γ_d h(s') − h(s) trained with expert positives and negatives drawn from the **whole replay
  buffer**, with the gradient penalty on r and h; the AlgaeDICE policy learner (`irl.algaedice`) trained
  on r(s, a); per environment step one discriminator and one policy-learner update.
  `config.policy_learner='sac'` swaps in SAC (the "SAC-AIRL / DAC-like" ablation).
- 'airl' (off-policy AIRL with SAC, the f-IRL-style baseline): the same discriminator with the true
  AIRL logit f − log π(a|s) and negatives from the `recent_window` newest transitions (nearly
  on-policy, as AIRL intends), SAC trained on the shaped reward f.
- 'dac' (off-policy GAIL, Kostrikov et al. 2019, with SAC instead of TD3): a GAIL discriminator D(s, a)
  with the gradient penalty and whole-buffer negatives; SAC on the logit reward log D − log(1 − D).
- 'valuedice' (Kostrikov et al. 2020) and 'bc' (behaviour cloning): see `irl.valuedice`, `irl.bc`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from envs.core import EnvSpec
from irl import absorbing as absorbing_lib
from irl import algaedice, bc, hparams, loops, networks, replay, valuedice
from irl.discriminator import DiscriminatorConfig, make_discriminator
from irl.replay import Transition
from irl.sac import agent as sac_agent

ALGOS = ('opirl', 'airl', 'dac', 'valuedice', 'bc')
ADVERSARIAL_ALGOS = ('opirl', 'airl', 'dac')
POLICY_LEARNERS = ('algaedice', 'sac')


@dataclasses.dataclass(frozen=True, eq=False)
class ObsTransform:
  """Expert-statistics normalisation and the absorbing indicator (module docstring). Hashed by
  identity, so its bound methods can be static arguments of `jit` (the loops' `transform_fn`)."""

  mean: np.ndarray
  std: np.ndarray
  absorbing: bool
  num_absorbing: int = 10

  @classmethod
  def from_expert(
    cls,
    expert: Transition,
    *,
    normalize: bool,
    absorbing: bool,
    num_absorbing: int = 10,
    std_floor: float = 1e-3,
  ) -> 'ObsTransform':
    obs = np.asarray(expert.obs, np.float64)
    if normalize:
      mean, std = obs.mean(0), np.maximum(obs.std(0), std_floor)
    else:
      mean, std = np.zeros(obs.shape[1]), np.ones(obs.shape[1])
    return cls(mean.astype(np.float32), std.astype(np.float32), bool(absorbing), int(num_absorbing))

  def spec(self, spec: EnvSpec) -> EnvSpec:
    """The spec the learners see (one more observation dimension with absorbing states)."""
    return absorbing_lib.absorbing_spec(spec) if self.absorbing else spec

  def obs(self, raw_obs: jax.Array) -> jax.Array:
    """Raw environment observations [..., d] to what the learners see."""
    normalized = (jnp.asarray(raw_obs, jnp.float32) - self.mean) / self.std
    return absorbing_lib.add_indicator(normalized) if self.absorbing else normalized

  def transitions(self, batch: Transition) -> tuple[Transition, jax.Array | None]:
    """The rows one environment step stores (the loops' `transform_fn`) and their validity mask."""
    batch = batch._replace(
      obs=(jnp.asarray(batch.obs, jnp.float32) - self.mean) / self.std,
      next_obs=(jnp.asarray(batch.next_obs, jnp.float32) - self.mean) / self.std,
    )
    if not self.absorbing:
      return batch, None
    zero_action = jnp.zeros(jnp.shape(batch.action)[1:], jnp.float32)
    return absorbing_lib.to_absorbing(
      batch, absorbing_action=zero_action, num_absorbing=self.num_absorbing
    )

  def expert_buffer(
    self, expert: Transition, *, compat_next_obs: bool = False
  ) -> replay.ExpertBuffer:
    """The preprocessed expert buffer. `compat_next_obs` reproduces the official code's expert loader,
    which overwrites every next observation with the observation itself (irl.md §1.5.1)."""
    expert = jax.tree.map(np.asarray, expert)
    if compat_next_obs:
      expert = expert._replace(next_obs=expert.obs)
    if not self.absorbing:
      rows, _ = self.transitions(expert)
      return replay.expert_buffer(rows)
    # One absorbing transition after each terminated expert episode (DAC), with the zero action.
    rows, valid = dataclasses.replace(self, num_absorbing=1).transitions(expert)
    keep = np.asarray(valid)
    return replay.expert_buffer(jax.tree.map(lambda x: np.asarray(x)[keep], rows))


@dataclasses.dataclass(frozen=True)
class IRLConfig:
  """Per-algorithm choices; the learners' own hyper-parameters live in their configs."""

  batch_size: int = 256  # discriminator: this many expert and this many policy rows
  policy_learner: str = 'algaedice'  # opirl only: 'algaedice' (official) or 'sac'
  recent_window: int = 10_000  # airl: negatives from the newest transitions

  def validate(self) -> None:
    if self.policy_learner not in POLICY_LEARNERS:
      raise ValueError(
        f'policy_learner must be one of {list(POLICY_LEARNERS)}, got {self.policy_learner!r}'
      )
    hparams.check_positive_ints('IRLConfig', self, ('batch_size', 'recent_window'))


@flax.struct.dataclass
class IRLState:
  policy: Any  # the policy learner's state
  discriminator: Any  # DiscriminatorState, or None for valuedice / bc
  consolidation: Any = None  # continual IRL: the cl.methods state of the reward learner


class Parts(NamedTuple):
  """What a script needs besides the Agent: the learners, to save rewards and policies."""

  policy: Any  # the policy learner (SAC / AlgaeDICE / ValueDICE / BC object)
  discriminator: Any  # irl.discriminator.Discriminator or None
  prep: ObsTransform


def _log_prob(policy, actor_params, obs, action):
  """log π(a|s) of environment-box actions under a tanh-Gaussian actor (for AIRL's logit)."""
  mean, log_std = policy.actor.apply(actor_params, obs)
  unit = jnp.clip(networks.to_unit_action(action, policy.bounds), -1.0 + 1e-6, 1.0 - 1e-6)
  return networks.tanh_gaussian_log_prob(jnp.arctanh(unit), mean, log_std)


# DAC's discriminator learning rate where the config names none (`discriminator.learning_rate` None).
# At the rate OPIRL's official scripts share (1e-5), DAC on Hopper-v5 learned to end its episodes:
# the absorbing state's logit reward (−1.38 a step, seed 0) stayed above that of the policy's own
# states (−1.84) because the discriminator moved too slowly to mark the policy's absorbing
# transitions as its own (docs/results.md, "DAC on Hopper"). 1e-3 is the rate of the DAC paper's
# discriminator (Kostrikov et al. 2019).
DAC_LEARNING_RATE = 1e-3


def discriminator_defaults(algo: str) -> DiscriminatorConfig:
  """Each adversarial algorithm's discriminator when nothing else is given: the one source of these
  defaults for notebooks (`make_agent`) and for the configs (`irl/config_defaults.py`, read by
  `irl.builders.build`). Hyper-parameters are `DiscriminatorConfig`'s (the official OPIRL code's);
  the algorithms differ only in form: opirl, the AIRL form with r(s, a) given to the policy; airl,
  the AIRL posterior logit f − log π with the shaped f given to the policy; dac, the GAIL form with
  the logit reward and its own learning rate, 1e-3 (DAC_LEARNING_RATE)."""
  if algo not in ADVERSARIAL_ALGOS:
    raise ValueError(f'algo must be one of {list(ADVERSARIAL_ALGOS)}, got {algo!r}')
  return {
    'opirl': DiscriminatorConfig(kind='airl'),
    'airl': DiscriminatorConfig(kind='airl', use_log_pi=True, policy_reward='f'),
    'dac': DiscriminatorConfig(
      kind='gail', reward_transform='logit', learning_rate=DAC_LEARNING_RATE
    ),
  }[algo]


def make_policy_learner(algo: str, spec: EnvSpec, config: IRLConfig, policy_config: Any = None):
  """The policy learner of an adversarial algorithm on the preprocessed `spec`: AlgaeDICE for opirl
  (or SAC with `config.policy_learner='sac'`), SAC for airl and dac; `policy_config` None gives the
  learner's defaults."""
  if algo == 'opirl' and config.policy_learner == 'algaedice':
    return algaedice.make_algaedice(spec, policy_config or algaedice.AlgaeDICEConfig())
  return sac_agent.make_sac(spec, policy_config or sac_agent.SACConfig())


def prefixed(policy_metrics: dict, disc_metrics: dict | None = None) -> dict:
  """One metrics dict: `policy/<name>` and `discriminator/<name>`."""
  return {
    **{f'policy/{k}': v for k, v in policy_metrics.items()},
    **{f'discriminator/{k}': v for k, v in (disc_metrics or {}).items()},
  }


def make_agent(
  algo: str,
  env_spec: EnvSpec,
  prep: ObsTransform,
  config: IRLConfig,
  discriminator_config: DiscriminatorConfig | None = None,
  policy_config: Any = None,
) -> tuple[loops.Agent, Parts]:
  """The `loops.Agent` of one algorithm (module docstring) and its `Parts`.

  `discriminator_config` None gives `discriminator_defaults(algo)`; `policy_config` is the learner's
  config (AlgaeDICEConfig, SACConfig, ValueDICEConfig or BCConfig; None = its defaults). OPIRL is
  `irl.opirl.make_opirl`; the adversarial baselines below share its two steps.
  """
  if algo not in ALGOS:
    raise ValueError(f'algo must be one of {list(ALGOS)}, got {algo!r}')
  config.validate()
  if algo in ('valuedice', 'bc'):
    return _make_dice_or_bc(algo, prep.spec(env_spec), prep, policy_config)
  if discriminator_config is None:
    discriminator_config = discriminator_defaults(algo)
  if algo == 'opirl':
    from irl import opirl  # here, not at the top: irl.opirl imports this module (a cycle)

    return opirl.make_opirl(env_spec, prep, config, discriminator_config, policy_config)
  return _make_baseline(algo, env_spec, prep, config, discriminator_config, policy_config)


def _make_baseline(algo, env_spec, prep, config, discriminator_config, policy_config):
  """Off-policy AIRL ('airl': negatives from the `recent_window` newest transitions, the log π term
  of the current policy) or DAC ('dac': whole-buffer negatives), with OPIRL's two steps."""
  from irl import opirl  # here, not at the top: irl.opirl imports this module (a cycle)

  spec = prep.spec(env_spec)
  disc = make_discriminator(spec.observation.shape[0], spec.action.shape[0], discriminator_config)
  policy = make_policy_learner(algo, spec, config, policy_config)
  use_log_pi = discriminator_config.use_log_pi
  batch_size = config.batch_size

  def init(key):
    policy_key, disc_key = jax.random.split(key)
    return IRLState(policy=policy.init(policy_key), discriminator=disc.init(disc_key))

  def update(state: IRLState, replay_buffer, key, expert_buffer):
    expert_key, negative_key, disc_key, batch_key, policy_key = jax.random.split(key, 5)
    expert_batch = replay.sample(expert_buffer, expert_key, batch_size)
    if algo == 'airl':
      negatives = replay.sample_recent(
        replay_buffer, negative_key, batch_size, min(config.recent_window, replay_buffer.capacity)
      )
    else:
      negatives = replay.sample(replay_buffer, negative_key, batch_size)
    log_pis = {}
    if use_log_pi:
      actor_params = state.policy.actor_params
      log_pis = dict(
        expert_log_pi=_log_prob(policy, actor_params, expert_batch.obs, expert_batch.action),
        policy_log_pi=_log_prob(policy, actor_params, negatives.obs, negatives.action),
      )
    return opirl.both_steps(
      policy,
      disc,
      state,
      expert_batch,
      negatives,
      replay_buffer,
      disc_key,
      batch_key,
      policy_key,
      **log_pis,
    )

  def act(state: IRLState, obs, key, deterministic):
    return policy.act(state.policy, prep.obs(obs), key, deterministic)

  return loops.Agent(init=init, act=act, update=update), Parts(policy, disc, prep)


def _make_dice_or_bc(algo, spec, prep, policy_config):
  if algo == 'valuedice':
    learner = valuedice.make_valuedice(spec, policy_config or valuedice.ValueDICEConfig())
    inner = valuedice.as_agent(learner)
  else:
    learner = bc.make_bc(spec, policy_config or bc.BCConfig())
    inner = bc.as_agent(learner)

  def init(key):
    return IRLState(policy=inner.init(key), discriminator=None)

  def update(state, replay_buffer, key, expert_buffer):
    policy_state, metrics = inner.update(state.policy, replay_buffer, key, expert_buffer)
    return IRLState(policy=policy_state, discriminator=None), prefixed(metrics)

  def act(state, obs, key, deterministic):
    return inner.act(state.policy, prep.obs(obs), key, deterministic)

  return loops.Agent(init=init, act=act, update=update), Parts(learner, None, prep)


def reward_function(
  parts: Parts, discriminator_state
) -> Callable[[jax.Array, jax.Array, jax.Array], jax.Array]:
  """The learned reward on *raw* environment observations (the indicator set to 0): what reward
  transfer trains a new policy on. `reward(obs, action, next_obs)` with leading batch axes."""
  reward = parts.discriminator.reward_fn(discriminator_state)
  prep = parts.prep
  return lambda obs, action, next_obs: reward(prep.obs(obs), action, prep.obs(next_obs))
