"""The host-side Gymnasium adapter: specs, seeding, termination vs truncation, auto-reset, batching,
and the Ant variants' generated MJCF."""

import os
import xml.etree.ElementTree as ET

import numpy as np
import pytest

gymnasium = pytest.importorskip('gymnasium')
pytest.importorskip('mujoco')

from envs.core import EnvError  # noqa: E402
from envs.gym_adapter import (  # noqa: E402
  ANT_VARIANTS,
  BACK_LEFT_LEG,
  GYM_ENVS,
  ant_variant_xml,
  ant_variant_xml_path,
  make_gym,
)


@pytest.fixture(autouse=True)
def _mujoco_log_in_tmp(tmp_path, monkeypatch):
  # MuJoCo appends compiler warnings (HalfCheetah's deprecated settotalmass) to ./MUJOCO_LOG.TXT.
  monkeypatch.chdir(tmp_path)


# (obs_dim, act_dim) of the Gymnasium v5 tasks with their default options.
DIMS = {
  'Hopper-v5': (11, 3),
  'HalfCheetah-v5': (17, 6),
  'Walker2d-v5': (17, 6),
  'Ant-v5': (105, 8),
  'CustomAnt': (105, 8),
  'AmputatedAnt': (105, 8),
  'BigAnt': (105, 8),
}


def test_env_list():
  assert GYM_ENVS == (
    'Hopper-v5',
    'HalfCheetah-v5',
    'Walker2d-v5',
    'Ant-v5',
    'CustomAnt',
    'AmputatedAnt',
    'BigAnt',
  )


@pytest.mark.parametrize('name', GYM_ENVS)
def test_spec_and_step(name):
  env = make_gym(name, num_envs=2, seed=0)
  obs_dim, act_dim = DIMS[name]
  spec = env.spec
  assert spec.name == name and spec.max_episode_steps == 1000
  assert spec.observation.shape == (obs_dim,) and spec.action.shape == (act_dim,)
  assert np.all(np.isinf(spec.observation.low)) and np.all(np.isinf(spec.observation.high))
  np.testing.assert_array_equal(spec.action.low, -np.ones(act_dim))
  np.testing.assert_array_equal(spec.action.high, np.ones(act_dim))
  obs = env.reset()
  assert obs.shape == (2, obs_dim) and obs.dtype == np.float32
  out = env.step(np.zeros((2, act_dim)))
  assert out.next_obs.shape == out.obs.shape == (2, obs_dim)
  assert out.reward.shape == out.terminated.shape == out.truncated.shape == (2,)
  assert out.terminated.dtype == out.truncated.dtype == bool
  assert np.all(np.isfinite(out.next_obs)) and np.all(np.isfinite(out.reward))
  assert not np.any(out.truncated)
  env.close()


def test_reset_is_deterministic_in_the_seed():
  first = make_gym('Walker2d-v5', num_envs=2, seed=3).reset()
  np.testing.assert_array_equal(first, make_gym('Walker2d-v5', num_envs=2, seed=3).reset())
  # An explicit reset seed overrides the constructor's; environment i gets seed + i.
  env = make_gym('Walker2d-v5', num_envs=2, seed=99)
  np.testing.assert_array_equal(env.reset(seed=3), first)
  assert not np.array_equal(first[0], first[1])
  assert not np.array_equal(first, make_gym('Walker2d-v5', num_envs=2, seed=4).reset())
  np.testing.assert_array_equal(make_gym('Walker2d-v5', seed=4).reset()[0], first[1])


def test_hopper_fall_is_terminated_not_truncated():
  env = make_gym('Hopper-v5', seed=0)
  env.reset()
  healthy = lambda o: 0.7 < o[0] and abs(o[1]) < 0.2  # Hopper-v5: obs[0] torso z, obs[1] angle
  rewards = []
  for t in range(1, 200):
    out = env.step(-np.ones((1, 3)))  # full backward torque tips it over within a few steps
    rewards.append(out.reward[0])
    if out.terminated[0]:
      break
    assert healthy(out.next_obs[0]) and not out.truncated[0]
  assert out.terminated[0] and not out.truncated[0] and t < 50
  assert not healthy(out.next_obs[0])
  # The fallen state is returned as next_obs; obs is a fresh start (z 1.25 ± 0.005, upright).
  assert abs(out.obs[0, 0] - 1.25) <= 5e-3 and abs(out.obs[0, 1]) <= 5e-3
  assert out.info['episode_length'][0] == t
  np.testing.assert_allclose(
    out.info['episode_return'][0], np.sum(rewards, dtype=np.float64), rtol=1e-6
  )


def test_time_limit_is_truncated_with_true_next_obs():
  limit = 5
  env = make_gym('HalfCheetah-v5', seed=7, max_episode_steps=limit)
  assert env.spec.max_episode_steps == limit
  ref = gymnasium.make('HalfCheetah-v5', max_episode_steps=limit)  # the same task, by hand
  obs = env.reset()
  ref_obs, _ = ref.reset(seed=7)
  np.testing.assert_array_equal(obs[0], ref_obs.astype(np.float32))
  actions = np.random.default_rng(0).uniform(-1, 1, (2 * limit, 1, 6))
  for t, action in enumerate(actions, start=1):
    out = env.step(action)
    ref_next_obs, ref_reward, _, ref_truncated, _ = ref.step(action[0])
    np.testing.assert_array_equal(out.next_obs[0], ref_next_obs.astype(np.float32))
    assert out.reward[0] == np.float32(ref_reward)
    ends = t % limit == 0
    assert bool(out.truncated[0]) == ends == ref_truncated and not out.terminated[0]
    if ends:
      # The next episode starts from the environment's own generator, as a by-hand reset does.
      ref_next_obs, _ = ref.reset()
      assert not np.array_equal(out.obs[0], out.next_obs[0])
      assert out.info['episode_length'][0] == limit
    np.testing.assert_array_equal(out.obs[0], ref_next_obs.astype(np.float32))


def test_terminal_state_on_the_last_step_is_terminated_only():
  # Hopper falls on step 6 under full backward torque (test above); cap the episode there.
  env = make_gym('Hopper-v5', seed=0, max_episode_steps=6)
  env.reset()
  for _ in range(5):
    out = env.step(-np.ones((1, 3)))
    assert not (out.terminated[0] or out.truncated[0])
  out = env.step(-np.ones((1, 3)))
  assert out.terminated[0] and not out.truncated[0]


def test_batch_equals_separate_envs():
  num_envs, limit, seed = 3, 12, 10
  batch = make_gym('Hopper-v5', num_envs=num_envs, seed=seed, max_episode_steps=limit)
  singles = [make_gym('Hopper-v5', seed=seed + i, max_episode_steps=limit) for i in range(num_envs)]
  np.testing.assert_array_equal(batch.reset(), np.concatenate([s.reset() for s in singles]))
  actions = np.random.default_rng(1).uniform(-1, 1, (30, num_envs, 3))
  ended = np.zeros(num_envs, bool)
  for action in actions:
    out = batch.step(action)
    for i, single in enumerate(singles):
      ref = single.step(action[i : i + 1])
      for field in ('obs', 'next_obs', 'reward', 'terminated', 'truncated'):
        np.testing.assert_array_equal(getattr(out, field)[i], getattr(ref, field)[0])
      for key, value in ref.info.items():
        np.testing.assert_array_equal(out.info[key][i], value[0])
    ended |= out.terminated | out.truncated
  assert ended.all()  # the comparison went through automatic resets


def test_errors():
  with pytest.raises(EnvError, match=r"name must be one of .*'Hopper-v5'.*'BigAnt'"):
    make_gym('Hopper-v4')
  with pytest.raises(EnvError, match='num_envs'):
    make_gym('Hopper-v5', num_envs=0)
  with pytest.raises(EnvError, match='xml_file'):
    make_gym('CustomAnt', xml_file='ant.xml')
  env = make_gym('Hopper-v5', num_envs=2)
  with pytest.raises(EnvError, match='reset'):
    env.step(np.zeros((2, 3)))
  env.reset()
  for bad in (np.zeros(3), np.zeros((1, 3)), np.zeros((2, 4))):
    with pytest.raises(EnvError, match=r'action must have shape .*\(2, 3\)'):
      env.step(bad)
  with pytest.raises(EnvError, match='name must be one of'):
    ant_variant_xml('Ant-v5')


def _leg_extents(root, leg):
  """(thigh, ankle) per-axis extents and the unit signs of leg `leg` in an ant MJCF."""
  thigh_body = next(b for b in root.iter('body') if b.get('name') == f'aux_{leg}')
  thigh_to = np.array(thigh_body.find('geom').get('fromto').split(), float)
  foot_body = thigh_body.find('body')
  foot_pos = np.array(foot_body.get('pos').split(), float)
  ankle_to = np.array(foot_body.find('geom').get('fromto').split(), float)
  np.testing.assert_array_equal(foot_pos, thigh_to[3:])  # the foot hangs off the thigh's end
  assert abs(thigh_to[3]) == abs(thigh_to[4]) and abs(ankle_to[3]) == abs(ankle_to[4])
  return abs(thigh_to[3]), abs(ankle_to[3]), np.sign(thigh_to[3:5]), np.sign(ankle_to[3:5])


def test_ant_variant_xml():
  import gymnasium.envs.mujoco as gym_mujoco

  stock_path = os.path.join(os.path.dirname(gym_mujoco.__file__), 'assets', 'ant.xml')
  stock = ET.parse(stock_path).getroot()
  expected = {  # (gear, thighs of legs 1..4, ankles of legs 1..4), from OPIRL's spec (irl.md 2.2)
    'CustomAnt': (30, [0.2] * 4, [0.4] * 4),
    'AmputatedAnt': (30, [0.2, 0.2, 0.1, 0.2], [0.4, 0.4, 0.2, 0.4]),
    'BigAnt': (150, [0.2] * 4, [0.8] * 4),
  }
  assert BACK_LEFT_LEG == 3
  assert (
    next(b for b in stock.iter('body') if b.get('name') == 'aux_3').find('joint').get('name')
    == 'hip_3'
  )
  for name, (gear, thighs, ankles) in expected.items():
    path = ant_variant_xml_path(name)
    assert path == ant_variant_xml_path(name)  # content-addressed, written once
    with open(path) as f:
      assert f.read() == ant_variant_xml(name)
    root = ET.parse(path).getroot()
    motors = list(root.find('actuator').iter('motor'))
    assert len(motors) == 8 and all(float(m.get('gear')) == gear for m in motors)
    for leg in range(1, 5):
      thigh, ankle, thigh_sign, ankle_sign = _leg_extents(root, leg)
      assert (thigh, ankle) == (thighs[leg - 1], ankles[leg - 1]), (name, leg)
      _, _, stock_thigh_sign, stock_ankle_sign = _leg_extents(stock, leg)
      np.testing.assert_array_equal(thigh_sign, stock_thigh_sign)
      np.testing.assert_array_equal(ankle_sign, stock_ankle_sign)
    # Nothing else changed: same bodies, joints and geoms in the same order.
    names = lambda r: [(e.tag, e.get('name'), e.get('range')) for e in r.iter()]
    assert names(root) == names(stock)


def test_ant_variants_compile_as_specified():
  # What MuJoCo actually built: actuator gears, and capsule half-lengths (extent·√2/2).
  half = lambda extent: extent * np.sqrt(2.0) / 2
  for name, morph in ANT_VARIANTS.items():
    env = make_gym(name)
    model = env._envs[0].unwrapped.model
    np.testing.assert_allclose(model.actuator_gear[:, 0], morph.gear)
    geom = lambda g: model.geom(g).size[1]
    thigh_geoms = ('left_leg_geom', 'right_leg_geom', 'back_leg_geom', 'rightback_leg_geom')
    ankle_geoms = ('left_ankle_geom', 'right_ankle_geom', 'third_ankle_geom', 'fourth_ankle_geom')
    for leg in range(4):
      np.testing.assert_allclose(geom(thigh_geoms[leg]), half(morph.thigh[leg]), rtol=1e-5)
      np.testing.assert_allclose(geom(ankle_geoms[leg]), half(morph.ankle[leg]), rtol=1e-5)
    assert env._envs[0].unwrapped._healthy_z_range == morph.healthy_z_range
  assert ANT_VARIANTS['BigAnt'].healthy_z_range == (0.2, round(1 + 0.4 * np.sqrt(2), 4))
  assert ANT_VARIANTS['AmputatedAnt'].healthy_z_range == (0.2, 1.0)


def test_ant_variants_change_the_dynamics():
  # Same seed and actions: the stock Ant-v5 and each variant share the start but not the motion.
  actions = np.random.default_rng(0).uniform(-1, 1, (10, 1, 8))
  rollouts = {}
  for name in ('Ant-v5',) + tuple(ANT_VARIANTS):
    env = make_gym(name, seed=0)
    rollouts[name] = [env.reset()] + [env.step(a).next_obs for a in actions]
  for name in ANT_VARIANTS:
    np.testing.assert_array_equal(rollouts[name][0], rollouts['Ant-v5'][0])
    assert not np.allclose(rollouts[name][-1], rollouts['Ant-v5'][-1])
  assert not np.allclose(rollouts['CustomAnt'][-1], rollouts['AmputatedAnt'][-1])
