"""Adversarial IRL learns: on PointMaze-Left from one expert trajectory, OPIRL, off-policy AIRL and DAC
each lift the normalised score (R − R_random) / (R_expert − R_random) of the deterministic policy past
a stated threshold within a stated budget, over seeds 0-2 vmapped in one run. The mirror of each
test is the same run with the discriminator's labels swapped (the replay data labelled expert, the
expert's data labelled policy): it must stay near random, which shows that the learning tests can fail
(a sign error in the discriminator would fail them).

Small networks (64-64, batches of 64) keep each run to about a minute on two CPU cores; the shipped
configs use the official sizes. Slow: run in CI too."""

import jax
import numpy as np
import pytest

from cljax.config import load_module
from irl import builders, loops, opirl, report, train

pointmaze = load_module('configs/irl/pointmaze.py')

pytestmark = pytest.mark.slow

SEEDS = [0, 1, 2]
# algo -> (environment steps, the normalised score every seed must pass, the mirror's ceiling).
# Measured (seeds 0-2, this machine, with the 256-256 shaping network h of the defaults before study
# round 5): at 10k steps OPIRL 0.38-0.43, AIRL 0.34-0.37, DAC 0.33-0.42; their mirrors -0.22 to -0.29,
# -0.30 to -0.41 and -0.21 to -0.24 (pushed away from the expert, below random). With h at 64-64 (the
# default since round 5) all six pass again. Longer curves: docs/opirl_study.md.
BUDGETS = {'opirl': (10_000, 0.25, 0.1), 'airl': (10_000, 0.25, 0.1), 'dac': (10_000, 0.25, 0.1)}


def _config(algo, steps):
  c = pointmaze.get_config()
  c.algo = algo
  for name in ('algaedice', 'sac'):
    c[name].hidden_sizes = (64, 64)
    c[name].batch_size = 64
  c.irl.batch_size = 64
  c.loop.num_env_steps, c.loop.eval_every, c.loop.eval_episodes = steps, steps // 5, 10
  c.loop.replay_capacity = steps
  return c


def _scores(algo, swap_labels, monkeypatch):
  steps, _, _ = BUDGETS[algo]
  built = builders.build(_config(algo, steps))
  if swap_labels:
    step = opirl.discriminator_step
    # Expert rows become the negatives and replay rows the positives (log π, if any, swaps along).
    monkeypatch.setattr(
      opirl,
      'discriminator_step',
      lambda disc, state, expert, negatives, key, **lp: step(
        disc,
        state,
        negatives,
        expert,
        key,
        **{
          ('expert_log_pi' if k == 'policy_log_pi' else 'policy_log_pi'): v for k, v in lp.items()
        },
      ),
    )
  run = lambda key: loops.train_jax(
    built.env,
    built.agent,
    built.loop_config,
    key,
    expert_buffer=built.expert_buffer,
    transform_fn=built.parts.prep.transitions,
  )
  _, metrics = jax.jit(jax.vmap(run))(train.seed_keys(SEEDS))
  final = np.asarray(metrics['eval_return'])[:, -1]
  expert = float(built.meta['return_mean'])
  random = report.random_return('PointMaze-Left', built.env, 20)
  return (final - random) / (expert - random)


@pytest.mark.parametrize('algo', sorted(BUDGETS))
def test_adversarial_imitation_reaches_the_stated_score(algo, monkeypatch):
  scores = _scores(algo, False, monkeypatch)
  assert np.all(scores >= BUDGETS[algo][1]), (algo, scores)


@pytest.mark.parametrize('algo', sorted(BUDGETS))
def test_mirror_with_swapped_labels_stays_near_random(algo, monkeypatch):
  scores = _scores(algo, True, monkeypatch)
  assert np.all(scores <= BUDGETS[algo][2]), (algo, scores)
