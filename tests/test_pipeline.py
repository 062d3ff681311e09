"""irl.rewards and irl.report: learned rewards saved and read back, SAC on a frozen reward, steps to 90 %."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cljax.config import ConfigError
from envs import registry
from irl import imitation, replay, report, rewards
from irl.discriminator import DiscriminatorConfig, make_discriminator
from irl.replay import Transition
from irl.sac import agent as sac_agent

CONFIG = DiscriminatorConfig(
  kind='airl', reward_hidden=(8,), shaping_hidden=(8,), reward_clip_max=0.5
)


def _saved_reward(tmp_path, prep, spec, seed=0):
  obs_dim, act_dim = prep.spec(spec).observation.shape[0], spec.action.shape[0]
  disc = make_discriminator(obs_dim, act_dim, CONFIG)
  state = disc.init(jax.random.key(seed))
  parts = imitation.Parts(policy=None, discriminator=disc, prep=prep)
  directory = str(tmp_path / f'reward{seed}')
  rewards.save_reward(directory, parts, state, algo='opirl', env='PointMaze-Left')
  return directory, disc, state


def _prep(normalize=True, absorbing=True):
  return imitation.ObsTransform(
    mean=np.arange(6, dtype=np.float32),
    std=np.full(6, 2.0, np.float32),
    absorbing=absorbing,
    num_absorbing=4,
  )


def test_saved_reward_reads_back_with_the_same_values_and_preprocessing(tmp_path):
  spec = registry.make('PointMaze-Left').spec
  directory, disc, state = _saved_reward(tmp_path, _prep(), spec)
  loaded = rewards.load_reward(directory, spec)
  assert loaded.record['algo'] == 'opirl' and loaded.record['env'] == 'PointMaze-Left'
  assert loaded.prep.absorbing and loaded.prep.num_absorbing == 4
  np.testing.assert_array_equal(loaded.prep.std, np.full(6, 2.0))
  assert loaded.discriminator.config == CONFIG
  keys = jax.random.split(jax.random.key(1), 3)
  obs = jax.random.normal(keys[0], (32, 7))
  action = jax.random.uniform(keys[1], (32, 2), minval=-1, maxval=1)
  next_obs = jax.random.normal(keys[2], (32, 7))
  expected = disc.reward(state.params, obs, action, next_obs)
  np.testing.assert_array_equal(loaded.reward_fn()(obs, action, next_obs), expected)
  assert float(jnp.max(expected)) <= 0.5  # the clip came back with the config


def test_load_reward_rejects_missing_and_mismatched_rewards(tmp_path):
  with pytest.raises(ConfigError, match='no learned reward'):
    rewards.load_reward(str(tmp_path / 'nothing'))
  spec = registry.make('PointMaze-Left').spec
  directory, _, _ = _saved_reward(tmp_path, _prep(), spec)
  pendulum = registry.make('Pendulum').spec
  with pytest.raises(ConfigError, match=r'learned on PointMaze-Left with \(obs, action\) sizes'):
    rewards.load_reward(directory, pendulum)


def test_frozen_reward_agent_trains_sac_on_the_learned_reward_of_preprocessed_rows(tmp_path):
  spec = registry.make('PointMaze-Right').spec
  prep = _prep()
  directory, disc, state = _saved_reward(tmp_path, prep, spec)
  loaded = rewards.load_reward(directory, spec)
  policy = sac_agent.make_sac(prep.spec(spec), sac_agent.SACConfig(hidden_sizes=(8,), batch_size=4))
  agent = rewards.frozen_reward_agent(policy, loaded)
  # A buffer of one raw transition, stored as the loops store it (preprocessed; not terminal).
  raw = Transition(
    obs=np.ones((1, 6), np.float32),
    action=np.full((1, 2), 0.5, np.float32),
    reward=np.full(1, 123.0, np.float32),
    next_obs=np.full((1, 6), 2.0, np.float32),
    terminated=np.zeros(1, bool),
    truncated=np.zeros(1, bool),
  )
  rows, valid = prep.transitions(raw)
  buffer = replay.add(replay.init(jax.tree.map(lambda x: x[0], rows), 16), rows, valid)
  agent_state = agent.init(jax.random.key(0))
  _, metrics = agent.update(agent_state, buffer, jax.random.key(1), None)
  learned = disc.reward(state.params, prep.obs(raw.obs), raw.action, prep.obs(raw.next_obs))
  np.testing.assert_allclose(metrics['reward'], learned[0], rtol=1e-6)  # not the true 123
  # Acting preprocesses raw observations: the same as the policy on preprocessed ones.
  raw_obs = jnp.ones((3, 6))
  np.testing.assert_array_equal(
    agent.act(agent_state, raw_obs, jax.random.key(2), True),
    policy.act(agent_state.policy, prep.obs(raw_obs), jax.random.key(2), True),
  )


@pytest.mark.parametrize(
  'curve, expected',
  [
    ([[1, -40.0], [2, -12.0], [3, -10.0]], 2),  # (−12 + 50) / 42 = 0.905
    ([[1, -40.0], [2, -13.0]], None),  # 0.88
    ([[1, None], [2, -8.0]], 2),
  ],
)
def test_steps_to_90pct_uses_the_random_normalised_score(curve, expected):
  # expert −8, random −50: 90 % is −8 − 0.1·42 = −12.2.
  assert report.steps_to(curve, -8.0, -50.0) == expected


def test_summarise_reports_the_training_clock_at_each_seeds_90pct_evaluation(tmp_path):
  # Expert −8, random −50 (90 %: −12.2). Seed 0 reaches it at step 2, seed 1 never; step 2 was
  # logged twice (a resumed run), the later record wins.
  lines = [
    {
      'step': 1,
      'eval_return': -40.0,
      'eval_return_seed0': -40.0,
      'eval_return_seed1': -45.0,
      'time/wall_s': 10.0,
    },
    {
      'step': 2,
      'eval_return': -20.0,
      'eval_return_seed0': -11.0,
      'eval_return_seed1': -30.0,
      'time/wall_s': 99.0,
    },
    {
      'step': 2,
      'eval_return': -20.0,
      'eval_return_seed0': -11.0,
      'eval_return_seed1': -30.0,
      'time/wall_s': 25.0,
    },
  ]
  (tmp_path / 'metrics.jsonl').write_text(''.join(json.dumps(line) + '\n' for line in lines))
  per_seed = report.summarise(str(tmp_path), [0, 1], -8.0, -50.0)['per_seed']
  assert [(s['steps_to_90pct_expert'], s['wall_s_to_90pct_expert']) for s in per_seed] == [
    (2, 25.0),
    (None, None),
  ]


def test_steps_at_best_score_compares_two_algorithms_at_the_slow_ones_best_score():
  # Expert 0, random -100: a return of -10 is a normalised score of 0.9.
  slow = [[[100, -80.0], [200, -40.0], [300, -20.0]], [[100, -60.0], [200, -20.0], [300, -20.0]]]
  fast = [[[10, -50.0], [20, -25.0], [30, -5.0]], [[10, -30.0], [20, -15.0], [30, -5.0]]]
  out = report.steps_at_best_score(slow, fast, 0.0, -100.0, names=('airl_onpolicy', 'opirl'))
  assert out == {'score': 0.8, 'airl_onpolicy_steps': 300, 'opirl_steps': 20, 'step_ratio': 15.0}
  never = report.steps_at_best_score(slow, [[[10, -90.0]], [[10, -90.0]]], 0.0, -100.0)
  assert never['fast_steps'] is None and never['step_ratio'] is None
