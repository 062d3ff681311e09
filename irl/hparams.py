"""The IRL algorithms' hyper-parameters: one frozen dataclass per algorithm (each checks its values
on construction) and the option sets they check. Free of jax, so that the config files, which read
their defaults from here (irl/config_defaults.py), load as data; each algorithm's module re-exports
its own (`irl.sac.SACConfig`, `irl.discriminator.DiscriminatorConfig`, ...)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

# ---------------------------------------------------------------------------------------------------
# Field checks shared by the configs' `validate` (each raises ValueError naming `owner.field`)


def is_int(value) -> bool:
  return not isinstance(value, bool) and isinstance(value, (int, np.integer))


def is_positive_int(value) -> bool:
  return is_int(value) and value >= 1


def check_positive_ints(owner: str, config, names) -> None:
  for name in names:
    value = getattr(config, name)
    if not is_positive_int(value):
      raise ValueError(f'{owner}.{name} must be a positive int, got {value!r}')


def check_positive(owner: str, config, names) -> None:
  for name in names:
    if not getattr(config, name) > 0:
      raise ValueError(f'{owner}.{name} must be > 0, got {getattr(config, name)!r}')


def check_non_negative(owner: str, config, names) -> None:
  for name in names:
    if not getattr(config, name) >= 0:
      raise ValueError(f'{owner}.{name} must be >= 0, got {getattr(config, name)!r}')


def check_unit_interval(owner: str, config, names) -> None:
  for name in names:
    if not 0.0 <= getattr(config, name) <= 1.0:
      raise ValueError(f'{owner}.{name} must be in [0, 1], got {getattr(config, name)!r}')


def check_sizes(owner: str, name: str, value, *, non_empty: bool = False, note: str = '') -> None:
  """`value` must be a tuple of positive ints (non-empty if `non_empty`); `note` follows the
  requirement in the message."""
  if (
    not isinstance(value, tuple)
    or (non_empty and not value)
    or not all(map(is_positive_int, value))
  ):
    what = 'a non-empty tuple' if non_empty else 'a tuple'
    raise ValueError(f'{owner}.{name} must be {what} of positive ints{note}, got {value!r}')


def check_log_std_bounds(owner: str, config) -> None:
  if not config.log_std_min < config.log_std_max:
    raise ValueError(
      f'{owner}.log_std_min must be < log_std_max, got {config.log_std_min!r} and '
      f'{config.log_std_max!r}'
    )


def check_actor_critic(owner: str, config, int_fields) -> None:
  """The fields SAC and AlgaeDICE share: learning rates, γ, τ, the integer sizes and periods
  `int_fields`, and the temperature."""
  check_positive(owner, config, ('actor_lr', 'critic_lr', 'temperature_lr'))
  check_unit_interval(owner, config, ('discount',))
  if not 0.0 < config.tau <= 1.0:
    raise ValueError(f'{owner}.tau must be in (0, 1], got {config.tau!r}')
  check_positive_ints(owner, config, int_fields)
  if config.learn_temperature and not config.init_temperature > 0:
    raise ValueError(
      f'{owner}.init_temperature must be > 0 when learn_temperature is True, '
      f'got {config.init_temperature!r}'
    )
  if not config.init_temperature >= 0:
    raise ValueError(f'{owner}.init_temperature must be >= 0, got {config.init_temperature!r}')


# ---------------------------------------------------------------------------------------------------
# The actor network (irl/networks.py)

LOG_STD_MIN = -20.0  # the bounds of the paper's reference implementation (softlearning);
LOG_STD_MAX = 2.0  # OPIRL squashes into [−5, 2] instead
LOG_STD_SQUASHES = ('clip', 'tanh')


# ---------------------------------------------------------------------------------------------------
# SAC (irl/sac/agent.py)


@dataclasses.dataclass(frozen=True)
class SACConfig:
  """Hyperparameters; the defaults are the paper's (arXiv 1812.05905, appendix D, table 1: Adam
  with learning rate 3e-4, γ = 0.99, τ = 0.005, batch 256, two hidden layers of 256, target entropy
  −|A|, one gradient step and one target update per step) and α = 1 (log α = 0) at the start.

  `target_entropy=None` means −|A|. `init_temperature` is α at step 0; with `learn_temperature=False`
  α stays there (α = 0 drops the entropy terms altogether, as the probe tests do). The actor and the
  temperature step every `actor_update_period`-th update (OPIRL: 2), the target critics every
  `target_update_period`-th (OPIRL: 2). Frozen and hashable, so it can be a static argument.
  """

  actor_lr: float = 3e-4
  critic_lr: float = 3e-4
  temperature_lr: float = 3e-4
  discount: float = 0.99
  tau: float = 0.005
  batch_size: int = 256
  init_temperature: float = 1.0
  learn_temperature: bool = True
  target_entropy: float | None = None
  hidden_sizes: tuple[int, ...] = (256, 256)
  num_critics: int = 2
  log_std_min: float = LOG_STD_MIN
  log_std_max: float = LOG_STD_MAX
  actor_update_period: int = 1
  target_update_period: int = 1

  def validate(self) -> None:
    """Raises ValueError naming the first bad field and its allowed values."""
    check_actor_critic(
      'SACConfig',
      self,
      ('batch_size', 'num_critics', 'actor_update_period', 'target_update_period'),
    )


# ---------------------------------------------------------------------------------------------------
# The reward learner of OPIRL, AIRL, DAC and GAIL (irl/discriminator.py)

KINDS = ('airl', 'gail')
REWARD_INPUTS = ('s', 'sa', 'ss')
POLICY_REWARDS = ('r', 'f')
REWARD_TRANSFORMS = ('logit', 'log_d', 'neg_log_1m_d')


@dataclasses.dataclass(frozen=True)
class DiscriminatorConfig:
  """Hyperparameters; the defaults are the official OPIRL code's (reference/irl.md section 1.4).

  kind: 'airl' (f = r + γ_d h(s') − h(s)) or 'gail' (one logit network).
  reward_input: what r (or GAIL's D) sees: 's' (state only, AIRL's disentangled reward), 'sa' (state
    and action, OPIRL's default) or 'ss' (state and next state).
  reward_hidden: hidden sizes of r (and of GAIL's D); () gives a linear network.
  shaping_hidden: hidden sizes of h (AIRL only).
  gamma_d: the discount inside f (OPIRL: 0.9, not the policy's 0.99).
  learning_rate: one Adam per network, same rate (OPIRL: 1e-5 default, HalfCheetah 3e-4,
    PointMaze 3e-3; DAC's own default is 1e-3, irl.imitation.discriminator_defaults).
  gp_coeff, gp_target: the gradient penalty gp_coeff·(‖∇‖ − gp_target)² on each network.
  use_log_pi: optimise the AIRL posterior logit f − log π(a|s) (module docstring); AIRL only.
  reward_clip_max: None, or clip the policy's reward from above at this value.
  policy_reward: 'r' (r alone, the official default) or 'f' (shaped); AIRL only.
  reward_transform: GAIL's policy reward, 'logit' | 'log_d' | 'neg_log_1m_d' (module docstring);
    must stay 'logit' for AIRL.
  goal_relative: () (off) or (achieved, desired, size): the networks see the position block relative
    to the goal block of the observation (module docstring).

  Frozen and hashable, so it can be a static argument.
  """

  kind: str = 'airl'
  reward_input: str = 'sa'
  reward_hidden: tuple[int, ...] = (64, 64)
  shaping_hidden: tuple[int, ...] = (256, 256)
  gamma_d: float = 0.9
  learning_rate: float = 1e-5
  gp_coeff: float = 10.0
  gp_target: float = 1.0
  use_log_pi: bool = False
  reward_clip_max: float | None = None
  policy_reward: str = 'r'
  reward_transform: str = 'logit'
  goal_relative: tuple[int, ...] = ()

  def validate(self) -> None:
    """Raises ValueError naming the first bad field and its allowed values."""
    for name, allowed in (
      ('kind', KINDS),
      ('reward_input', REWARD_INPUTS),
      ('policy_reward', POLICY_REWARDS),
      ('reward_transform', REWARD_TRANSFORMS),
    ):
      if getattr(self, name) not in allowed:
        raise ValueError(
          f'DiscriminatorConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}'
        )
    for name in ('reward_hidden', 'shaping_hidden'):
      check_sizes(
        'DiscriminatorConfig', name, getattr(self, name), note=' (() for a linear network)'
      )
    check_unit_interval('DiscriminatorConfig', self, ('gamma_d',))
    check_positive('DiscriminatorConfig', self, ('learning_rate',))
    for name in ('gp_coeff', 'gp_target'):
      value = getattr(self, name)
      if not (isinstance(value, (int, float, np.floating)) and math.isfinite(value) and value >= 0):
        raise ValueError(f'DiscriminatorConfig.{name} must be a finite number >= 0, got {value!r}')
    if not isinstance(self.use_log_pi, bool):
      raise ValueError(
        f'DiscriminatorConfig.use_log_pi must be True or False, got {self.use_log_pi!r}'
      )
    if self.reward_clip_max is not None and not (
      isinstance(self.reward_clip_max, (int, float, np.floating))
      and math.isfinite(self.reward_clip_max)
    ):
      raise ValueError(
        f'DiscriminatorConfig.reward_clip_max must be None or a finite number, '
        f'got {self.reward_clip_max!r}'
      )
    if self.goal_relative != () and not (
      isinstance(self.goal_relative, tuple)
      and len(self.goal_relative) == 3
      and all(
        isinstance(i, (int, np.integer)) and not isinstance(i, bool) and i >= 0
        for i in self.goal_relative
      )
      and self.goal_relative[2] >= 1
      and abs(self.goal_relative[0] - self.goal_relative[1]) >= self.goal_relative[2]
    ):
      raise ValueError(
        f'DiscriminatorConfig.goal_relative must be () (off) or (achieved, desired, '
        f'size): two non-overlapping blocks of the observation, ints >= 0, size >= 1; '
        f'got {self.goal_relative!r}'
      )
    if self.kind == 'gail':
      if self.use_log_pi:
        raise ValueError(
          "DiscriminatorConfig.use_log_pi must be False when kind='gail' (the log π "
          "term belongs to AIRL's posterior form)"
        )
      if self.policy_reward != 'r':
        raise ValueError(
          "DiscriminatorConfig.policy_reward must be 'r' when kind='gail' (there is no "
          "shaping term); choose GAIL's reward with reward_transform"
        )
    elif self.reward_transform != 'logit':
      raise ValueError(
        "DiscriminatorConfig.reward_transform must be 'logit' when kind='airl' (it "
        "applies to kind='gail'); choose AIRL's reward with policy_reward ('r' or 'f')"
      )


# ---------------------------------------------------------------------------------------------------
# AlgaeDICE, OPIRL's policy learner (irl/algaedice.py)

RESIDUAL_WEIGHTS = ('positive', 'exact')
Q_FILTERS = ('mean', 'min')


@dataclasses.dataclass(frozen=True)
class AlgaeDICEConfig:
  """Hyperparameters; the defaults are OPIRL's (reference/irl.md section 1.4, checked against the
  official `run_opirl.py`, `src/experiments/base.py` and `src/algos/opirl_policy.py`).

  Learning rates: actor 1e-5, critics 1e-3; the temperature's Adam is built without a learning
  rate in the official code, i.e. Keras' default 1e-3, which is used here (not SAC's 3e-4).
  `bc_coeff=None` means 1/batch_size (the official `bc_reg_coeff / sample_batch_size` with
  `bc_reg_coeff` 1); `target_entropy=None` means −|A|. The actor uses tanh-squashed log-std bounds
  [−5, 2] and, like the critics, orthogonal kernels (`orthogonal_init`). `residual_weight` and
  `q_filter` are the module docstring's g and Q̄ ('positive' and 'mean' reproduce the official
  code). Frozen and hashable, so it can be a static argument.
  """

  actor_lr: float = 1e-5
  critic_lr: float = 1e-3
  temperature_lr: float = 1e-3
  discount: float = 0.99
  tau: float = 0.005
  batch_size: int = 256
  f_exponent: float = 1.5
  algae_alpha: float = 0.01
  target_mix: float = 0.05
  residual_weight: str = 'positive'
  init_temperature: float = 1.0
  learn_temperature: bool = True
  target_entropy: float | None = None
  use_bc_reg: bool = True
  bc_coeff: float | None = None
  q_filter: str = 'mean'
  actor_loss_scale: float = 1e-3
  actor_update_period: int = 2
  hidden_sizes: tuple[int, ...] = (256, 256)
  num_critics: int = 2
  log_std_min: float = -5.0
  log_std_max: float = 2.0
  log_std_squash: str = 'tanh'
  orthogonal_init: bool = True
  exploration_noise: float = 0.1

  def validate(self) -> None:
    """Raises ValueError naming the first bad field and its allowed values."""
    name = type(self).__name__
    check_actor_critic(name, self, ('batch_size', 'num_critics', 'actor_update_period'))
    if not self.f_exponent > 1.0:
      raise ValueError(
        f'{name}.f_exponent must be > 1 (f(x) = |x|^p / p convex with a '
        f'continuous derivative), got {self.f_exponent!r}'
      )
    check_non_negative(name, self, ('algae_alpha', 'actor_loss_scale', 'exploration_noise'))
    check_unit_interval(name, self, ('target_mix',))
    if self.bc_coeff is not None and not self.bc_coeff >= 0:
      raise ValueError(
        f'{name}.bc_coeff must be >= 0 or None (1/batch_size), got {self.bc_coeff!r}'
      )
    if self.residual_weight not in RESIDUAL_WEIGHTS:
      raise ValueError(
        f'{name}.residual_weight must be one of {list(RESIDUAL_WEIGHTS)}, got '
        f'{self.residual_weight!r}'
      )
    if self.q_filter not in Q_FILTERS:
      raise ValueError(f'{name}.q_filter must be one of {list(Q_FILTERS)}, got {self.q_filter!r}')
    if self.log_std_squash not in LOG_STD_SQUASHES:
      raise ValueError(
        f'{name}.log_std_squash must be one of {list(LOG_STD_SQUASHES)}, '
        f'got {self.log_std_squash!r}'
      )
    check_log_std_bounds(name, self)


# ---------------------------------------------------------------------------------------------------
# Behavioural cloning (irl/bc.py)

LOSSES = ('mle', 'mse')


@dataclasses.dataclass(frozen=True)
class BCConfig:
  """Hyperparameters: Adam at `lr` 1e-3, batches of 256 expert transitions, two hidden layers of 256,
  `loss` in {'mle', 'mse'}, the log-std bounds of the actor (OPIRL/ValueDICE's [−5, 2], tanh-squashed
  like their actors) and the clip margin ε of expert actions for the 'mle' atanh. Frozen, hashable."""

  lr: float = 1e-3
  batch_size: int = 256
  hidden_sizes: tuple[int, ...] = (256, 256)
  loss: str = 'mle'
  log_std_min: float = -5.0
  log_std_max: float = 2.0
  action_clip: float = 1e-4

  def validate(self) -> None:
    """Raises ValueError naming the first bad field and its allowed values."""
    check_positive('BCConfig', self, ('lr',))
    check_positive_ints('BCConfig', self, ('batch_size',))
    check_sizes('BCConfig', 'hidden_sizes', self.hidden_sizes)
    if self.loss not in LOSSES:
      raise ValueError(f'BCConfig.loss must be one of {list(LOSSES)}, got {self.loss!r}')
    check_log_std_bounds('BCConfig', self)
    if not 0.0 < self.action_clip < 1.0:
      raise ValueError(f'BCConfig.action_clip must be in (0, 1), got {self.action_clip!r}')


# ---------------------------------------------------------------------------------------------------
# ValueDICE (irl/valuedice.py)


@dataclasses.dataclass(frozen=True)
class ValueDICEConfig:
  """Hyperparameters; the defaults are the official code's (google-research `value_dice`,
  train_eval.py flags and value_dice.py): actor learning rate 1e-5, ν learning rate 1e-3 (Adam),
  γ = 0.99, replay regularisation α = 0.1, gradient penalty λ = 10, batch 256 expert + 256 replay,
  two hidden layers of 256 with orthogonal kernels, log σ squashed into [−5, 2], actor orthogonal
  regularisation 1e-4, exploration noise σ = 0.1 around the mode. (Acme's ValueDICE uses α = 0.05.)

  `orthogonal_init=False` falls back to Flax's LeCun-normal kernels. Frozen and hashable.
  """

  actor_lr: float = 1e-5
  nu_lr: float = 1e-3
  discount: float = 0.99
  replay_regularization: float = 0.1
  nu_grad_penalty: float = 10.0
  actor_orthogonal_reg: float = 1e-4
  batch_size: int = 256
  hidden_sizes: tuple[int, ...] = (256, 256)
  log_std_min: float = -5.0
  log_std_max: float = 2.0
  orthogonal_init: bool = True
  exploration_noise: float = 0.1

  def validate(self) -> None:
    """Raises ValueError naming the first bad field and its allowed values."""
    check_positive('ValueDICEConfig', self, ('actor_lr', 'nu_lr'))
    if not 0.0 <= self.discount < 1.0:
      raise ValueError(
        f'ValueDICEConfig.discount must be in [0, 1) (the (1 − γ) initial-state term '
        f'vanishes at 1), got {self.discount!r}'
      )
    check_unit_interval('ValueDICEConfig', self, ('replay_regularization',))
    check_non_negative(
      'ValueDICEConfig', self, ('nu_grad_penalty', 'actor_orthogonal_reg', 'exploration_noise')
    )
    check_positive_ints('ValueDICEConfig', self, ('batch_size',))
    check_sizes('ValueDICEConfig', 'hidden_sizes', self.hidden_sizes)
    check_log_std_bounds('ValueDICEConfig', self)
    if not isinstance(self.orthogonal_init, bool):
      raise ValueError(
        f'ValueDICEConfig.orthogonal_init must be a bool, got {self.orthogonal_init!r}'
      )


# ---------------------------------------------------------------------------------------------------
# PPO for on-policy AIRL / GAIL (irl/onpolicy.py)

ONPOLICY_ALGOS = ('airl_onpolicy', 'gail_onpolicy')


@dataclasses.dataclass(frozen=True)
class PPOConfig:
  """PPO and the on-policy discriminator schedule; defaults follow the usual PPO MuJoCo settings
  (reference/irl.md §8.1: learning rate 3e-4, about 2048 steps per round, 10 epochs, small
  minibatches, γ 0.99, GAE λ 0.95, clip 0.2), as 20 vmapped environments of 125 steps (2,500 steps
  per round, so that the configs' evaluation periods of 5,000 steps hold whole rounds) in 25
  minibatches of 100.
  `disc_updates` discriminator steps per round on minibatches of `disc_batch_size` rollout rows against
  as many expert rows. `true_reward` trains PPO on the environment's reward (the discriminator still
  learns, but the policy ignores it): the on-policy counterpart of SAC on the true reward. Frozen and hashable, so it can be a static argument."""

  num_envs: int = 20
  num_steps: int = 125
  num_epochs: int = 10
  num_minibatches: int = 25
  learning_rate: float = 3e-4
  discount: float = 0.99
  gae_lambda: float = 0.95
  clip_eps: float = 0.2
  entropy_coeff: float = 0.0
  value_coeff: float = 0.5
  max_grad_norm: float = 0.5
  hidden_sizes: tuple[int, ...] = (64, 64)
  normalize_reward: bool = True
  disc_updates: int = 4
  disc_batch_size: int = 256
  true_reward: bool = False  # PPO on the environment's reward instead (a check of the generator)

  @property
  def steps_per_round(self) -> int:
    return self.num_envs * self.num_steps

  def validate(self) -> None:
    """Raises ValueError naming the first bad field and its allowed values."""
    check_positive_ints(
      'PPOConfig',
      self,
      ('num_envs', 'num_steps', 'num_epochs', 'num_minibatches', 'disc_updates', 'disc_batch_size'),
    )
    if self.steps_per_round % self.num_minibatches:
      raise ValueError(
        f'PPOConfig.num_minibatches ({self.num_minibatches}) must divide num_envs × '
        f'num_steps ({self.steps_per_round})'
      )
    check_positive('PPOConfig', self, ('learning_rate', 'clip_eps', 'max_grad_norm'))
    check_unit_interval('PPOConfig', self, ('discount', 'gae_lambda'))
    check_non_negative('PPOConfig', self, ('entropy_coeff', 'value_coeff'))
    check_sizes('PPOConfig', 'hidden_sizes', self.hidden_sizes, non_empty=True)
