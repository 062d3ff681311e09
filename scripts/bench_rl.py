r"""Throughput of SAC and of the two off-policy training loops (`irl.loops`).

  python scripts/bench_rl.py [--updates=3000] [--pointmaze_steps=2000] [--halfcheetah_steps=2000]

Prints one JSON line (the only line on stdout; progress goes to stderr) with
  sac_updates_per_s             jitted SAC updates (`irl.sac.agent.as_agent`: sample a batch from the
                                replay buffer, then one critic, actor and temperature step) per second,
                                `--updates` of them in one jitted `lax.scan` on a replay buffer filled
                                with `--buffer_size` random transitions of `--sac_obs_dim` /
                                `--sac_action_dim` (HalfCheetah's 17 / 6 by default);
  pointmaze_steps_per_s_1seed   environment steps per second of the whole PointMaze-Left SAC run
                                `irl.loops.train_jax` (one SAC update per step from the first step,
                                `--pointmaze_steps` steps, one evaluation episode at the end);
  pointmaze_steps_per_s_8seeds  the same with 8 seeds under `jax.vmap`, summed over seeds;
  pointmaze_8_over_1_ratio      their ratio (8 would be perfect scaling);
  halfcheetah_steps_per_s       environment steps per second of the Gymnasium HalfCheetah-v5 host loop
                                `irl.loops.train_host` with one SAC update per step, timed over
                                `--halfcheetah_steps` steps after `--halfcheetah_warmup_steps` that
                                compile the loop's jitted functions;
compute against the machine: matmul_peak_flop_per_s (the best FLOP/s of a jitted 2048² float32 matmul,
measured here, `cljax.flops`), sac_update_flops and pointmaze_update_flops (one update's FLOPs, XLA's
cost analysis), sac_update_flop_per_s / _fraction_of_peak and pointmaze_update_{1seed,8seeds}_flop_per_s
/ _fraction_of_peak (those FLOPs × the measured updates or steps per second, and over the peak);
and the context: backend, device kind, batch size, hidden sizes, the number of steps or updates each
rate is measured over, compile times, and the number of SAC updates each measurement really made (the
agent's own step counter), which must equal its steps.

Compilation is excluded everywhere: the jitted measurements are compiled ahead of time
(`jax.jit(f).lower(...).compile()`) and timed on one call of the executable; the host loop is timed
between two of its progress callbacks, the first one after the warm-up steps.
"""

import json

from absl import app, flags, logging

from cljax import console, flops, timing
from irl import timing as irl_timing

NUM_SEEDS = 8  # fixed: the output keys name it

_UPDATES = flags.DEFINE_integer(
  'updates', 3000, 'SAC updates timed in one jitted scan.', lower_bound=1
)
_BUFFER_SIZE = flags.DEFINE_integer(
  'buffer_size',
  100_000,
  'Random transitions in the replay buffer the SAC updates sample from.',
  lower_bound=1,
)
_SAC_OBS_DIM = flags.DEFINE_integer(
  'sac_obs_dim',
  17,
  'Observation size for the SAC update measurement (HalfCheetah-v5: 17).',
  lower_bound=1,
)
_SAC_ACTION_DIM = flags.DEFINE_integer(
  'sac_action_dim',
  6,
  'Action size for the SAC update measurement (HalfCheetah-v5: 6).',
  lower_bound=1,
)
_POINTMAZE_STEPS, _HALFCHEETAH_STEPS, _HALFCHEETAH_WARMUP = irl_timing.define_loop_flags()
_BATCH = flags.DEFINE_integer('batch_size', 256, 'SAC minibatch size.', lower_bound=1)
_HIDDEN = flags.DEFINE_list(
  'hidden_sizes', ['256', '256'], 'Hidden layer sizes of the SAC actor and critics.'
)


def _hidden_sizes() -> tuple[int, ...]:
  try:
    sizes = tuple(int(s) for s in _HIDDEN.value)
  except ValueError:
    sizes = ()
  if not sizes or min(sizes) < 1:
    raise app.UsageError(
      f'--hidden_sizes must be a comma-separated list of positive ints, got '
      f'{",".join(_HIDDEN.value)!r}'
    )
  return sizes


def sac_updates(sac_config) -> dict:
  """SAC updates per second in a jitted scan over a filled replay buffer (compile excluded)."""
  import jax
  import jax.numpy as jnp
  import numpy as np

  from envs.core import BoxSpec, EnvSpec
  from irl import replay
  from irl.replay import Transition
  from irl.sac import agent as sac_agent

  obs_dim, action_dim, size = _SAC_OBS_DIM.value, _SAC_ACTION_DIM.value, _BUFFER_SIZE.value
  spec = EnvSpec(
    name='bench',
    observation=BoxSpec(
      (obs_dim,), np.full(obs_dim, -np.inf, np.float32), np.full(obs_dim, np.inf, np.float32)
    ),
    action=BoxSpec(
      (action_dim,), -np.ones(action_dim, np.float32), np.ones(action_dim, np.float32)
    ),
    max_episode_steps=1000,
  )
  agent = sac_agent.as_agent(sac_agent.make_sac(spec, sac_config))

  data_key, init_key, run_key = jax.random.split(jax.random.key(0), 3)
  keys = jax.random.split(data_key, 4)
  transitions = Transition(
    obs=jax.random.normal(keys[0], (size, obs_dim)),
    action=jax.random.uniform(keys[1], (size, action_dim), minval=-1.0, maxval=1.0),
    reward=jax.random.normal(keys[2], (size,)),
    next_obs=jax.random.normal(keys[3], (size, obs_dim)),
    terminated=jnp.zeros(size, jnp.bool_),
    truncated=jnp.zeros(size, jnp.bool_),
  )
  buffer = replay.add(replay.init(jax.tree.map(lambda x: x[0], transitions), size), transitions)
  state = agent.init(init_key)

  def run(state, buffer, key):
    def body(state, update_key):
      return agent.update(state, buffer, update_key, None)

    return jax.lax.scan(body, state, jax.random.split(key, _UPDATES.value))

  compiled, compile_s = timing.aot_compile(run, state, buffer, run_key)
  (state, _), seconds = timing.timed_call(compiled, state, buffer, run_key)
  update_flops = flops.flops(lambda s, b, k: agent.update(s, b, k, None), state, buffer, run_key)
  return {
    'sac_updates_per_s': _UPDATES.value / seconds,
    'sac_update_flops': update_flops,
    'sac_updates_timed': _UPDATES.value,
    'sac_updates_done': int(state.step),
    'sac_compile_s': compile_s,
    'sac_buffer_size': size,
    'sac_obs_dim': obs_dim,
    'sac_action_dim': action_dim,
  }


def pointmaze(sac_config) -> dict:
  """Steps per second of the jitted PointMaze-Left SAC loop, for 1 seed and NUM_SEEDS vmapped."""
  import functools

  import jax
  import numpy as np

  from envs import registry
  from irl import loops
  from irl.sac import agent as sac_agent

  env = registry.make('PointMaze-Left')
  agent = sac_agent.as_agent(sac_agent.make_sac(env.spec, sac_config))
  steps = _POINTMAZE_STEPS.value
  # update_after=1: one update on every step, so every timed step costs what a step of a real run
  # costs after its warm-up; one period and one evaluation episode keep the evaluation cost small.
  config = loops.LoopConfig(
    num_env_steps=steps,
    num_envs=1,
    start_steps=0,
    update_after=1,
    updates_per_step=1,
    replay_capacity=steps,
    eval_every=steps,
    eval_episodes=1,
  )
  train = functools.partial(loops.train_jax, env, agent, config)
  record = {'pointmaze_steps_timed': steps}
  for num_seeds, suffix in ((1, '1seed'), (NUM_SEEDS, f'{NUM_SEEDS}seeds')):
    logging.info('PointMaze-Left, %d seed(s): compiling', num_seeds)
    # One seed runs the plain loop, not a vmap of size one.
    keys = jax.random.split(jax.random.key(1), num_seeds) if num_seeds > 1 else jax.random.key(1)
    compiled, compile_s = timing.aot_compile(jax.vmap(train) if num_seeds > 1 else train, keys)
    logging.info('PointMaze-Left, %d seed(s): running %d steps', num_seeds, steps)
    (carry, _), seconds = timing.timed_call(compiled, keys)
    record[f'pointmaze_steps_per_s_{suffix}'] = num_seeds * steps / seconds
    record[f'pointmaze_compile_s_{suffix}'] = compile_s
    record[f'pointmaze_updates_done_{suffix}'] = int(np.min(carry.agent_state.step))
  record[f'pointmaze_{NUM_SEEDS}_over_1_ratio'] = (
    record[f'pointmaze_steps_per_s_{NUM_SEEDS}seeds'] / record['pointmaze_steps_per_s_1seed']
  )
  record['pointmaze_update_flops'] = irl_timing.update_flops(env, agent, config)
  return record


def halfcheetah(sac_config) -> dict:
  """Steps per second of the HalfCheetah-v5 host loop with SAC updating every step."""
  from envs import registry
  from irl.sac import agent as sac_agent

  warmup, steps = _HALFCHEETAH_WARMUP.value, _HALFCHEETAH_STEPS.value
  env = registry.make('HalfCheetah-v5', num_envs=1, seed=0)
  agent = sac_agent.as_agent(sac_agent.make_sac(env.spec, sac_config))
  carry, rate = irl_timing.host_loop_rate(env, agent, warmup, steps, label='HalfCheetah-v5')
  return {
    'halfcheetah_steps_per_s': rate,
    'halfcheetah_steps_timed': steps,
    'halfcheetah_warmup_steps': warmup,
    'halfcheetah_updates_done': int(carry.agent_state.step),
  }


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  hidden_sizes = _hidden_sizes()
  import jax

  from irl.sac import agent as sac_agent

  sac_config = sac_agent.SACConfig(batch_size=_BATCH.value, hidden_sizes=hidden_sizes)
  record = {
    'benchmark': 'rl_throughput',
    'backend': jax.default_backend(),
    'device_kind': str(jax.devices()[0].device_kind),
    'batch_size': sac_config.batch_size,
    'hidden_sizes': list(sac_config.hidden_sizes),
    'num_seeds_vmapped': NUM_SEEDS,
  }
  logging.info('SAC updates')
  record.update(sac_updates(sac_config))
  record.update(pointmaze(sac_config))
  logging.info('HalfCheetah-v5 host loop')
  record.update(halfcheetah(sac_config))
  record['matmul_peak_flop_per_s'] = peak = flops.matmul_peak()
  record.update(
    flops.figures('sac_update', record['sac_update_flops'], record['sac_updates_per_s'], peak)
  )
  record.update(irl_timing.pointmaze_flop_figures(record, NUM_SEEDS, peak))
  record = {k: round(v, 3) if isinstance(v, float) else v for k, v in record.items()}
  print(json.dumps(record))


if __name__ == '__main__':
  console.run(main)
