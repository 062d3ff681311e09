"""Kept for one release so that notebooks keep working: the IRL pipeline now lives in `irl.builders`
(config → objects), `irl.train` (training with checkpoints), `irl.report` (summaries) and
`irl.rewards` (learned rewards on disk). Import from those."""

from irl.builders import (
  ALGOS,
  Built,
  build,
  build_mesh,
  check_seeds,
  dataclass_from_config,
  loop_config_from,
)
from irl.report import mean_score_curve, random_return, steps_at_best_score, steps_to, summarise
from irl.rewards import (
  REWARD_FORMAT_VERSION,
  FrozenRewardState,
  LoadedReward,
  frozen_reward_agent,
  load_reward,
  save_reward,
)
from irl.train import carry_shardings, seed_functions, seed_keys, train

__all__ = [
  'ALGOS',
  'Built',
  'build',
  'build_mesh',
  'check_seeds',
  'dataclass_from_config',
  'loop_config_from',
  'mean_score_curve',
  'random_return',
  'steps_at_best_score',
  'steps_to',
  'summarise',
  'REWARD_FORMAT_VERSION',
  'FrozenRewardState',
  'LoadedReward',
  'frozen_reward_agent',
  'load_reward',
  'save_reward',
  'carry_shardings',
  'seed_functions',
  'seed_keys',
  'train',
]
