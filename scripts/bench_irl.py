r"""Throughput of OPIRL's training loops: environment steps per second, with all of OPIRL's updates.

  python scripts/bench_irl.py [--pointmaze_steps=2000] [--halfcheetah_steps=2000]

Prints one JSON line (the only line on stdout; progress goes to stderr) with
  pointmaze_steps_per_s_1seed   environment steps per second of the whole OPIRL run on PointMaze-Left
                                (`irl.loops.train_jax`, the shipped configs/irl/pointmaze.py: per
                                step one discriminator update and one update of its policy learner,
                                SAC with 64-64 networks and a 64-64 shaping network h since the
                                study, from the first step on;
                                `--pointmaze_steps` steps and one evaluation episode at the end);
  pointmaze_steps_per_s_8seeds  the same with 8 seeds under `jax.vmap`, summed over seeds;
  pointmaze_8_over_1_ratio      their ratio (8 would be perfect scaling);
  halfcheetah_steps_per_s       environment steps per second of OPIRL's Gymnasium HalfCheetah-v5 host
                                loop (`irl.loops.train_host`, configs/irl/mujoco.py:HalfCheetah-v5, the
                                same updates per step), timed over `--halfcheetah_steps` steps after
                                `--halfcheetah_warmup_steps` that compile the loop's jitted functions;
  opirl_wall_s_to_90pct_pointmaze, airl_onpolicy_wall_s_to_90pct_pointmaze
                                wall-clock seconds from the start of a seed-0 run of the shipped
                                PointMaze-Left config (`configs/irl/pointmaze.py`, `--config.algo`
                                opirl or airl_onpolicy; compilation included: a user's time to the
                                result) to the end of the first evaluation period whose normalised
                                score (R − R_random) / (R_expert − R_random) reaches 0.9; null when it
                                is not reached within `--opirl_budget` / `--onpolicy_budget` steps
                                (`*_steps_to_90pct_pointmaze` gives the steps, `*_wall_budget_steps` the
                                budget). Both are measured in the same run of this script, one after
                                the other (on-policy AIRL first); `--wall=False` skips them;
  airl_onpolicy_best_score_pointmaze, {opirl,airl_onpolicy}_{wall_s,steps}_to_airl_onpolicy_best_pointmaze,
  step_ratio_at_airl_onpolicy_best, wall_ratio_at_airl_onpolicy_best
                                the same two runs compared at a score both reach: on-policy AIRL's
                                best normalised score within its budget, the seconds and steps each
                                first reaches it in, and on-policy AIRL's / OPIRL's (the paper's claim
                                is a step ratio ≥ 5; the issue's, a wall ratio > 1 as well). The OPIRL
                                run stops once it is at or above both 0.9 and that score
(replay capacity max(steps, 1000): each step may store 1 + 10 absorbing rows); compute against the
machine: pointmaze_update_flops (one OPIRL update's FLOPs, XLA's cost analysis), matmul_peak_flop_per_s
(measured here, `cljax.flops`) and pointmaze_update_{1seed,8seeds}_flop_per_s / _fraction_of_peak;
and the context: backend, device kind, batch sizes, the number of steps each rate is measured over, compile times,
and the number of discriminator and policy-critic updates each measurement made (the learners' own
step counters), which must equal its steps.

Both use the shipped demonstrations (1 trajectory) and the configs' defaults (HalfCheetah-v5: the
official sizes, AlgaeDICE with 256-256 networks).
Compilation is excluded: the jitted runs are compiled ahead of time and timed on one call of the
executable; the host loop is timed between two of its progress callbacks, the first one after the
warm-up.

`--breakdown`: instead, where the wall-clock of a quick IRL command goes (`--breakdown_args`, default
`train_irl.py --config configs/irl/pointmaze.py:quick --config.algo=opirl`). Runs it twice in fresh
processes sharing a fresh compilation cache (cold, then warm) and prints one JSON line with each
run's seconds by phase (results.json's `time`: imports, data = demonstrations with the environment
and agent built, compilation, training = the jitted periods with their evaluation episodes,
evaluation = the random policy's reference return, checkpoints, report, other) and compilation
counts, and `wall_over_training_cold` / `_warm`.
"""

import json
import os

from absl import app, flags, logging

from cljax import breakdown, console, flops, timing
from cljax.config import load_module
from irl import timing as irl_timing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

NUM_SEEDS = 8  # fixed: the output keys name it

_POINTMAZE_STEPS, _HALFCHEETAH_STEPS, _HALFCHEETAH_WARMUP = irl_timing.define_loop_flags()

_WALL = flags.DEFINE_bool('wall', True, 'Measure the wall-clock seconds to 90 % of the expert.')
_OPIRL_BUDGET = flags.DEFINE_integer(
  'opirl_budget', 100_000, 'Most environment steps of the OPIRL wall-clock run.', lower_bound=1
)
_ONPOLICY_BUDGET = flags.DEFINE_integer(
  'onpolicy_budget',
  1_000_000,
  'Most environment steps of the on-policy AIRL wall-clock run.',
  lower_bound=1,
)
_BREAKDOWN = breakdown.define_flags(
  'train_irl.py',
  ['--config', 'configs/irl/pointmaze.py:quick', '--config.algo=opirl'],
  'a quick IRL command',
)


def _built(module_name, arg, loop_fields):
  """irl.builders.build of a shipped config (configs/irl/<module_name>.py) with its loop replaced."""

  from irl import builders

  config = load_module(f'configs/irl/{module_name}.py').get_config(arg)
  config.loop.update(loop_fields)
  return config, builders.build(config)


def _updates_done(agent_state):
  """(discriminator, policy) update counters (minimum over seeds)."""
  import numpy as np

  return int(np.min(agent_state.discriminator.step)), int(np.min(agent_state.policy.step))


def pointmaze() -> dict:
  import functools

  import jax

  from irl import loops

  steps = _POINTMAZE_STEPS.value
  # update_after=1: every step makes OPIRL's updates, as every step of a real run after its warm-up
  # does; one period and one evaluation episode keep the evaluation cost small.
  config, built = _built(
    'pointmaze',
    None,
    dict(
      num_env_steps=steps,
      start_steps=0,
      update_after=1,
      replay_capacity=max(steps, 1_000),
      eval_every=steps,
      eval_episodes=1,
    ),
  )
  train = functools.partial(
    loops.train_jax,
    built.env,
    built.agent,
    built.loop_config,
    expert_buffer=built.expert_buffer,
    transform_fn=built.parts.prep.transitions,
  )
  record = {
    'pointmaze_steps_timed': steps,
    'pointmaze_discriminator_batch': config.irl.batch_size,
    'pointmaze_policy_batch': config.algaedice.batch_size,
  }
  # ..._mapped: the seeds one after another in the jit (seed_batching='map', each seed bit for bit its
  # run alone) instead of vmapped.
  batched = {
    '1seed': train,
    f'{NUM_SEEDS}seeds': jax.vmap(train),
    f'{NUM_SEEDS}seeds_mapped': lambda keys: jax.lax.map(train, keys),
  }
  for num_seeds, suffix in (
    (1, '1seed'),
    (NUM_SEEDS, f'{NUM_SEEDS}seeds'),
    (NUM_SEEDS, f'{NUM_SEEDS}seeds_mapped'),
  ):
    logging.info('PointMaze-Left OPIRL, %s: compiling', suffix)
    keys = jax.random.split(jax.random.key(1), num_seeds) if num_seeds > 1 else jax.random.key(1)
    compiled, compile_s = timing.aot_compile(batched[suffix], keys)
    logging.info('PointMaze-Left OPIRL, %d seed(s): running %d steps', num_seeds, steps)
    (carry, _), seconds = timing.timed_call(compiled, keys)
    record[f'pointmaze_steps_per_s_{suffix}'] = num_seeds * steps / seconds
    record[f'pointmaze_compile_s_{suffix}'] = compile_s
    disc, policy = _updates_done(carry.agent_state)
    record[f'pointmaze_discriminator_updates_done_{suffix}'] = disc
    record[f'pointmaze_policy_updates_done_{suffix}'] = policy
  record[f'pointmaze_{NUM_SEEDS}_over_1_ratio'] = (
    record[f'pointmaze_steps_per_s_{NUM_SEEDS}seeds'] / record['pointmaze_steps_per_s_1seed']
  )
  record['pointmaze_update_flops'] = irl_timing.update_flops(
    built.env,
    built.agent,
    built.loop_config,
    transform_fn=built.parts.prep.transitions,
    expert_buffer=built.expert_buffer,
  )
  record[f'pointmaze_{NUM_SEEDS}_mapped_over_1_ratio'] = (
    record[f'pointmaze_steps_per_s_{NUM_SEEDS}seeds_mapped'] / record['pointmaze_steps_per_s_1seed']
  )
  return record


def halfcheetah() -> dict:
  warmup, steps = _HALFCHEETAH_WARMUP.value, _HALFCHEETAH_STEPS.value
  _, built = _built('mujoco', 'HalfCheetah-v5', {})
  carry, rate = irl_timing.host_loop_rate(
    built.env,
    built.agent,
    warmup,
    steps,
    capacity=max(warmup + steps, 1_000),
    expert_buffer=built.expert_buffer,
    transform_fn=built.parts.prep.transitions,
    label='HalfCheetah-v5 OPIRL',
  )
  disc, policy = _updates_done(carry.agent_state)
  return {
    'halfcheetah_steps_per_s': rate,
    'halfcheetah_steps_timed': steps,
    'halfcheetah_warmup_steps': warmup,
    'halfcheetah_discriminator_updates_done': disc,
    'halfcheetah_policy_updates_done': policy,
  }


def wall_curve(algo: str, budget: int, stop_at_score: float | None = None) -> list:
  """[(steps, seconds since the start, normalised score)] per evaluation period of seed 0 of the
  shipped PointMaze-Left config run as `algo` (compilation included), up to `budget` steps or the
  first period at or above both 0.9 and `stop_at_score`."""
  import time

  pointmaze_config = load_module('configs/irl/pointmaze.py')
  from irl import builders, report
  from irl import train as irl_train

  start = time.time()
  config = pointmaze_config.get_config()
  config.algo, config.loop.num_env_steps = algo, budget
  built = builders.build(config)
  loop = built.loop_config
  if budget % loop.eval_every:
    raise app.UsageError(
      f"the {algo} budget ({budget}) must be a multiple of the config's "
      f'evaluation period ({loop.eval_every})'
    )
  expert = float(built.meta['return_mean'])
  random = report.random_return(config.env, built.env, loop.eval_episodes)
  init, period_fn = irl_train.built_seed_functions(built)
  carry = init(irl_train.seed_keys([config.seed]))
  curve = []
  for period in range(budget // loop.eval_every):
    carry, metrics = period_fn(carry, period)
    score = (float(metrics['eval_return'][0, 0]) - random) / (expert - random)
    curve.append(((period + 1) * loop.eval_every, time.time() - start, score))
    logging.info('%s: %d steps, %.0f s, score %.2f', algo, *curve[-1])
    if stop_at_score is not None and score >= max(0.9, stop_at_score):
      break
  return curve


def _first(curve, score):
  """(steps, seconds) of the first period of `curve` at or above `score`; (None, None) if none."""
  return next(((steps, seconds) for steps, seconds, value in curve if value >= score), (None, None))


def wall_figures(opirl_budget: int, onpolicy_budget: int) -> dict:
  """Seed 0 of the shipped PointMaze-Left config, on-policy AIRL then OPIRL, one after the other:
  wall-clock seconds and steps to 90 % of the expert, and to on-policy AIRL's best score (both axes
  of the paper's claim at a score both reach)."""
  onpolicy = wall_curve('airl_onpolicy', onpolicy_budget)
  best = max(value for _, _, value in onpolicy)
  opirl = wall_curve('opirl', opirl_budget, stop_at_score=best)
  record = {
    'opirl_wall_budget_steps': opirl_budget,
    'airl_onpolicy_wall_budget_steps': onpolicy_budget,
    'airl_onpolicy_best_score_pointmaze': best,
  }
  for algo, curve in (('opirl', opirl), ('airl_onpolicy', onpolicy)):
    steps, seconds = _first(curve, 0.9)
    record.update(
      {f'{algo}_wall_s_to_90pct_pointmaze': seconds, f'{algo}_steps_to_90pct_pointmaze': steps}
    )
    steps, seconds = _first(curve, best)
    record.update(
      {
        f'{algo}_wall_s_to_airl_onpolicy_best_pointmaze': seconds,
        f'{algo}_steps_to_airl_onpolicy_best_pointmaze': steps,
      }
    )
  slow_steps, fast_steps = (
    record['airl_onpolicy_steps_to_airl_onpolicy_best_pointmaze'],
    record['opirl_steps_to_airl_onpolicy_best_pointmaze'],
  )
  slow_s, fast_s = (
    record['airl_onpolicy_wall_s_to_airl_onpolicy_best_pointmaze'],
    record['opirl_wall_s_to_airl_onpolicy_best_pointmaze'],
  )
  record['step_ratio_at_airl_onpolicy_best'] = slow_steps / fast_steps if fast_steps else None
  record['wall_ratio_at_airl_onpolicy_best'] = slow_s / fast_s if fast_s else None
  return record


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if _BREAKDOWN():
    return
  import jax

  record = {
    'benchmark': 'irl_throughput',
    'algo': 'opirl',
    'backend': jax.default_backend(),
    'device_kind': str(jax.devices()[0].device_kind),
    'num_seeds_vmapped': NUM_SEEDS,
  }
  logging.info('PointMaze-Left jitted loop')
  record.update(pointmaze())
  logging.info('HalfCheetah-v5 host loop')
  record.update(halfcheetah())
  record['matmul_peak_flop_per_s'] = peak = flops.matmul_peak()
  record.update(irl_timing.pointmaze_flop_figures(record, NUM_SEEDS, peak))
  if _WALL.value:
    logging.info('Wall-clock to 90 %% of the expert on PointMaze-Left')
    record.update(wall_figures(_OPIRL_BUDGET.value, _ONPOLICY_BUDGET.value))
  record = {k: round(v, 3) if isinstance(v, float) else v for k, v in record.items()}
  print(json.dumps(record))


if __name__ == '__main__':
  console.run(main)
