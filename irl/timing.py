"""Throughput of the IRL loops, for the benchmarks (scripts/bench_rl.py, scripts/bench_irl.py); the
generic compile-then-time helpers are `cljax.timing`'s."""

from __future__ import annotations

import math
import time

import jax
from absl import logging

from cljax import flops
from irl import loops


def define_loop_flags():
  """The absl flags both RL benchmarks (scripts/bench_rl.py, scripts/bench_irl.py) take for their
  two loops: --pointmaze_steps, --halfcheetah_steps and --halfcheetah_warmup_steps, in that order."""
  from absl import flags  # deferred: only the benchmark scripts define flags

  pointmaze = flags.DEFINE_integer(
    'pointmaze_steps',
    2000,
    'Environment steps (per seed) of each timed PointMaze-Left run.',
    lower_bound=1,
  )
  halfcheetah = flags.DEFINE_integer(
    'halfcheetah_steps',
    2000,
    'Timed environment steps of the HalfCheetah-v5 host loop.',
    lower_bound=1,
  )
  warmup = flags.DEFINE_integer(
    'halfcheetah_warmup_steps',
    100,
    'Untimed HalfCheetah-v5 steps first (random actions, with '
    'updates, so every jitted function of the loop is compiled before the timing starts).',
    lower_bound=1,
  )
  return pointmaze, halfcheetah, warmup


def host_loop_rate(
  env,
  agent,
  warmup: int,
  steps: int,
  *,
  capacity: int | None = None,
  expert_buffer=None,
  transform_fn=None,
  label: str = 'host loop',
):
  """Environment steps per second of `irl.loops.train_host` with one update per step, timed over
  `steps` steps after `warmup` untimed ones (random actions, with updates, so every jitted function
  is compiled first). Returns (final carry, steps per second); closes `env`.

  Periods of gcd(warmup, steps) steps put a progress callback (which waits for the device) exactly at
  the end of the warm-up and at the end of the run; the ones between cost a few scalar reads."""
  config = loops.LoopConfig(
    num_env_steps=warmup + steps,
    num_envs=1,
    start_steps=warmup,
    update_after=1,
    updates_per_step=1,
    replay_capacity=capacity or warmup + steps,
    eval_every=math.gcd(warmup, steps),
    eval_episodes=1,
  )
  stamps = {}

  def progress_fn(env_steps, metrics):
    del metrics
    stamps[env_steps] = time.perf_counter()
    if env_steps == warmup:
      logging.info('%s: warm-up done, timing %d steps', label, steps)

  try:
    carry, _ = loops.train_host(
      env,
      agent,
      config,
      jax.random.key(2),
      expert_buffer=expert_buffer,
      transform_fn=transform_fn,
      progress_fn=progress_fn,
    )
  finally:
    env.close()
  return carry, steps / (stamps[warmup + steps] - stamps[warmup])


def update_flops(env, agent, loop_config, *, transform_fn=None, expert_buffer=None) -> float:
  """FLOPs of one `agent.update` (one seed) on the replay buffer a `train_jax` run of `loop_config`
  would hold, from XLA's cost analysis (compiled, not run; `cljax.flops`)."""
  carry = loops.init_carry(env, agent, loop_config, jax.random.key(0), transform_fn=transform_fn)
  return flops.flops(
    lambda state, buffer, key: agent.update(state, buffer, key, expert_buffer),
    carry.agent_state,
    carry.buffer,
    jax.random.key(1),
  )


def pointmaze_flop_figures(record: dict, num_seeds: int, peak: float) -> dict:
  """`cljax.flops.figures` of the PointMaze loop's update (`record['pointmaze_update_flops']`) at the
  measured `pointmaze_steps_per_s_1seed` and `_{num_seeds}seeds` (one update per step)."""
  figures = {}
  for suffix in ('1seed', f'{num_seeds}seeds'):
    figures.update(
      flops.figures(
        f'pointmaze_update_{suffix}',
        record['pointmaze_update_flops'],
        record[f'pointmaze_steps_per_s_{suffix}'],
        peak,
      )
    )
  return figures
