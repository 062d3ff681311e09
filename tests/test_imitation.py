"""OPIRL and the baselines assembled behind the loop interface (irl/imitation.py): observation
preprocessing, absorbing rows, expert buffers, and short runs of every algorithm through the jitted loop."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs import probes
from irl import algaedice, bc, imitation, loops, valuedice
from irl.discriminator import DiscriminatorConfig
from irl.replay import Transition
from irl.sac import agent as sac_agent


def _expert(n=6, obs_dim=2, terminal_last=True):
  obs = np.arange(n * obs_dim, dtype=np.float32).reshape(n, obs_dim)
  terminated = np.zeros(n, bool)
  truncated = np.zeros(n, bool)
  if terminal_last:
    terminated[-1] = True
  else:
    truncated[-1] = True
  return Transition(
    obs=obs,
    action=np.ones((n, 1), np.float32),
    reward=np.zeros(n, np.float32),
    next_obs=obs + 100.0,
    terminated=terminated,
    truncated=truncated,
  )


def test_obs_transform_normalises_and_appends_the_indicator():
  expert = _expert()
  prep = imitation.ObsTransform.from_expert(expert, normalize=True, absorbing=True)
  np.testing.assert_allclose(prep.mean, expert.obs.mean(0))
  np.testing.assert_allclose(prep.std, expert.obs.std(0), rtol=1e-6)
  out = np.asarray(prep.obs(expert.obs))
  assert out.shape == (6, 3) and np.all(out[:, -1] == 0)
  np.testing.assert_allclose(out[:, :2].mean(0), 0, atol=1e-6)
  plain = imitation.ObsTransform.from_expert(expert, normalize=False, absorbing=False)
  np.testing.assert_array_equal(np.asarray(plain.obs(expert.obs)), expert.obs)
  assert hash(prep.transitions) is not None  # usable as a static jit argument


def test_agent_transitions_become_absorbing_rows_with_zero_actions():
  prep = imitation.ObsTransform.from_expert(
    _expert(), normalize=False, absorbing=True, num_absorbing=3
  )
  batch = _expert(n=2)  # row 1 terminates
  rows, valid = prep.transitions(batch)
  assert rows.obs.shape == (8, 3) and valid.tolist() == [
    True,
    False,
    False,
    False,
    True,
    True,
    True,
    True,
  ]
  np.testing.assert_array_equal(rows.next_obs[4], [0, 0, 1])  # terminal -> absorbing state
  np.testing.assert_array_equal(rows.obs[5:8], [[0, 0, 1]] * 3)
  np.testing.assert_array_equal(rows.action[5:8], np.zeros((3, 1)))
  np.testing.assert_array_equal(rows.action[4], [1.0])
  assert not np.any(rows.terminated)


@pytest.mark.parametrize('terminal_last', [True, False])
def test_expert_buffer_one_absorbing_row_after_termination_and_compat_flag(terminal_last):
  expert = _expert(terminal_last=terminal_last)
  prep = imitation.ObsTransform.from_expert(expert, normalize=False, absorbing=True)
  buf = prep.expert_buffer(expert)
  assert buf.size == 6 + int(terminal_last)
  if terminal_last:
    np.testing.assert_array_equal(buf.data.obs[-1], [0, 0, 1])
    np.testing.assert_array_equal(buf.data.action[-1], [0.0])
  np.testing.assert_array_equal(buf.data.next_obs[0, :2], expert.next_obs[0])
  compat = prep.expert_buffer(expert, compat_next_obs=True)
  # The official loader's bug: s' = s for every expert row (the terminal row's s' is still absorbing).
  np.testing.assert_array_equal(compat.data.next_obs[:5, :2], expert.obs[:5])


TINY = dict(hidden_sizes=(16, 16), batch_size=16)


def _policy_config(algo):
  if algo == 'opirl':
    return algaedice.AlgaeDICEConfig(**TINY)
  if algo == 'valuedice':
    return valuedice.ValueDICEConfig(**TINY)
  if algo == 'bc':
    return bc.BCConfig(**TINY)
  return sac_agent.SACConfig(**TINY)


def _run(algo, env, key, num_env_steps=200):
  expert = Transition(
    obs=np.ones((20, 1), np.float32),
    action=np.full((20, 1), 0.5, np.float32),
    reward=np.zeros(20, np.float32),
    next_obs=np.ones((20, 1), np.float32),
    terminated=np.zeros(20, bool),
    truncated=np.ones(20, bool),
  )
  prep = imitation.ObsTransform.from_expert(
    expert, normalize=False, absorbing=True, num_absorbing=2
  )
  disc = (
    None
    if algo in ('valuedice', 'bc')
    else DiscriminatorConfig(
      kind='gail' if algo == 'dac' else 'airl',
      use_log_pi=algo == 'airl',
      reward_hidden=(8,),
      shaping_hidden=(8,),
    )
  )
  agent, parts = imitation.make_agent(
    algo,
    env.spec,
    prep,
    imitation.IRLConfig(batch_size=16, recent_window=50),
    discriminator_config=disc,
    policy_config=_policy_config(algo),
  )
  config = loops.LoopConfig(
    num_env_steps=num_env_steps,
    start_steps=50,
    update_after=20,
    replay_capacity=400,
    eval_every=100,
    eval_episodes=2,
  )
  run = partial(
    loops.train_jax,
    env,
    agent,
    config,
    expert_buffer=prep.expert_buffer(expert),
    transform_fn=prep.transitions,
  )
  return run, parts


@pytest.mark.parametrize('algo', imitation.ALGOS)
def test_every_algorithm_runs_through_the_jitted_loop(algo):
  env = probes.ConstantReward(terminal=True, max_episode_steps=3)
  run, parts = _run(algo, env, None)
  carry, metrics = run(jax.random.key(0))
  assert metrics['eval_return'].shape == (2,)
  policy_keys = [k for k in metrics if k.startswith('policy/')]
  assert policy_keys and all(
    np.all(np.isfinite(np.asarray(metrics[k])))
    for k in policy_keys
    if not np.all(np.isnan(np.asarray(metrics[k])))
  )
  if algo in ('opirl', 'airl', 'dac'):
    for k in (
      'discriminator/bce',
      'discriminator/expert_accuracy',
      'discriminator/policy_accuracy',
    ):
      assert np.all(np.isfinite(np.asarray(metrics[k]))), k
    assert parts.discriminator is not None
    # The buffer holds absorbing rows after the terminations (zero action, indicator 1).
    data = carry.buffer.data
    absorbing_rows = np.asarray(data.obs[: carry.buffer.size, -1]) == 1
    assert absorbing_rows.any()
    np.testing.assert_array_equal(np.asarray(data.action[: carry.buffer.size])[absorbing_rows], 0.0)


def test_opirl_vmapped_seeds_equal_separate_runs():
  env = probes.ObservationReward()
  run, _ = _run('opirl', env, None, num_env_steps=100)
  keys = jax.random.split(jax.random.key(5), 2)
  batched_carry, batched = jax.jit(jax.vmap(run))(keys)
  for i in range(2):
    _, single = run(keys[i])
    for k in single:
      np.testing.assert_allclose(
        np.asarray(batched[k][i]), np.asarray(single[k]), rtol=1e-4, atol=1e-5, err_msg=k
      )


def test_learned_reward_on_raw_observations():
  env = probes.ObservationReward()
  run, parts = _run('opirl', env, None, num_env_steps=100)
  carry, _ = run(jax.random.key(1))
  reward = imitation.reward_function(parts, carry.agent_state.discriminator)
  raw = jnp.array([[1.0], [-1.0]])
  action = jnp.zeros((2, 1))
  expected = parts.discriminator.reward(
    carry.agent_state.discriminator.params, parts.prep.obs(raw), action, parts.prep.obs(raw)
  )
  np.testing.assert_allclose(np.asarray(reward(raw, action, raw)), np.asarray(expected))


def test_unknown_algorithm_is_rejected():
  env = probes.ObservationReward()
  prep = imitation.ObsTransform.from_expert(_expert(obs_dim=1), normalize=False, absorbing=True)
  with pytest.raises(
    ValueError, match=r"algo must be one of \['opirl', 'airl', 'dac', 'valuedice', 'bc'\]"
  ):
    imitation.make_agent('gail', env.spec, prep, imitation.IRLConfig())


@pytest.mark.parametrize('algo', imitation.ADVERSARIAL_ALGOS)
def test_the_script_config_and_a_notebook_build_the_same_discriminator(algo):
  """One source of defaults: `make_agent(...)` without a discriminator config (a notebook) and
  `builders.build` of the shipped base config (the script) train the same discriminator."""
  from irl import builders
  from irl import config_defaults as common

  config = common.base_config()
  config.algo = algo
  config.loop.replay_capacity = 1000
  built = builders.build(config)
  assert built.parts.discriminator.config == imitation.discriminator_defaults(algo)


def test_opirl_update_is_a_discriminator_step_then_a_policy_step_on_the_relabelled_batch():
  """irl.opirl: the agent's update equals the two steps assembled by hand, with the policy trained on
  r(s, a) of the discriminator just updated (not the buffer's true reward)."""
  from irl import opirl, replay

  env = probes.ObservationReward()
  expert = _expert(n=20, obs_dim=1, terminal_last=False)
  prep = imitation.ObsTransform.from_expert(expert, normalize=False, absorbing=False)
  disc_config = DiscriminatorConfig(reward_hidden=(8,), shaping_hidden=(8,))
  agent, parts = imitation.make_agent(
    'opirl',
    env.spec,
    prep,
    imitation.IRLConfig(batch_size=8),
    discriminator_config=disc_config,
    policy_config=algaedice.AlgaeDICEConfig(**TINY),
  )
  rows = Transition(
    obs=np.random.default_rng(0).normal(size=(30, 1)).astype(np.float32),
    action=np.zeros((30, 1), np.float32),
    reward=np.full(30, 7.0, np.float32),
    next_obs=np.zeros((30, 1), np.float32),
    terminated=np.zeros(30, bool),
    truncated=np.zeros(30, bool),
  )
  buffer = replay.add(replay.init(jax.tree.map(lambda x: x[0], rows), 64), rows)
  expert_buffer = prep.expert_buffer(expert)
  state = agent.init(jax.random.key(0))
  new_state, metrics = agent.update(state, buffer, jax.random.key(1), expert_buffer)

  expert_key, negative_key, disc_key, batch_key, policy_key = jax.random.split(jax.random.key(1), 5)
  disc, policy = parts.discriminator, parts.policy
  disc_state, _ = disc.update(
    state.discriminator,
    replay.sample(expert_buffer, expert_key, 8),
    replay.sample(buffer, negative_key, 8),
    disc_key,
  )
  batch = replay.sample(buffer, batch_key, policy.config.batch_size)
  learned = disc.reward(disc_state.params, batch.obs, batch.action, batch.next_obs)
  policy_state, _ = policy.update(state.policy, batch._replace(reward=learned), policy_key)
  for x, y in zip(
    jax.tree.leaves((disc_state, policy_state)),
    jax.tree.leaves((new_state.discriminator, new_state.policy)),
  ):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(metrics['policy/reward'], np.mean(learned), rtol=1e-5)
  assert abs(float(metrics['policy/reward']) - 7.0) > 1e-3
  assert opirl.relabel(disc, disc_state, batch).reward.shape == batch.reward.shape


def test_dac_trains_its_discriminator_at_its_own_rate_unless_the_config_names_one():
  """`discriminator.learning_rate` None (the shipped default) gives each algorithm its own rate: DAC
  1e-3 (irl.imitation.DAC_LEARNING_RATE), the others, on-policy GAIL with DAC's form included, the
  shared 1e-5; a number in the config (an env file's) applies to every algorithm."""
  from irl import builders
  from irl import config_defaults as common

  config = common.base_config()
  config.loop.replay_capacity = 1000
  algos = ('opirl', 'airl', 'dac', 'gail_onpolicy')

  def rates():
    out = {}
    for algo in algos:
      config.algo = algo
      out[algo] = builders.build(config).parts.discriminator.config.learning_rate
    return out

  assert rates() == {
    'opirl': 1e-5,
    'airl': 1e-5,
    'dac': imitation.DAC_LEARNING_RATE,
    'gail_onpolicy': 1e-5,
  }
  assert imitation.DAC_LEARNING_RATE == 1e-3
  config.discriminator.learning_rate = 3e-4
  assert rates() == dict.fromkeys(algos, 3e-4)
