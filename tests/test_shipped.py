"""The experts and demonstrations shipped in `experts/` and `demos/` load, match their environments, and
are consistent with each other: the expert's deterministic policy reproduces the demonstrated actions."""

import json
import os

import jax.numpy as jnp
import numpy as np
import pytest

from envs import registry
from irl import demos, experts

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = sorted(f[:-4] for f in os.listdir(os.path.join(ROOT, 'demos')) if f.endswith('.npz'))
REQUIRED = {'PointMaze-Left', 'Pendulum', 'Hopper-v5', 'HalfCheetah-v5', 'CustomAnt'}


def test_required_environments_are_shipped():
  assert REQUIRED <= set(SHIPPED), REQUIRED - set(SHIPPED)
  assert all(os.path.isfile(os.path.join(ROOT, 'experts', env, 'expert.json')) for env in REQUIRED)


@pytest.mark.parametrize('env_name', SHIPPED)
def test_demonstrations_match_env_and_expert(env_name):
  env = (
    registry.make(env_name)
    if registry.is_jax_env(env_name)
    else registry.make(env_name, num_envs=1)
  )
  spec = env.spec
  transitions, meta = demos.load(
    os.path.join(ROOT, 'demos', env_name),
    env=env_name,
    obs_dim=spec.observation.shape[0],
    act_dim=spec.action.shape[0],
  )
  assert meta['num_episodes'] >= 10
  expert_dir = os.path.join(ROOT, 'experts', env_name)
  with open(os.path.join(expert_dir, 'expert.json'), encoding='utf-8') as f:
    record = json.load(f)
  assert record['env'] == env_name
  policy, _ = experts.load_policy(expert_dir, spec)
  actions = np.asarray(policy(jnp.asarray(transitions.obs[:500])))
  np.testing.assert_allclose(actions, transitions.action[:500], atol=1e-4)
  assert meta['return_mean'] == pytest.approx(
    np.mean(
      np.bincount(
        np.cumsum(np.r_[0, (transitions.terminated | transitions.truncated)[:-1]]),
        weights=transitions.reward,
      )
    ),
    rel=1e-4,
  )
