"""The Brax adapter: spec, pure reset/step under jit/vmap/scan, exact dynamics of Brax's trivial
'fast' env, time limit vs termination, and one trace per jitted rollout."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip('brax')

from envs.brax_adapter import BraxEnvState, make_brax  # noqa: E402
from envs.core import EnvError, step_autoreset  # noqa: E402

warnings.filterwarnings('ignore', message='Brax System, piplines and environments')


@pytest.fixture(autouse=True)
def _mujoco_log_in_tmp(tmp_path, monkeypatch):
  # MuJoCo appends compiler warnings on Brax's MJCF files (settotalmass) to ./MUJOCO_LOG.TXT.
  monkeypatch.chdir(tmp_path)


def _rollout(env, action, num_steps):
  """A `step_autoreset` rollout from a key with a constant action: the stacked AutoResetSteps, with
  the adapter's step counter in place of the state."""

  def run(key):
    reset_key, key = jax.random.split(key)
    state, obs = env.reset(reset_key)

    def body(carry, step_key):
      state, obs = carry
      out = step_autoreset(env, state, action, step_key)
      return (out.state, out.obs), out._replace(state=out.state.steps)

    return jax.lax.scan(body, (state, obs), jax.random.split(key, num_steps))[1]

  return run


def test_fast_spec_and_exact_dynamics_with_time_limit():
  env = make_brax('fast', max_episode_steps=3)
  spec = env.spec
  assert spec.name == 'fast' and spec.max_episode_steps == 3
  assert spec.observation.shape == (2,) and spec.action.shape == (1,)
  np.testing.assert_array_equal(spec.action.low, [-1.0])
  np.testing.assert_array_equal(spec.action.high, [1.0])
  assert isinstance(env.reset(jax.random.key(0))[0], BraxEnvState)
  brax_env = env._env
  traces = brax_env.step_count  # Brax's 'fast' counts step traces, not calls
  out = jax.jit(_rollout(env, jnp.ones(1), 7))(jax.random.key(0))
  assert brax_env.step_count - traces == 1  # one trace for the whole jitted rollout
  # 'fast': vel_k = 0.02 k, pos_k = 0.02 Σ_{j<=k} vel_j = 4e-4 k(k+1)/2, obs = (pos, vel),
  # reward = pos; the time limit restarts k every 3 steps.
  k = np.array([1, 2, 3, 1, 2, 3, 1])
  pos, vel = 4e-4 * k * (k + 1) / 2, 0.02 * k
  np.testing.assert_allclose(out.next_obs, np.stack([pos, vel], 1), rtol=1e-5)
  np.testing.assert_allclose(out.reward, pos, rtol=1e-5)
  np.testing.assert_array_equal(out.truncated, k == 3)
  assert not np.any(out.terminated)
  # After a truncation the agent acts from the reset observation; next_obs stays the true one.
  np.testing.assert_array_equal(out.obs[k == 3], np.zeros((2, 2)))
  np.testing.assert_array_equal(out.obs[k != 3], out.next_obs[k != 3])
  np.testing.assert_array_equal(out.state, np.where(k == 3, 0, k))  # the step counter


def test_termination_is_not_truncation_vmapped_over_seeds():
  # inverted_pendulum ends when |pole angle| = |obs[1]| > 0.2; a full push tips it on step 2,
  # which is also the time limit here: that step is terminal only (never bootstrapped). A limit
  # reached without termination is a truncation (the 'fast' test above).
  env = make_brax('inverted_pendulum', max_episode_steps=2)
  np.testing.assert_array_equal(env.spec.action.low, [-3.0])  # from the MJCF ctrlrange
  keys = jax.random.split(jax.random.key(1), 2)
  rollout = jax.jit(jax.vmap(_rollout(env, jnp.ones(1), 4)))
  out = rollout(keys)
  np.testing.assert_array_equal(out.terminated, [[False, True, False, True]] * 2)
  assert not np.any(out.truncated)
  np.testing.assert_array_equal(np.abs(out.next_obs[..., 1]) > 0.2, out.terminated)
  assert np.all(np.abs(out.obs[..., 1]) <= 0.2)  # the resets are upright
  assert not np.array_equal(out.next_obs[0], out.next_obs[1])  # reset noise differs by seed
  np.testing.assert_array_equal(out.next_obs, rollout(keys).next_obs)  # a function of the seed


def test_errors():
  with pytest.raises(EnvError, match=r"name must be one of .*'ant'.*'hopper'"):
    make_brax('Hopper-v5')
  with pytest.raises(EnvError, match='max_episode_steps'):
    make_brax('fast', max_episode_steps=0)
  env = make_brax('fast')
  state, _ = env.reset(jax.random.key(0))
  with pytest.raises(EnvError, match=r'action must have shape \(1,\)'):
    env.step(state, jnp.ones(2))
