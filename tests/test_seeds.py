"""Seed i names one run: the same keys alone, as member i of an n-seed run, on a mesh, in a sweep task.

`config.seed_batching='map'` (irl/irl_train.seed_functions) makes that run the same bit for bit; the
default 'vmap' batches the seeds, whose kernels round differently from one seed's, so seed i agrees
with its run alone only to float tolerance over a short run (RL training then amplifies it). The
continual-learning trainer's vmapped seeds: tests/test_train.py::test_vmapped_seeds_equal_seeds_run_alone.
"""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from cljax import mesh as mesh_lib
from cljax.config import ConfigError, load_module

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def built():
  pointmaze = load_module('configs/irl/pointmaze.py')
  from irl import builders as irl_builders

  config = pointmaze.get_config('quick')
  # 40 discriminator and SAC updates per seed after the first 60 steps, in two periods.
  config.loop.update(
    num_env_steps=200, eval_every=100, start_steps=60, update_after=160, eval_episodes=2
  )
  return irl_builders.build(config)


def _run(built, seeds, seed_batching, mesh=None):
  """The final carry's agent state and the evaluation returns, as NumPy, of `seeds` run together."""
  from irl import train as irl_train

  init, period_fn = irl_train.built_seed_functions(built, mesh, seed_batching=seed_batching)
  keys = irl_train.seed_keys(seeds)
  carry = init(keys if mesh is None else mesh_lib.shard_leading(keys, mesh))
  returns = []
  for period in range(2):
    carry, metrics = period_fn(carry, period)
    returns.append(np.asarray(metrics['eval_return']))
  return jax.tree.map(np.asarray, carry.agent_state), np.stack(returns, axis=1)


def _member(tree, i):
  return jax.tree.map(lambda x: x[i], tree)


def _assert_equal(a, b):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_array_equal(x, y)


def test_map_gives_seed_i_bit_for_bit_alone_and_at_any_position(built):
  group_state, group_returns = _run(built, [3, 1, 2], 'map')
  alone_state, alone_returns = _run(built, [1], 'map')
  _assert_equal(_member(group_state, 1), _member(alone_state, 0))
  np.testing.assert_array_equal(group_returns[1], alone_returns[0])
  # The mirror: the seeds of the group are different runs, so the equality above is not trivial.
  first, second = (_member(group_state, i) for i in (0, 1))
  assert not any(
    np.allclose(x, y)
    for x, y in zip(jax.tree.leaves(first), jax.tree.leaves(second))
    if x.ndim == 2 and x.dtype == np.float32
  )  # every weight matrix differs


def test_map_on_a_mesh_equals_seed_i_alone(built):
  mesh = mesh_lib.make_mesh(seed=2, data=2, devices=jax.devices()[:4])
  sharded_state, sharded_returns = _run(built, [0, 1, 2, 3], 'map', mesh)
  alone_state, alone_returns = _run(built, [2], 'map')
  _assert_equal(_member(sharded_state, 2), _member(alone_state, 0))
  np.testing.assert_array_equal(sharded_returns[2], alone_returns[0])


def test_vmap_gives_seed_i_to_float_tolerance_over_a_short_run(built):
  group_state, group_returns = _run(built, [0, 1, 2], 'vmap')
  alone_state, alone_returns = _run(built, [1], 'vmap')
  # 40 updates keep the batched kernels' rounding small (Adam may turn a rounding-level gradient into
  # a step of the learning rate's size in a few entries, hence the relative tolerance).
  for x, y in zip(
    jax.tree.leaves(_member(group_state, 1)), jax.tree.leaves(_member(alone_state, 0))
  ):
    if not jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
      np.testing.assert_allclose(x, y, rtol=1e-3, atol=1e-4)
  np.testing.assert_allclose(group_returns[1], alone_returns[0], atol=0.05)


def test_seed_batching_is_checked_before_compute(built):
  from irl import train as irl_train

  with pytest.raises(
    ConfigError, match=r"seed_batching must be one of \['vmap', 'map'\], got 'scan'"
  ):
    irl_train.seed_functions(built.env, built.agent, built.loop_config, seed_batching='scan')
  with pytest.raises(ConfigError, match="split a seed over the mesh's model axis"):
    mesh_lib.check_seed_batching(
      'map',
      mesh_lib.make_mesh(seed=2, data=1, model=2, devices=jax.devices()[:4]),
      splits_data=False,
    )
  mesh_lib.check_seed_batching(
    'map', mesh_lib.make_mesh(seed=2, data=2, devices=jax.devices()[:4]), splits_data=False
  )  # the IRL loop's data axis holds copies


# ---------------------------------------------------------------------------------------------------
# Continual learning


def _cl_run(method, seed, num_seeds, seed_batching, mesh=None):
  from cl import builders, train

  split_digits = load_module('configs/cl/split_digits.py')

  config = split_digits.get_config('quick')
  config.update(
    method=method,
    seed=seed,
    num_seeds=num_seeds,
    num_tasks=3,
    epochs=2,
    seed_batching=seed_batching,
  )
  builders.validate_config(config)
  stream = builders.build_stream(config)
  learner, m = builders.build_learner(config, stream, mesh)
  compiled = builders.compile_learner(config, learner, mesh)
  result = train.run_stream(
    compiled,
    stream,
    builders.seed_keys(config, mesh),
    epochs=config.epochs,
    **train.method_flags(m),
  )
  return np.asarray(result.accuracy_matrix), jax.tree.map(np.asarray, result.train_state.params)


@pytest.mark.parametrize('method', ['ewc', 'fromp'])
def test_cl_map_gives_seed_i_bit_for_bit_alone_in_a_group_and_on_a_mesh(method):
  """With `data_seed` shared (the stream's random choices), only the keys tell the seeds apart."""
  group_matrix, group_params = _cl_run(method, 0, 4, 'map')
  alone_matrix, alone_params = _cl_run(method, 2, 1, 'map')
  np.testing.assert_array_equal(group_matrix[2], alone_matrix[0])
  _assert_equal(_member(group_params, 2), _member(alone_params, 0))
  # The mirror: the seeds of the group are different runs.
  assert not np.array_equal(group_params['head']['kernel'][1], group_params['head']['kernel'][2])
  if method == 'fromp':
    # On a mesh of this machine's CPU devices FROMP is not bit-equal (measured: parameters 3e-4 apart
    # after 6 epochs, the accuracy matrix equal): the devices of one process share XLA's CPU thread
    # pool, which splits large products by how it is shared (tests/test_distributed.py, SMALL_SAC).
    return
  mesh = mesh_lib.make_mesh(seed=2, data=1, devices=jax.devices()[:2])
  mesh_matrix, mesh_params = _cl_run(method, 0, 4, 'map', mesh)
  np.testing.assert_array_equal(mesh_matrix, group_matrix)
  _assert_equal(mesh_params, group_params)


def test_cl_map_cannot_split_a_seed_over_data():
  with pytest.raises(ConfigError, match="split a seed over the mesh's data axis"):
    mesh_lib.check_seed_batching(
      'map', mesh_lib.make_mesh(seed=2, data=2, devices=jax.devices()[:4])
    )


@pytest.mark.slow
def test_train_irl_seed_alone_equals_its_member_of_a_mapped_run(tmp_path):
  """The scripts: `--config.seed=1` alone and seed 1 of `--config.num_seeds=3`, both with
  `--config.seed_batching=map`, write the same learning curve and the same reward."""
  from irl import rewards

  args = [
    '--config',
    'configs/irl/pointmaze.py:quick',
    '--config.seed_batching=map',
    '--config.loop.num_env_steps=1000',
    '--config.loop.eval_every=500',
  ]

  def train(name, *extra):
    proc = subprocess.run(
      [
        sys.executable,
        os.path.join(ROOT, 'scripts', 'train_irl.py'),
        *args,
        f'--workdir={tmp_path / name}',
        *extra,
      ],
      cwd=ROOT,
      capture_output=True,
      text=True,
      timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((tmp_path / name / 'results.json').read_text())

  group = train('group', '--config.num_seeds=3')
  alone = train('alone', '--config.seed=1')
  assert group['per_seed'][1] == alone['per_seed'][0]
  for x, y in zip(
    jax.tree.leaves(rewards.load_reward(str(tmp_path / 'group' / 'reward' / 'seed1')).params),
    jax.tree.leaves(rewards.load_reward(str(tmp_path / 'alone' / 'reward' / 'seed1')).params),
  ):
    np.testing.assert_array_equal(x, y)
  bad = subprocess.run(
    [
      sys.executable,
      os.path.join(ROOT, 'scripts', 'train_irl.py'),
      '--config',
      'configs/irl/pointmaze.py:quick',
      '--config.seed_batching=scan',
      f'--workdir={tmp_path / "bad"}',
    ],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert bad.returncode == 2 and 'Traceback' not in bad.stderr
  assert "config.seed_batching must be one of ['vmap', 'map'], got 'scan'" in bad.stderr
