"""cljax/mesh.py on the 8 fake CPU devices of conftest.py."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType
from jax.sharding import PartitionSpec as P

from cljax import mesh as mesh_lib
from cljax.config import load_module


def test_axis_sizes_infer_minus_one_and_name_bad_fields():
  assert mesh_lib.axis_sizes(-1, 1, 8) == (8, 1, 1)
  assert mesh_lib.axis_sizes(2, -1, 8) == (2, 4, 1)
  assert mesh_lib.axis_sizes(4, 2, 8) == (4, 2, 1)
  assert mesh_lib.axis_sizes(2, 1, 8, model=-1) == (2, 1, 4)
  assert mesh_lib.axis_sizes(-1, 2, 8, model=2) == (2, 2, 2)
  with pytest.raises(
    mesh_lib.MeshError,
    match=r'mesh.seed × mesh.data × mesh.model must equal the '
    r'number of devices \(8\), got 4 × 1 × 1',
  ):
    mesh_lib.axis_sizes(4, 1, 8)
  with pytest.raises(mesh_lib.MeshError, match='8 devices do not split into mesh.data=3'):
    mesh_lib.axis_sizes(-1, 3, 8)
  with pytest.raises(mesh_lib.MeshError, match='mesh.model must be a positive int or -1'):
    mesh_lib.axis_sizes(-1, 1, 8, model=0)
  with pytest.raises(mesh_lib.MeshError, match='mesh.data must be a positive int or -1'):
    mesh_lib.axis_sizes(-1, 0, 8)
  with pytest.raises(mesh_lib.MeshError, match='at most one'):
    mesh_lib.axis_sizes(-1, -1, 8)


def test_make_mesh_has_auto_axes_over_every_device():
  mesh = mesh_lib.make_mesh(seed=-1, data=2)
  assert dict(mesh.shape) == {'seed': 4, 'data': 2, 'model': 1}
  assert mesh.axis_types == (AxisType.Auto,) * 3
  assert mesh.size == jax.device_count() == 8
  mesh_lib.check_seeds(8, mesh)
  with pytest.raises(
    mesh_lib.MeshError, match=r'num_seeds \(6\) must be a multiple of mesh.seed \(4'
  ):
    mesh_lib.check_seeds(6, mesh)


def test_sharded_keys_give_the_unsharded_results_sharded_over_seed():
  mesh = mesh_lib.make_mesh(seed=-1, data=1)
  keys = jax.random.split(jax.random.key(0), 8)
  sharded = mesh_lib.shard_leading(keys, mesh)
  assert sharded.sharding.spec == P('seed')
  assert len({s.device for s in sharded.addressable_shards}) == 8

  def run(key):  # a small vmapped training-like computation
    w = jax.random.normal(key, (4, 4))
    return jax.lax.fori_loop(0, 5, lambda i, w: jnp.tanh(w @ w.T + 0.1), w)

  fn = jax.jit(jax.vmap(run))
  expected = fn(keys)
  out = fn(sharded)
  np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
  assert out.sharding.spec[0] == 'seed'
  fn(mesh_lib.shard_leading(jax.random.split(jax.random.key(1), 8), mesh))
  assert fn._cache_size() == 2  # once unsharded, once sharded; no recompiles


def test_replicate_and_data_sharding():
  mesh = mesh_lib.make_mesh(seed=2, data=4)
  x = mesh_lib.shard_leading(jnp.arange(16.0).reshape(8, 2), mesh, axis='data')
  assert x.sharding.spec == P('data') and x.addressable_shards[0].data.shape == (2, 2)
  r = mesh_lib.replicate({'w': jnp.ones(3)}, mesh)['w']
  assert r.sharding.is_fully_replicated
  assert mesh_lib.describe(mesh)['devices'] == 8 and mesh_lib.describe(None) == {
    'enabled': False,
    'devices': 1,
  }


def _irl_run(workdir, num_env_steps, mesh):
  """irl_train.train of quick OPIRL on PointMaze-Left, 8 seeds, updating over the last 11 of 200
  steps; returns (states, per-seed curves)."""
  from cljax import runs

  pointmaze = load_module('configs/irl/pointmaze.py')
  from irl import builders as irl_builders
  from irl import train as irl_train

  config = pointmaze.get_config('quick')
  config.loop.update(
    num_env_steps=num_env_steps, eval_every=100, start_steps=50, update_after=190, eval_episodes=2
  )
  built = irl_builders.build(config)
  seeds = list(range(8))
  states = irl_train.train(
    str(workdir),
    built.env,
    built.agent,
    built.loop_config,
    seeds,
    env_name=config.env,
    expert_buffer=built.expert_buffer,
    transform_fn=built.parts.prep.transitions,
    mesh=mesh,
  )
  curves = [runs.read_curve(str(workdir / 'metrics.jsonl'), f'eval_return_seed{s}') for s in seeds]
  return states, curves


def _float_leaves(tree):
  return [
    np.asarray(x, np.float64)
    for x in jax.tree.leaves(tree)
    if not jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
  ]


def test_irl_seeds_sharded_over_8_devices_match_the_unsharded_run_and_resume_sharded(tmp_path):
  mesh = mesh_lib.make_mesh(seed=-1, data=1)
  plain_states, plain_curves = _irl_run(tmp_path / 'plain', 200, None)
  states, curves = _irl_run(tmp_path / 'sharded', 200, mesh)
  # Equal up to float32 rounding: each device runs its seed through kernels of other shapes (a batch
  # of 1, not 8 vmapped seeds), so sums round differently. Few updates keep that at rounding level
  # (measured: 1e-7 after one update, 5e-7 after six); over hundreds of Adam steps it grows
  # chaotically (0.03 after 90), so a long run would only be comparable statistically.
  # Adam's normalised steps amplify a rounding difference in a tiny gradient to a step of the learning
  # rate's size, so a parameter may differ by a small relative amount (seen: 1.1e-5 absolute, 4e-4
  # relative, in one of 65,536 entries) while everything else agrees to 1e-7.
  np.testing.assert_allclose(np.array(curves)[..., 1], np.array(plain_curves)[..., 1], atol=1e-3)
  for a, b in zip(_float_leaves(states), _float_leaves(plain_states)):
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)

  # Stopped after one period and resumed from its checkpoint, sharded: exactly the same run.
  _irl_run(tmp_path / 'resumed', 100, mesh)
  resumed_states, resumed_curves = _irl_run(tmp_path / 'resumed', 200, mesh)
  assert resumed_curves == curves
  for a, b in zip(jax.tree.leaves(resumed_states), jax.tree.leaves(states)):
    if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
      a, b = jax.random.key_data(a), jax.random.key_data(b)
    np.testing.assert_array_equal(a, b)


def test_irl_carry_stays_split_over_seed_with_one_compile():
  pointmaze = load_module('configs/irl/pointmaze.py')
  from irl import builders as irl_builders
  from irl import train as irl_train

  mesh = mesh_lib.make_mesh(seed=4, data=2)
  config = pointmaze.get_config('quick')
  config.loop.update(
    num_env_steps=100, eval_every=50, start_steps=20, update_after=10, eval_episodes=1
  )
  built = irl_builders.build(config)
  init, period_fn = irl_train.built_seed_functions(built, mesh)
  carry = init(mesh_lib.shard_leading(irl_train.seed_keys(list(range(8))), mesh))
  for period in range(2):
    carry, _ = period_fn(carry, period)
  for leaf in jax.tree.leaves(carry):
    leaf = (
      jax.random.key_data(leaf) if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key) else leaf
    )
    assert leaf.sharding.shard_shape(leaf.shape)[0] == 2, leaf.sharding  # 8 seeds / 4 devices
  assert period_fn._cache_size() == 1


@pytest.mark.parametrize(
  'seed_axis, data_axis, method', [(-1, 1, 'ewc'), (4, 2, 'ewc'), (2, 4, 'replay')]
)
def test_cl_seeds_and_batches_sharded_match_the_unsharded_run(seed_axis, data_axis, method):
  from cl import builders, train

  split_digits = load_module('configs/cl/split_digits.py')

  config = split_digits.get_config('quick')
  config.update(method=method, num_seeds=8, num_tasks=2, epochs=2)
  stream = builders.build_stream(config)

  def run(mesh):
    learner, m = builders.build_learner(config, stream, mesh)
    compiled = train.compile_learner(learner, mesh)
    rs = train.run_stream(
      compiled,
      stream,
      builders.seed_keys(config, mesh),
      epochs=config.epochs,
      **train.method_flags(m),
    )
    return compiled, rs

  plain_compiled, plain = run(None)
  mesh = mesh_lib.make_mesh(seed_axis, data_axis)
  compiled, sharded = run(mesh)
  np.testing.assert_allclose(sharded.accuracy_matrix, plain.accuracy_matrix, atol=1e-6)
  for a, b in zip(jax.tree.leaves(sharded.train_state), jax.tree.leaves(plain.train_state)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
  for leaf in jax.tree.leaves(sharded.train_state):
    assert leaf.sharding.shard_shape(leaf.shape)[0] == 8 // mesh.shape['seed']
  # The mesh adds no compilations: one per distinct task-data shape (the two digit tasks have 242 and
  # 243 training examples), as without it, and none between epochs.
  for name in ('init', 'begin_task', 'train_epoch', 'consolidate', 'accuracy'):
    assert getattr(compiled, name)._cache_size() == getattr(plain_compiled, name)._cache_size(), (
      name
    )
  assert compiled.train_epoch._cache_size() == 2


@pytest.mark.slow
def test_train_cl_script_with_a_mesh_and_a_bad_mesh(tmp_path):
  import json
  import os
  import subprocess
  import sys

  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=8', JAX_PLATFORMS='cpu')

  def train_cl(*args):
    return subprocess.run(
      [
        sys.executable,
        os.path.join(root, 'scripts', 'train_cl.py'),
        '--config',
        'configs/cl/split_digits.py:quick',
        '--config.method=ewc',
        *args,
      ],
      cwd=root,
      env=env,
      capture_output=True,
      text=True,
      timeout=600,
    )

  proc = train_cl(
    '--config.num_seeds=4',
    '--config.mesh.enabled=True',
    '--config.mesh.data=2',
    f'--workdir={tmp_path / "ok"}',
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  results = json.loads((tmp_path / 'ok' / 'results.json').read_text())
  assert len(results['per_seed']) == 4
  proc = train_cl(
    '--config.num_seeds=3', '--config.mesh.enabled=True', f'--workdir={tmp_path / "bad"}'
  )
  assert proc.returncode != 0
  assert 'num_seeds (3) must be a multiple of mesh.seed (8' in proc.stderr
  assert not (tmp_path / 'bad').exists()


def test_model_spec_splits_the_largest_divisible_dimension_of_large_leaves():
  assert mesh_lib.model_spec((64, 64), 4, min_size=1000) == P('model')  # first of equals
  assert mesh_lib.model_spec((64, 100), 4, min_size=1000) == P(None, 'model')
  assert mesh_lib.model_spec((6, 100), 8, min_size=100) == P()  # 8 divides neither
  assert mesh_lib.model_spec((3, 256), 2, min_size=100) == P(None, 'model')
  assert mesh_lib.model_spec((100,), 4, min_size=1000) == P()  # too small
  assert mesh_lib.model_spec((), 4, min_size=0) == P()
  assert mesh_lib.model_spec((4096, 4096), 1) == P()  # no model axis
  mesh = mesh_lib.make_mesh(2, 1, model=4)
  tree = {
    'w': jax.ShapeDtypeStruct((64, 100), jnp.float32),  # one seed's state
    'b': jax.ShapeDtypeStruct((100,), jnp.float32),
    'key': jax.ShapeDtypeStruct((), jax.random.key(0).dtype),
  }
  specs = jax.tree.map(lambda s: s.spec, mesh_lib.state_shardings(tree, mesh, min_size=1000))
  assert specs == {'w': P('seed', None, 'model'), 'b': P('seed'), 'key': P('seed')}


def _model_split(leaf, mesh):
  return (
    'model' in tuple(leaf.sharding.spec)
    and leaf.addressable_shards[0].data.size * mesh.shape['seed'] * mesh.shape['model'] == leaf.size
  )


@pytest.mark.parametrize('axes, method', [((2, 1, 4), 'ewc'), ((2, 2, 2), 'si')])
def test_cl_state_sharded_over_model_matches_the_unsharded_run(axes, method, tmp_path):
  """A model axis (for a model too large for one device): the weights, their optimizer moments and
  the method's per-weight state are split over it and stay split; the numbers do not change."""
  from cl import builders, train

  split_digits = load_module('configs/cl/split_digits.py')

  config = split_digits.get_config('quick')
  config.update(method=method, num_seeds=2, num_tasks=2, epochs=2)
  config.mesh.model_min_size = 1000  # split the 64×64 weights (4096), not the biases
  stream = builders.build_stream(config)

  def run(mesh):
    learner, m = builders.build_learner(config, stream, mesh)
    compiled = builders.compile_learner(config, learner, mesh)
    rs = train.run_stream(
      compiled,
      stream,
      builders.seed_keys(config, mesh),
      epochs=config.epochs,
      mesh=mesh,
      **train.method_flags(m),
    )
    return compiled, rs

  plain_compiled, plain = run(None)
  mesh = mesh_lib.make_mesh(axes[0], axes[1], model=axes[2])
  compiled, sharded = run(mesh)
  np.testing.assert_allclose(sharded.accuracy_matrix, plain.accuracy_matrix, atol=1e-6)
  for a, b in zip(jax.tree.leaves(sharded.train_state), jax.tree.leaves(plain.train_state)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
  split = [leaf.shape for leaf in jax.tree.leaves(sharded.train_state) if _model_split(leaf, mesh)]
  big = [leaf.shape for leaf in jax.tree.leaves(sharded.train_state) if leaf.size // 2 >= 1000]
  assert split == big and len(big) >= 3, (split, big)  # weights, Adam moments, EWC/SI state
  for name in ('init', 'begin_task', 'train_epoch', 'consolidate', 'accuracy'):
    assert getattr(compiled, name)._cache_size() == getattr(plain_compiled, name)._cache_size(), (
      name
    )

  # A checkpoint restores onto the same shardings (what train_cl.py does on resume).
  from cljax.checkpoint import Checkpointer

  target = train.abstract_run_state(compiled, stream, builders.seed_keys(config, mesh), mesh)
  with Checkpointer(str(tmp_path)) as ckpt:
    ckpt.save(2, sharded, {'tasks_done': 2})
    restored, _ = ckpt.restore(2, target)
  for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(sharded)):
    assert a.sharding == b.sharding
    np.testing.assert_array_equal(a, b)


def test_irl_agent_state_sharded_over_model_matches_and_resumes(tmp_path):
  pointmaze = load_module('configs/irl/pointmaze.py')
  from irl import builders as irl_builders
  from irl import train as irl_train

  config = pointmaze.get_config('quick')
  config.loop.update(
    num_env_steps=200, eval_every=100, start_steps=50, update_after=198, eval_episodes=2
  )
  built = irl_builders.build(config)
  mesh = mesh_lib.make_mesh(2, 1, model=4)

  def run(workdir, mesh, steps=200):
    loop_config = dataclasses.replace(built.loop_config, num_env_steps=steps)
    return irl_train.train(
      str(workdir),
      built.env,
      built.agent,
      loop_config,
      [0, 1],
      env_name=config.env,
      expert_buffer=built.expert_buffer,
      transform_fn=built.parts.prep.transitions,
      mesh=mesh,
      model_min_size=1000,
    )

  plain = run(tmp_path / 'plain', None)
  sharded = run(tmp_path / 'sharded', mesh)
  # A model axis sums partial products in another order: equal up to rounding, which Adam can
  # amplify to a step (the learning rate) of either sign where it divides a near-zero gradient by
  # its own root mean square; two updates (steps 198 and 199) keep that from compounding.
  one_step = max(config.sac.critic_lr, config.sac.actor_lr, config.discriminator.learning_rate)
  for a, b in zip(_float_leaves(sharded), _float_leaves(plain)):
    np.testing.assert_allclose(a, b, atol=4 * one_step)

  init, period_fn = irl_train.built_seed_functions(
    built,
    mesh,
    model_min_size=1000,
  )
  carry = init(mesh_lib.shard_leading(irl_train.seed_keys([0, 1]), mesh))
  carry, _ = period_fn(carry, 0)
  carry, _ = period_fn(carry, 1)
  assert period_fn._cache_size() == 1
  leaves = [
    x
    for x in jax.tree.leaves(carry.agent_state)
    if not jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
  ]
  split = [x.shape for x in leaves if _model_split(x, mesh)]
  assert split == [x.shape for x in leaves if x.size // 2 >= 1000] and split
  assert not any('model' in tuple(x.sharding.spec) for x in jax.tree.leaves(carry.buffer))

  run(tmp_path / 'resumed', mesh, steps=100)  # stopped after one period, resumed
  resumed = run(tmp_path / 'resumed', mesh)
  for a, b in zip(_float_leaves(resumed), _float_leaves(sharded)):
    np.testing.assert_array_equal(a, b)


def test_from_config_reads_the_model_axis_and_checks_min_size():
  import ml_collections

  cfg = lambda **kw: ml_collections.ConfigDict(
    dict(enabled=True, seed=2, data=1, model=-1, model_min_size=4, **kw)
  )
  assert dict(mesh_lib.from_config(cfg()).shape) == {'seed': 2, 'data': 1, 'model': 4}
  bad = cfg()
  bad.model_min_size = 0
  with pytest.raises(mesh_lib.MeshError, match='mesh.model_min_size must be a positive int'):
    mesh_lib.from_config(bad)
  bad = cfg()
  bad.model = 3
  with pytest.raises(
    mesh_lib.MeshError, match=r'must equal the number of devices \(8\), got 2 × 1 × 3'
  ):
    mesh_lib.from_config(bad)
