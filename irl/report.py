"""A finished IRL run's figures: the random policy's reference return, steps to a fraction of the
expert, normalised-score curves, and the `results.json` summary (`summarise`)."""

from __future__ import annotations

import os

import jax
import numpy as np

from cljax import runs
from envs import registry
from irl import loops


def random_return(env_name: str, env, num_episodes: int, *, seed: int = 0) -> float:
  """Mean return of uniform random actions over `num_episodes` episodes (`env` is used when it is
  JAX-native; a host env of `num_episodes` environments is made otherwise). The scripts keep the
  default seed 0 whatever their seeds: the reference of the normalised score is the environment's,
  so seed i reports the same score alone or in a group."""
  key = jax.random.key(seed + 30_000)
  spec = env.spec
  if registry.is_jax_env(env_name):
    policy = lambda obs, k: loops.random_action(spec, k, obs.shape[0])
    return float(jax.jit(lambda k: loops.evaluate(env, policy, k, num_episodes).mean())(key))
  eval_env = registry.make(env_name, num_envs=num_episodes, seed=seed + 30_000)
  try:
    greedy = lambda state, obs, k: loops.random_action(spec, k, obs.shape[0])
    return float(np.mean(loops.evaluate_host(eval_env, greedy, None, key)))
  finally:
    eval_env.close()


def steps_to(curve: list, expert_return: float, random_return: float, fraction: float = 0.9):
  """First step whose normalised score (R − R_random)/(R_expert − R_random) ≥ fraction, or None."""
  gap = expert_return - random_return
  for step, value in curve:
    if value is not None and gap > 0 and (value - random_return) / gap >= fraction:
      return step
  return None


def mean_score_curve(per_seed_curves: list, expert_return: float, random_return: float) -> list:
  """[(steps, normalised score (R − R_random)/(R_expert − R_random) of the mean over seeds)] of
  per-seed learning curves [[steps, return], ...] that share their steps."""
  gap = expert_return - random_return
  return [
    (step, (float(np.mean([c[i][1] for c in per_seed_curves])) - random_return) / gap)
    for i, (step, _) in enumerate(per_seed_curves[0])
  ]


def steps_at_best_score(
  slow_curves: list,
  fast_curves: list,
  expert_return: float,
  random_return: float,
  names=('slow', 'fast'),
) -> dict:
  """The best normalised score (of the mean over seeds) the `slow` algorithm's curves reach, the
  steps each algorithm first reaches it at (None: never), and slow steps / fast steps."""
  slow = mean_score_curve(slow_curves, expert_return, random_return)
  fast = mean_score_curve(fast_curves, expert_return, random_return)
  score = max(value for _, value in slow)
  first = lambda curve: next((step for step, value in curve if value >= score), None)
  slow_steps, fast_steps = first(slow), first(fast)
  return {
    'score': score,
    f'{names[0]}_steps': slow_steps,
    f'{names[1]}_steps': fast_steps,
    'step_ratio': slow_steps / fast_steps if fast_steps else None,
  }


def summarise(
  workdir: str, seeds: list[int], expert_return: float | None, random_return: float
) -> dict:
  """Per-seed and mean learning curves, final returns and (with `expert_return`) steps and
  wall-clock seconds to 90 % of the expert, from `workdir/metrics.jsonl`.

  The wall-clock is the run's training clock (`time/wall_s`, compilation and evaluations included,
  carried over resumes) at that evaluation: the time of the process that trained all of `seeds`
  together (vmapped on JAX-native environments), not of one seed alone."""
  metrics_path = os.path.join(workdir, 'metrics.jsonl')
  wall_s = dict(runs.read_curve(metrics_path, 'time/wall_s'))
  per_seed = []
  for s in seeds:
    curve = runs.read_curve(metrics_path, f'eval_return_seed{s}')
    record = {'seed': s, 'learning_curve': curve, 'final_return': curve[-1][1]}
    if expert_return is not None:
      record['steps_to_90pct_expert'] = reached = steps_to(curve, expert_return, random_return)
      record['wall_s_to_90pct_expert'] = None if reached is None else wall_s.get(reached)
    per_seed.append(record)
  finals = [r['final_return'] for r in per_seed]
  summary = {
    'seeds': list(seeds),
    'final_return': float(np.mean(finals)),
    'final_return_std': float(np.std(finals)),
    'random_return': random_return,
    'learning_curve': runs.read_curve(metrics_path, 'eval_return'),
    'per_seed': per_seed,
  }
  if expert_return is not None:
    summary['steps_to_90pct_expert'] = steps_to(
      summary['learning_curve'], expert_return, random_return
    )
    summary['steps_to_90pct_expert_per_seed'] = [r['steps_to_90pct_expert'] for r in per_seed]
  return summary
