"""Demonstration files: round trip, episode selection, and rejection of corrupt or mismatched files."""

import json

import numpy as np
import pytest

from irl import demos


def _arrays(episode_lengths=(3, 2), obs_dim=4, act_dim=2, terminal_last=False):
  rng = np.random.default_rng(0)
  n = sum(episode_lengths)
  episode = np.repeat(np.arange(len(episode_lengths)), episode_lengths).astype(np.int32)
  ends = np.cumsum(episode_lengths) - 1
  truncated = np.zeros(n, bool)
  terminated = np.zeros(n, bool)
  truncated[ends] = True
  if terminal_last:
    truncated[ends[-1]], terminated[ends[-1]] = False, True
  return dict(
    obs=rng.normal(size=(n, obs_dim)).astype(np.float32),
    action=rng.normal(size=(n, act_dim)).astype(np.float32),
    next_obs=rng.normal(size=(n, obs_dim)).astype(np.float32),
    reward=np.arange(n, dtype=np.float32),
    terminated=terminated,
    truncated=truncated,
    episode=episode,
  )


def test_round_trip_and_provenance(tmp_path):
  arrays = _arrays(terminal_last=True)
  meta = demos.save(
    str(tmp_path / 'd'), arrays, env='Pendulum', env_version='test', expert='scripted', seed=3
  )
  assert meta['episode_returns'] == [0 + 1 + 2, 3 + 4]
  assert meta['return_mean'] == pytest.approx(5.0) and meta['return_std'] == pytest.approx(2.0)
  assert (meta['num_episodes'], meta['num_transitions'], meta['obs_dim'], meta['act_dim']) == (
    2,
    5,
    4,
    2,
  )
  tr, loaded = demos.load(str(tmp_path / 'd.npz'), env='Pendulum', obs_dim=4, act_dim=2)
  np.testing.assert_array_equal(tr.obs, arrays['obs'])
  np.testing.assert_array_equal(tr.next_obs, arrays['next_obs'])
  np.testing.assert_array_equal(tr.terminated, arrays['terminated'])
  assert loaded['seed'] == 3 and loaded['used_episodes'] == 2


def test_first_episodes_only(tmp_path):
  demos.save(str(tmp_path / 'd'), _arrays((3, 2, 4)), env='E', env_version='v', expert='x', seed=0)
  tr, meta = demos.load(str(tmp_path / 'd'), num_episodes=1)
  assert tr.obs.shape[0] == 3 and meta['used_return_mean'] == pytest.approx(3.0)
  with pytest.raises(demos.DemoError, match=r'num_episodes must be in \[1, 3\]'):
    demos.load(str(tmp_path / 'd'), num_episodes=4)


def test_rejects_wrong_env_and_shapes(tmp_path):
  demos.save(
    str(tmp_path / 'd'), _arrays(), env='PointMaze-Left', env_version='v', expert='x', seed=0
  )
  with pytest.raises(demos.DemoError, match="for env 'PointMaze-Left', not 'Hopper-v5'"):
    demos.load(str(tmp_path / 'd'), env='Hopper-v5')
  with pytest.raises(demos.DemoError, match='obs_dim is 4 but the environment needs 11'):
    demos.load(str(tmp_path / 'd'), obs_dim=11)
  with pytest.raises(demos.DemoError, match='does not exist'):
    demos.load(str(tmp_path / 'missing'))


def test_rejects_corrupt_or_swapped_npz(tmp_path):
  demos.save(str(tmp_path / 'd'), _arrays(), env='E', env_version='v', expert='x', seed=0)
  other = _arrays((4, 1))
  np.savez_compressed(tmp_path / 'd.npz', **other)
  with pytest.raises(demos.DemoError, match='SHA-256'):
    demos.load(str(tmp_path / 'd'))
  (tmp_path / 'd.npz').write_bytes(b'not a zip')
  with pytest.raises(demos.DemoError, match='SHA-256'):
    demos.load(str(tmp_path / 'd'))


def test_rejects_malformed_arrays(tmp_path):
  bad = _arrays()
  bad['action'] = bad['action'][:-1]
  with pytest.raises(demos.DemoError, match="field 'action'"):
    demos.save(str(tmp_path / 'd'), bad, env='E', env_version='v', expert='x', seed=0)
  bad = _arrays()
  bad['truncated'][0] = True  # an episode end in the middle of episode 0
  with pytest.raises(demos.DemoError, match='must end at its last row'):
    demos.save(str(tmp_path / 'd'), bad, env='E', env_version='v', expert='x', seed=0)
  bad = _arrays()
  bad['reward'][1] = np.nan
  with pytest.raises(demos.DemoError, match='non-finite'):
    demos.save(str(tmp_path / 'd'), bad, env='E', env_version='v', expert='x', seed=0)
  # A hand-edited provenance file with an unknown format version.
  demos.save(str(tmp_path / 'd'), _arrays(), env='E', env_version='v', expert='x', seed=0)
  meta = json.loads((tmp_path / 'd.json').read_text())
  meta['format_version'] = 99
  (tmp_path / 'd.json').write_text(json.dumps(meta))
  with pytest.raises(demos.DemoError, match='format_version'):
    demos.load(str(tmp_path / 'd'))
