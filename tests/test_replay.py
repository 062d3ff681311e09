"""Tests for irl/replay.py: ring-buffer arithmetic against a numpy model, sampling support and
uniformity, transition integrity, vmap/jit/sharding equivalence, no retracing, no whole-buffer copy
in a scan, orbax round-trip, the expert buffer and expert normalisation statistics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from scipy import stats

from cljax.checkpoint import Checkpointer
from irl import replay

OBS_DIM, ACT_DIM = 3, 2


def _example():
  return replay.Transition(
    obs=jnp.zeros(OBS_DIM),
    action=jnp.zeros(ACT_DIM),
    reward=jnp.zeros(()),
    next_obs=jnp.zeros(OBS_DIM),
    terminated=jnp.zeros((), bool),
    truncated=jnp.zeros((), bool),
  )


def _numbered(start, count):
  """`count` transitions whose every field encodes its stream index i = start, start+1, ... (from 1)."""
  i = np.arange(start, start + count, dtype=np.float32)
  return replay.Transition(
    obs=np.stack([i, 2 * i, 3 * i], axis=1),
    action=np.stack([-i, i + 0.5], axis=1),
    reward=i,
    next_obs=np.stack([i + 1, 2 * i + 1, 3 * i + 1], axis=1),
    terminated=(i % 3 == 0),
    truncated=(i % 5 == 0),
  )


def _stack(transitions):
  """Per-seed transitions stacked along a new leading seed axis."""
  return jax.tree.map(lambda *xs: jnp.stack(xs), *transitions)


def _assert_tree_equal(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_init_allocates_zeros_with_example_shapes_and_dtypes():
  buffer = replay.init(_example(), capacity=7)
  assert buffer.capacity == 7
  assert buffer.data.obs.shape == (7, OBS_DIM) and buffer.data.obs.dtype == jnp.float32
  assert buffer.data.action.shape == (7, ACT_DIM)
  assert buffer.data.reward.shape == (7,)
  assert buffer.data.terminated.dtype == jnp.bool_ and buffer.data.truncated.dtype == jnp.bool_
  assert buffer.position.dtype == jnp.int32 and buffer.size.dtype == jnp.int32
  assert int(buffer.position) == 0 and int(buffer.size) == 0
  assert all(not np.any(np.asarray(x)) for x in jax.tree.leaves(buffer.data))
  for bad in (0, -3, 2.5, True):
    with pytest.raises(ValueError, match='capacity'):
      replay.init(_example(), capacity=bad)
  with pytest.raises(ValueError, match='next_obs'):
    replay.init(_example()._replace(next_obs=jnp.zeros(OBS_DIM + 1)), capacity=4)


def test_wrap_around_positions_and_contents_match_a_numpy_ring():
  capacity = 5
  buffer = replay.init(_example(), capacity)
  model = {f: np.zeros_like(np.asarray(x)) for f, x in zip(replay.Transition._fields, buffer.data)}
  position, size, start = 0, 0, 1
  for batch_size in (3, 4, 5, 1, 2, 5):  # wraps mid-batch, writes exact capacity, lands on the seam
    batch = _numbered(start, batch_size)
    buffer = replay.add(buffer, batch)
    for row in range(batch_size):
      for field, value in zip(replay.Transition._fields, batch):
        model[field][position] = value[row]
      position = (position + 1) % capacity
    size = min(size + batch_size, capacity)
    start += batch_size
    assert int(buffer.position) == position and int(buffer.size) == size
    for field, stored in zip(replay.Transition._fields, buffer.data):
      np.testing.assert_array_equal(np.asarray(stored), model[field])
  # Hand check after 20 transitions: slots hold stream indices 16..20 with 16 at slot (20 - 5) % 5 = 0.
  np.testing.assert_array_equal(np.asarray(buffer.data.reward), [16, 17, 18, 19, 20])
  assert int(buffer.position) == 0


def test_masked_add_equals_adding_only_the_valid_rows():
  capacity = 5
  masked = plain = replay.init(_example(), capacity)
  add = jax.jit(replay.add)  # one trace for every mask: the mask is data, not a shape
  start = 1
  for mask in ([1, 0, 1, 1], [0, 0, 0, 0], [1, 1, 0, 1], [0, 1, 1, 1], [1, 1, 1, 1]):
    batch, mask = _numbered(start, 4), np.asarray(mask, bool)
    masked = add(masked, batch, mask)
    if mask.any():
      plain = replay.add(plain, jax.tree.map(lambda x: x[mask], batch))
    _assert_tree_equal(masked, plain)
    start += 4
  # 13 valid rows into 5 slots: valid row k sits in slot k % 5, so the last five (stream indices
  # 16..20, rows 8..12) fill slots 3, 4, 0, 1, 2 and the next write goes to slot 13 % 5 = 3.
  assert int(masked.size) == 5 and int(masked.position) == 3
  np.testing.assert_array_equal(np.asarray(masked.data.reward), [18, 19, 20, 16, 17])
  with pytest.raises(ValueError, match=r'valid must have shape \(4,\)'):
    replay.add(masked, _numbered(1, 4), np.ones(3, bool))


def test_fill_level_and_can_sample():
  buffer = replay.init(_example(), capacity=6)
  assert not bool(replay.can_sample(buffer, 1))
  levels = []
  for start, batch_size in ((1, 2), (3, 2), (5, 1), (6, 4)):
    buffer = replay.add(buffer, _numbered(start, batch_size))
    levels.append(int(buffer.size))
  assert levels == [2, 4, 5, 6]
  assert bool(replay.can_sample(buffer, 6)) and not bool(replay.can_sample(buffer, 7))
  half = replay.add(replay.init(_example(), capacity=6), _numbered(1, 3))
  assert bool(replay.can_sample(half, 3)) and not bool(replay.can_sample(half, 4))


def test_sampling_never_returns_unfilled_slots():
  buffer = replay.add(replay.init(_example(), capacity=64), _numbered(1, 10))
  batch = replay.sample(buffer, jax.random.key(0), 5000)
  rewards = np.asarray(batch.reward)
  assert rewards.min() >= 1 and rewards.max() <= 10  # unfilled slots hold reward 0
  assert set(rewards.astype(int)) == set(range(1, 11))
  with pytest.raises(ValueError, match='empty'):
    replay.sample(replay.init(_example(), capacity=4), jax.random.key(0), 2)
  with pytest.raises(ValueError, match='batch_size'):
    replay.sample(buffer, jax.random.key(0), 0)


@pytest.mark.parametrize('num_added', [12, 29])  # partly filled; overfilled (wrapped) capacity 16
def test_sampling_is_uniform_over_filled_slots(num_added):
  capacity, draws = 16, 32_000
  buffer = replay.add(replay.init(_example(), capacity), _numbered(1, min(num_added, capacity)))
  if num_added > capacity:
    buffer = replay.add(buffer, _numbered(capacity + 1, num_added - capacity))
  held = np.arange(max(1, num_added - capacity + 1), num_added + 1)
  rewards = np.asarray(replay.sample(buffer, jax.random.key(num_added), draws).reward).astype(int)
  counts = np.array([np.sum(rewards == r) for r in held])
  assert counts.sum() == draws  # nothing outside the held transitions
  expected = draws / len(held)
  chi2 = np.sum((counts - expected) ** 2 / expected)
  assert chi2 < stats.chi2.ppf(1 - 1e-4, df=len(held) - 1), (chi2, counts)


def test_transitions_stay_intact_across_episode_boundaries_and_wrap_around():
  # Episodes of lengths 3, 4, 2, 5, 3: obs = (episode, t), next_obs = (episode, t + 1) or, after a true
  # termination, the absorbing marker (-1, -1); time-limit cuts keep their true next observation.
  rows = []
  for episode, length in enumerate((3, 4, 2, 5, 3)):
    for t in range(length):
      last = t == length - 1
      terminated = last and episode % 2 == 0
      next_obs = (-1.0, -1.0) if terminated else (float(episode), t + 1.0)
      rows.append(
        (
          (float(episode), float(t)),
          (episode + t / 10,),
          100.0 * episode + t,
          next_obs,
          terminated,
          last and not terminated,
        )
      )
  stream = replay.Transition(
    *(
      np.asarray(column, dtype=np.bool_ if i >= 4 else np.float32)
      for i, column in enumerate(zip(*rows))
    )
  )
  example = jax.tree.map(lambda x: x[0], stream)
  buffer = replay.init(example, capacity=7)
  for start in range(0, len(rows), 3):  # batches of 3 straddle episode ends and the ring seam
    buffer = replay.add(buffer, jax.tree.map(lambda x: x[start : start + 3], stream))

  def check(batch):
    obs, next_obs = np.asarray(batch.obs), np.asarray(batch.next_obs)
    episode, t = obs[:, 0], obs[:, 1]
    np.testing.assert_array_equal(np.asarray(batch.reward), 100 * episode + t)
    np.testing.assert_allclose(np.asarray(batch.action)[:, 0], episode + t / 10, rtol=1e-6)
    terminated = np.asarray(batch.terminated)
    np.testing.assert_array_equal(next_obs[terminated], -1.0)
    np.testing.assert_array_equal(next_obs[~terminated, 0], episode[~terminated])
    np.testing.assert_array_equal(next_obs[~terminated, 1], t[~terminated] + 1)
    assert not np.any(terminated & np.asarray(batch.truncated))

  check(buffer.data)
  # 17 rows into 7 slots: the newest row (slot position - 1) ends episode 4 with a termination; the
  # row after it in the ring (the oldest, stream row 10) is step 1 of episode 3; each keeps its own s'.
  newest = (int(buffer.position) - 1) % 7
  assert tuple(np.asarray(buffer.data.obs[newest])) == (4.0, 2.0)
  assert tuple(np.asarray(buffer.data.next_obs[newest])) == (-1.0, -1.0)
  assert tuple(np.asarray(buffer.data.obs[int(buffer.position)])) == (3.0, 1.0)
  assert tuple(np.asarray(buffer.data.next_obs[int(buffer.position)])) == (3.0, 2.0)
  check(replay.sample(buffer, jax.random.key(1), 500))


def test_add_rejects_bad_batches():
  buffer = replay.init(_example(), capacity=4)
  with pytest.raises(ValueError, match=r'batch\.obs must have shape \(B,\) \+ \(3,\)'):
    replay.add(buffer, _numbered(1, 2)._replace(obs=np.zeros((2, 4), np.float32)))
  with pytest.raises(ValueError, match='more than the buffer capacity 4'):
    replay.add(buffer, _numbered(1, 5))
  with pytest.raises(ValueError, match=r'batch\.terminated must have a bool dtype'):
    replay.add(buffer, _numbered(1, 2)._replace(terminated=np.zeros(2, np.float32)))
  with pytest.raises(ValueError, match='same leading size'):
    replay.add(buffer, _numbered(1, 2)._replace(reward=np.zeros(3, np.float32)))
  with pytest.raises(TypeError, match='Transition'):
    replay.add(buffer, tuple(_numbered(1, 2)))
  # Casting within a kind is allowed: float64 rows land as float32.
  filled = replay.add(
    buffer,
    jax.tree.map(lambda x: x.astype(np.float64) if x.dtype == np.float32 else x, _numbered(1, 2)),
  )
  assert filled.data.obs.dtype == jnp.float32 and float(filled.data.reward[1]) == 2.0


def test_jit_equals_no_jit():
  buffer = replay.add(replay.init(_example(), capacity=8), _numbered(1, 6))
  batch, key = _numbered(7, 5), jax.random.key(3)
  eager = replay.add(buffer, batch)
  jitted = jax.jit(replay.add)(buffer, batch)
  _assert_tree_equal(eager, jitted)
  _assert_tree_equal(
    replay.sample(eager, key, 9), jax.jit(replay.sample, static_argnums=2)(jitted, key, 9)
  )


def test_vmap_over_seeds_equals_python_loop():
  num_seeds, capacity = 3, 6
  buffers = jax.vmap(lambda _: replay.init(_example(), capacity))(jnp.arange(num_seeds))
  assert buffers.capacity == capacity and buffers.position.shape == (num_seeds,)
  # Different batch contents per seed, and two adds so that the seeds wrap around.
  batches = [_stack([_numbered(10 * s + k, 4) for s in range(num_seeds)]) for k in (1, 5)]
  keys = jax.random.split(jax.random.key(4), num_seeds)
  vmapped = buffers
  for batch in batches:
    vmapped = jax.vmap(replay.add)(vmapped, batch)
  samples = jax.vmap(replay.sample, in_axes=(0, 0, None))(vmapped, keys, 5)
  for s in range(num_seeds):
    single = replay.init(_example(), capacity)
    for batch in batches:
      single = replay.add(single, jax.tree.map(lambda x: x[s], batch))
    _assert_tree_equal(jax.tree.map(lambda x: x[s], vmapped), single)
    _assert_tree_equal(jax.tree.map(lambda x: x[s], samples), replay.sample(single, keys[s], 5))


def test_add_and_sample_do_not_retrace_with_same_shapes():
  traces = []

  @jax.jit
  def step(buffer, batch, key):
    traces.append(None)
    buffer = replay.add(buffer, batch)
    return buffer, replay.sample(buffer, key, 4)

  buffer = replay.init(_example(), capacity=8)
  for i in range(5):  # position, size and contents change; shapes do not
    buffer, _ = step(buffer, _numbered(3 * i + 1, 3), jax.random.key(i))
  assert len(traces) == 1
  assert int(buffer.size) == 8 and int(buffer.position) == 15 % 8


@pytest.mark.parametrize('masked', [False, True])
def test_scan_carried_add_makes_no_whole_buffer_copy(masked):
  capacity = 4099  # a size no other array in the program has
  buffer = replay.init(_example(), capacity)
  batches = jax.vmap(
    lambda k: jax.tree.map(
      lambda x: jax.random.normal(k, (5,) + x.shape).astype(x.dtype), _example()
    )
  )(jax.random.split(jax.random.key(0), 20))

  def body(buffer, xs):
    batch, key = xs
    valid = jnp.arange(5) != 2 if masked else None
    buffer = replay.add(buffer, batch, valid)
    return buffer, replay.sample(buffer, key, 8).reward.sum()

  run = jax.jit(lambda buffer, xs: jax.lax.scan(body, buffer, xs), donate_argnums=0)
  xs = (batches, jax.random.split(jax.random.key(1), 20))
  compiled = run.lower(buffer, xs).compile()
  copies = [
    line for line in compiled.as_text().splitlines() if f'[{capacity}' in line and ' copy(' in line
  ]
  assert copies == []  # the scatter writes into the carried (and donated) buffer in place
  # Scratch memory stays far below one buffer leaf: no per-step copy hides in a temporary.
  assert compiled.memory_analysis().temp_size_in_bytes < buffer.data.obs.nbytes
  final, _ = run(buffer, xs)
  added = 80 if masked else 100
  assert int(final.size) == added and int(final.position) == added


def test_orbax_round_trip_restores_buffer_exactly(tmp_path):
  buffer = replay.add(replay.init(_example(), capacity=6), _numbered(1, 4))
  buffer = replay.add(buffer, _numbered(5, 3))  # wrapped: position 1, size 6
  state = {'buffer': buffer, 'step': jnp.asarray(7, jnp.int32)}
  with Checkpointer(str(tmp_path / 'ckpt')) as checkpointer:
    checkpointer.save(7, state, {'note': 'replay'})
    abstract = {'buffer': replay.init(_example(), capacity=6), 'step': jnp.zeros((), jnp.int32)}
    restored, meta = checkpointer.restore(checkpointer.latest_step(), abstract)
  assert meta == {'note': 'replay'}
  assert isinstance(restored['buffer'], replay.ReplayBuffer)
  assert isinstance(restored['buffer'].data, replay.Transition)
  _assert_tree_equal(restored, state)
  for x, y in zip(jax.tree.leaves(restored), jax.tree.leaves(state)):
    assert x.dtype == y.dtype
  # The restored buffer carries on exactly like the original.
  _assert_tree_equal(
    replay.add(restored['buffer'], _numbered(8, 2)), replay.add(buffer, _numbered(8, 2))
  )


def test_seed_sharded_buffer_matches_unsharded():
  num_seeds = 8
  assert len(jax.devices()) == num_seeds, 'conftest provides 8 fake CPU devices'
  mesh = jax.make_mesh((num_seeds,), ('seed',), axis_types=(jax.sharding.AxisType.Auto,))
  sharding = NamedSharding(mesh, P('seed'))
  buffers = jax.vmap(lambda _: replay.init(_example(), capacity=6))(jnp.arange(num_seeds))
  batch = _stack([_numbered(10 * s + 1, 4) for s in range(num_seeds)])
  keys = jax.random.split(jax.random.key(5), num_seeds)

  add = jax.jit(jax.vmap(replay.add))
  sample = jax.jit(jax.vmap(replay.sample, in_axes=(0, 0, None)), static_argnums=2)

  def run(buffers, batch, keys):
    for _ in range(2):  # the second add wraps around
      buffers = add(buffers, batch)
    return buffers, sample(buffers, keys, 5)

  plain_buffers, plain_samples = run(buffers, batch, keys)
  placed = replay.place(buffers, sharding)
  assert all(
    leaf.sharding.is_equivalent_to(sharding, leaf.ndim) for leaf in jax.tree.leaves(placed)
  )
  sharded_buffers, sharded_samples = run(
    placed, jax.device_put(batch, sharding), jax.device_put(keys, sharding)
  )
  for leaf in jax.tree.leaves(sharded_buffers):
    assert leaf.sharding.is_equivalent_to(sharding, leaf.ndim)  # seeds stay split over devices
  _assert_tree_equal(sharded_buffers, plain_buffers)
  _assert_tree_equal(sharded_samples, plain_samples)


def test_expert_buffer_from_npz(tmp_path):
  stream = _numbered(1, 9)
  path = tmp_path / 'expert.npz'
  np.savez(path, **stream._asdict())
  with np.load(path) as arrays:
    expert = replay.expert_buffer(
      replay.Transition(**{f: arrays[f] for f in replay.Transition._fields})
    )
  assert isinstance(expert, replay.ExpertBuffer) and expert.size == 9
  assert bool(replay.can_sample(expert, 9)) and not bool(replay.can_sample(expert, 10))
  batch = replay.sample(expert, jax.random.key(6), 900)
  i = np.asarray(batch.reward)
  assert set(i.astype(int)) == set(range(1, 10))  # every demonstration is drawn, nothing else
  # Rows stay whole: every field of a sampled row encodes the same stream index.
  np.testing.assert_array_equal(np.asarray(batch.obs), np.stack([i, 2 * i, 3 * i], axis=1))
  np.testing.assert_array_equal(np.asarray(batch.next_obs)[:, 0], i + 1)
  np.testing.assert_array_equal(np.asarray(batch.terminated), i % 3 == 0)
  _assert_tree_equal(
    jax.jit(replay.sample, static_argnums=2)(expert, jax.random.key(6), 900), batch
  )

  with pytest.raises(ValueError, match='same number of rows'):
    replay.expert_buffer(stream._replace(reward=stream.reward[:5]))
  with pytest.raises(ValueError, match='next_obs must have the shape'):
    replay.expert_buffer(stream._replace(next_obs=stream.next_obs[:, :2]))
  with pytest.raises(ValueError, match='at least one transition'):
    replay.expert_buffer(jax.tree.map(lambda x: x[:0], stream))


def test_observation_stats_and_normalisation():
  obs = np.array([[1.0, 5.0, 0.0], [3.0, 5.0, 0.0], [5.0, 5.0, 0.0], [7.0, 5.0, 0.0]], np.float32)
  transitions = replay.Transition(
    obs=obs,
    action=np.zeros((4, 1), np.float32),
    reward=np.zeros(4),
    next_obs=obs + 2.0,
    terminated=np.zeros(4, bool),
    truncated=np.zeros(4, bool),
  )
  mean, std = replay.observation_stats(transitions, std_floor=1e-3)
  np.testing.assert_allclose(mean, [4.0, 5.0, 0.0])
  # Population std of (1, 3, 5, 7) is sqrt(5); constant dimensions get the floor.
  np.testing.assert_allclose(std, [np.sqrt(5.0), 1e-3, 1e-3], rtol=1e-6)
  _, wide_floor = replay.observation_stats(transitions, std_floor=10.0)
  np.testing.assert_allclose(wide_floor, [10.0, 10.0, 10.0])

  normalized = replay.normalize_observations(transitions, mean, std)
  np.testing.assert_allclose(np.mean(normalized.obs, axis=0), 0.0, atol=1e-6)
  np.testing.assert_allclose(np.std(normalized.obs, axis=0)[0], 1.0, rtol=1e-6)
  assert np.all(np.isfinite(normalized.obs))
  # next_obs goes through the same affine map: a shift of 2 becomes 2 / std.
  np.testing.assert_allclose(
    normalized.next_obs - normalized.obs, np.broadcast_to(2.0 / np.asarray(std), (4, 3)), rtol=1e-5
  )
  np.testing.assert_array_equal(normalized.action, transitions.action)
  with pytest.raises(ValueError, match='std_floor'):
    replay.observation_stats(transitions, std_floor=0.0)


def test_checkpointer_round_trips_typed_keys(tmp_path):
  from cljax.checkpoint import Checkpointer

  state = {
    'key': jax.random.key(3),
    'keys': jax.random.split(jax.random.key(1), 4),
    'x': jnp.arange(3.0),
  }
  with Checkpointer(str(tmp_path)) as ckpt:
    ckpt.save(1, state, {})
    restored, _ = ckpt.restore(1, jax.eval_shape(lambda: state))
  for name in ('key', 'keys'):
    assert jax.dtypes.issubdtype(restored[name].dtype, jax.dtypes.prng_key)
    np.testing.assert_array_equal(
      jax.random.key_data(restored[name]), jax.random.key_data(state[name])
    )
  assert float(jax.random.uniform(restored['key'])) == float(jax.random.uniform(state['key']))


def test_sample_recent_draws_only_the_newest_rows():
  example = replay.Transition(
    obs=jnp.zeros(1),
    action=jnp.zeros(1),
    reward=jnp.zeros(()),
    next_obs=jnp.zeros(1),
    terminated=jnp.zeros((), bool),
    truncated=jnp.zeros((), bool),
  )
  buf = replay.init(example, 8)
  rows = lambda lo, hi: replay.Transition(
    obs=jnp.arange(lo, hi, dtype=jnp.float32)[:, None],
    action=jnp.zeros((hi - lo, 1)),
    reward=jnp.arange(lo, hi, dtype=jnp.float32),
    next_obs=jnp.zeros((hi - lo, 1)),
    terminated=jnp.zeros(hi - lo, bool),
    truncated=jnp.zeros(hi - lo, bool),
  )
  buf = replay.add(buf, rows(0, 3))  # 0, 1, 2: fewer than the window
  got = np.asarray(replay.sample_recent(buf, jax.random.key(0), 500, window=5).reward)
  assert set(got.tolist()) == {0.0, 1.0, 2.0}
  buf = replay.add(buf, rows(3, 11))  # wraps: holds 3..10, newest 10 at slot 2
  got = np.asarray(replay.sample_recent(buf, jax.random.key(1), 2000, window=4).reward)
  assert set(got.tolist()) == {7.0, 8.0, 9.0, 10.0}
  with pytest.raises(ValueError, match='window'):
    replay.sample_recent(buf, jax.random.key(1), 4, window=9)
