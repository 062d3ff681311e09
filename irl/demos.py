"""Expert demonstrations on disk: one `.npz` of transitions plus a `.json` of provenance.

File format (written by `save`, read by `load`; `scripts/collect_demos.py` produces them):

`<name>.npz` holds one row per transition, episodes stored back to back in order:
  obs        float32 [N, obs_dim]   observation the expert acted from
  action     float32 [N, act_dim]   the expert's action (deterministic mode)
  next_obs   float32 [N, obs_dim]   the true next observation (never an auto-reset observation)
  reward     float32 [N]            the environment's reward
  terminated bool    [N]            true termination (no bootstrapping past it)
  truncated  bool    [N]            time-limit cut
  episode    int32   [N]            episode index 0..E-1 of each row
An episode ends at its last row, where `terminated or truncated` holds.

`<name>.json` (provenance) holds at least: `format_version`, `env` (registry name), `env_version`
(e.g. 'gymnasium 1.4.0 / mujoco 4.0.0' or 'cljax jax-native v1'), `obs_dim`, `act_dim`, `num_episodes`,
`num_transitions`, `episode_returns`, `return_mean`, `return_std`, `expert` (how the actions were chosen:
'scripted' or a checkpoint path), `seed`, `created` and `npz_sha256` (checked on load, so a corrupt or
swapped file is rejected).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from typing import Any

import numpy as np

from irl.replay import Transition

FORMAT_VERSION = 1
FIELDS = ('obs', 'action', 'next_obs', 'reward', 'terminated', 'truncated', 'episode')


class DemoError(ValueError):
  """A demonstration file that is missing, corrupt or does not match the environment."""


def _sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def paths(prefix: str) -> tuple[str, str]:
  """(`prefix.npz`, `prefix.json`); `prefix` may also be given with either extension."""
  for ext in ('.npz', '.json'):
    if prefix.endswith(ext):
      prefix = prefix[: -len(ext)]
  return prefix + '.npz', prefix + '.json'


def episode_returns(reward: np.ndarray, episode: np.ndarray) -> np.ndarray:
  return np.bincount(episode, weights=reward).astype(np.float64)


def save(
  prefix: str,
  arrays: dict[str, np.ndarray],
  *,
  env: str,
  env_version: str,
  expert: str,
  seed: int,
  extra: dict[str, Any] | None = None,
) -> dict:
  """Writes `prefix.npz` and `prefix.json` after checking the arrays; returns the provenance dict."""
  arrays = {k: np.asarray(arrays[k]) for k in FIELDS}
  _check_arrays(arrays, source='arrays to save')
  npz_path, json_path = paths(prefix)
  os.makedirs(os.path.dirname(os.path.abspath(npz_path)), exist_ok=True)
  np.savez_compressed(npz_path, **arrays)
  returns = episode_returns(arrays['reward'], arrays['episode'])
  meta = {
    'format_version': FORMAT_VERSION,
    'env': env,
    'env_version': env_version,
    'obs_dim': int(arrays['obs'].shape[1]),
    'act_dim': int(arrays['action'].shape[1]),
    'num_episodes': int(returns.size),
    'num_transitions': int(arrays['obs'].shape[0]),
    'episode_returns': returns.tolist(),
    'return_mean': float(returns.mean()),
    'return_std': float(returns.std()),
    'expert': expert,
    'seed': int(seed),
    'created': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
    'npz_sha256': _sha256(npz_path),
    **(extra or {}),
  }
  with open(json_path, 'w', encoding='utf-8') as f:
    json.dump(meta, f, indent=1)
  return meta


def _check_arrays(arrays: dict[str, np.ndarray], source: str) -> None:
  missing = [k for k in FIELDS if k not in arrays]
  if missing:
    raise DemoError(
      f'{source}: missing fields {missing}; a demonstration file holds {list(FIELDS)}'
    )
  n = arrays['obs'].shape[0] if arrays['obs'].ndim == 2 else -1
  expect = {
    'obs': 2,
    'action': 2,
    'next_obs': 2,
    'reward': 1,
    'terminated': 1,
    'truncated': 1,
    'episode': 1,
  }
  for k, ndim in expect.items():
    if arrays[k].ndim != ndim or arrays[k].shape[0] != n or n < 1:
      raise DemoError(
        f'{source}: field {k!r} must have {ndim} dimension(s) and {max(n, 1)}+ rows '
        f'like obs, got shape {arrays[k].shape} (obs {arrays["obs"].shape})'
      )
  if arrays['next_obs'].shape != arrays['obs'].shape:
    raise DemoError(
      f'{source}: next_obs shape {arrays["next_obs"].shape} != obs shape {arrays["obs"].shape}'
    )
  for k in ('obs', 'action', 'next_obs', 'reward'):
    if not np.all(np.isfinite(arrays[k])):
      raise DemoError(f'{source}: field {k!r} holds non-finite values')
  episode = arrays['episode']
  ends = np.logical_or(arrays['terminated'], arrays['truncated'])
  if episode[0] != 0 or np.any(np.diff(episode) < 0) or np.any(np.diff(episode) > 1):
    raise DemoError(f'{source}: field "episode" must count 0, 1, 2, ... in order')
  boundary = np.append(np.diff(episode) == 1, True)
  if not np.array_equal(boundary, ends):
    raise DemoError(
      f'{source}: every episode must end at its last row with terminated or truncated '
      'set, and nowhere else'
    )


def load(
  prefix: str,
  *,
  env: str | None = None,
  obs_dim: int | None = None,
  act_dim: int | None = None,
  num_episodes: int | None = None,
) -> tuple[Transition, dict]:
  """Reads and checks a demonstration file; returns `(transitions, provenance)`.

  Args:
    prefix: path without extension (or with `.npz` / `.json`).
    env: if given, the provenance's env name must equal it.
    obs_dim, act_dim: if given, the arrays must have these widths (e.g. the environment's spec).
    num_episodes: keep only the first this many episodes (e.g. 1 for one-trajectory imitation);
      the provenance then also holds `used_episodes` and `used_return_mean` for what was kept.

  Raises:
    DemoError naming what is wrong: missing files, a checksum mismatch, wrong fields or shapes, a
    different environment, too few episodes.
  """
  npz_path, json_path = paths(prefix)
  for p in (npz_path, json_path):
    if not os.path.exists(p):
      raise DemoError(
        f'demonstration file {p} does not exist; generate it with scripts/collect_demos.py'
      )
  with open(json_path, encoding='utf-8') as f:
    meta = json.load(f)
  if meta.get('format_version') != FORMAT_VERSION:
    raise DemoError(
      f'{json_path}: format_version {meta.get("format_version")!r} is not {FORMAT_VERSION}'
    )
  digest = _sha256(npz_path)
  if digest != meta.get('npz_sha256'):
    raise DemoError(
      f'{npz_path}: SHA-256 {digest} does not match the provenance file '
      f'({meta.get("npz_sha256")}); the file is corrupt or not the one described'
    )
  if env is not None and meta.get('env') != env:
    raise DemoError(f'{npz_path} holds demonstrations for env {meta.get("env")!r}, not {env!r}')
  with np.load(npz_path) as data:
    arrays = {k: data[k] for k in data.files}
  _check_arrays(arrays, source=npz_path)
  for name, want, got in (
    ('obs_dim', obs_dim, arrays['obs'].shape[1]),
    ('act_dim', act_dim, arrays['action'].shape[1]),
  ):
    if want is not None and want != got:
      raise DemoError(f'{npz_path}: {name} is {got} but the environment needs {want}')
  if num_episodes is not None:
    available = int(arrays['episode'][-1]) + 1
    if not 1 <= num_episodes <= available:
      raise DemoError(f'{npz_path}: num_episodes must be in [1, {available}], got {num_episodes}')
    keep = arrays['episode'] < num_episodes
    arrays = {k: v[keep] for k, v in arrays.items()}
  transitions = Transition(
    obs=arrays['obs'].astype(np.float32),
    action=arrays['action'].astype(np.float32),
    reward=arrays['reward'].astype(np.float32),
    next_obs=arrays['next_obs'].astype(np.float32),
    terminated=arrays['terminated'].astype(bool),
    truncated=arrays['truncated'].astype(bool),
  )
  used = episode_returns(arrays['reward'], arrays['episode'])
  meta = dict(meta, used_episodes=int(used.size), used_return_mean=float(used.mean()))
  return transitions, meta
