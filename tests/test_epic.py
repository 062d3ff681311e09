"""irl.epic: checks that follow from EPIC's definition (Gleave et al. 2021, reference/irl.md Sec. 8.2)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from irl import epic

GAMMA = 0.9


def coverage(key, batch=64, samples=32, obs_dim=3, act_dim=2):
  keys = jax.random.split(key, 5)
  normal = lambda k, *shape: jax.random.normal(k, shape)  # noqa: E731
  return epic.Coverage(
    obs=normal(keys[0], batch, obs_dim),
    action=normal(keys[1], batch, act_dim),
    next_obs=normal(keys[2], batch, obs_dim),
    sample_obs=normal(keys[3], samples, obs_dim),
    sample_action=normal(keys[4], samples, act_dim),
  )


def reward(obs, action, next_obs):  # a nonlinear reward of all three arguments
  return jnp.sin(obs[:, 0]) * action[:, 1] + jnp.tanh(next_obs @ jnp.array([0.5, -1.0, 2.0]))


def potential(obs):
  return jnp.cos(3.0 * obs[:, 1]) + obs[:, 2] ** 2


def other_reward(obs, action, next_obs):
  return -jnp.sum((next_obs - 0.3) ** 2, axis=-1) + 0.1 * action[:, 0]


def test_canonical_reward_matches_its_definition_written_as_loops():
  cov = coverage(jax.random.key(0), batch=5, samples=4)
  key = jax.random.key(1)
  got = np.asarray(epic.canonical_reward(reward, cov, GAMMA, key))
  s_next = np.asarray(cov.sample_obs)[np.asarray(jax.random.permutation(key, 4))]
  r = lambda s, a, n: float(reward(s[None], a[None], n[None])[0])  # noqa: E731
  samples = list(zip(np.asarray(cov.sample_obs), np.asarray(cov.sample_action), s_next))
  baseline = np.mean([r(s, a, n) for s, a, n in samples])
  for i in range(5):
    s, a, n = (np.asarray(x[i]) for x in (cov.obs, cov.action, cov.next_obs))
    from_next = np.mean([r(n, sa, sn) for _, sa, sn in samples])
    from_obs = np.mean([r(s, sa, sn) for _, sa, sn in samples])
    want = r(s, a, n) + GAMMA * from_next - from_obs - GAMMA * baseline
    np.testing.assert_allclose(got[i], want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('scale', [0.01, 1.0, 7.0])
def test_a_shaped_positively_rescaled_copy_is_at_distance_zero(scale):
  def shaped(obs, action, next_obs):
    return scale * reward(obs, action, next_obs) + GAMMA * potential(next_obs) - potential(obs)

  d = epic.epic_distance(reward, shaped, coverage(jax.random.key(2)), GAMMA, jax.random.key(3))
  assert float(d) < 1e-3


def test_the_negated_reward_is_at_distance_one_and_another_reward_in_between():
  cov, key = coverage(jax.random.key(4)), jax.random.key(5)
  negated = lambda *t: -reward(*t)  # noqa: E731
  np.testing.assert_allclose(epic.epic_distance(reward, negated, cov, GAMMA, key), 1.0, atol=1e-4)
  d = float(epic.epic_distance(reward, other_reward, cov, GAMMA, key))
  assert 0.1 < d < 0.9


def test_the_distance_grows_with_noise_and_obeys_the_triangle_inequality():
  cov, key = coverage(jax.random.key(6), batch=256), jax.random.key(7)

  def noisy(sigma):  # R plus a rough, noise-like function of the transition
    return lambda obs, a, n: (
      reward(obs, a, n) + sigma * jnp.sin(997.0 * (obs[:, 0] + a[:, 0] + n[:, 1]))
    )

  distances = [
    float(epic.epic_distance(reward, noisy(s), cov, GAMMA, key)) for s in (0.1, 0.5, 2.0)
  ]
  assert distances == sorted(distances) and distances[0] > 0.0
  rewards = [reward, other_reward, noisy(0.5)]
  d = lambda i, j: float(epic.epic_distance(rewards[i], rewards[j], cov, GAMMA, key))  # noqa: E731
  for i, j, k in [(0, 1, 2), (1, 2, 0), (2, 0, 1)]:
    assert d(i, k) <= d(i, j) + d(j, k) + 1e-6


def test_a_constant_reward_has_no_correlation_and_a_bad_discount_is_rejected():
  cov, key = coverage(jax.random.key(9)), jax.random.key(10)
  constant = lambda obs, action, next_obs: jnp.zeros(obs.shape[0])  # noqa: E731
  np.testing.assert_allclose(epic.epic_distance(reward, constant, cov, GAMMA, key), np.sqrt(0.5))
  with pytest.raises(ValueError, match='discount'):
    epic.epic_distance(reward, reward, cov, 1.5, key)
