r"""The OPIRL study: learning curves of named variants of OPIRL's settings on a JAX-native environment.

  python scripts/opirl_study.py --env=PointMaze-Left --seed=100 --steps=30000 --variants=official+net64,sac+net64
  python scripts/opirl_study.py --env=Pendulum --seed=0 --steps=100000 --variants=default,official

Each variant (knobs of `KNOBS` joined by '+', each a set of `--config.*` overrides on top of
`configs/irl/<env>.py:official`; or `default`, the shipped default config, optionally followed by
knobs on top of it: `default+disc64`) is one scripts/train_irl.py process with `--num_seeds` vmapped
seeds from `--seed`, in `--root/<env>/<variant>_seed<seed>_<steps>`; finished runs are read, not redone,
and killed ones resume. For each run it records the return after the budget (mean ± std over seeds),
the normalised score, the steps to 90 % of the expert per seed and the learning curves (wall-clock
figures are scripts/bench_irl.py's, measured on an idle machine), writes them to `--out` (JSON), and draws every variant's
mean ± std band into `--plot` (PNG). Choose settings on seeds other than those you report (docs/
opirl_study.md: chosen on seeds 100-102, reported on 0-2).
"""

import json
import os
import subprocess
import sys

from absl import app, flags

from cljax import console

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CONFIGS = {'PointMaze-Left': 'configs/irl/pointmaze.py', 'Pendulum': 'configs/irl/pendulum.py'}

# Knobs, each a set of `--config.*` overrides of the `:official` config; a variant joins knobs with '+'
# (e.g. 'sac+net64'), and 'default' is the shipped default config instead of `:official`.
KNOBS = {
  'official': {},
  'actor_lr3e-4': {'algaedice.actor_lr': 3e-4},
  'actor_fast': {'algaedice.actor_lr': 3e-4, 'algaedice.actor_update_period': 1},
  'nobc': {'algaedice.use_bc_reg': False},
  'temp0.1': {'algaedice.init_temperature': 0.1, 'sac.init_temperature': 0.1},
  'disc3e-4': {'discriminator.learning_rate': 3e-4},
  'gp1': {'discriminator.gp_coeff': 1.0},
  'gamma_d0.99': {'discriminator.gamma_d': 0.99},
  'disc1e-5': {'discriminator.learning_rate': 1e-5},  # the official default (PointMaze: 3e-3)
  'gp100': {'discriminator.gp_coeff': 100.0},
  'state_reward': {'discriminator.reward_input': 's'},
  'shaped': {'discriminator.policy_reward': 'f'},  # r + γ_d h(s') − h(s) to the policy
  'traj5': {'num_trajectories': 5},  # a diagnostic: the goal is one trajectory
  'noclip': {'discriminator.reward_clip_max': float('inf')},  # PointMaze clips r at 0 by default
  'noise0.3': {'algaedice.exploration_noise': 0.3},
  'net64': {'algaedice.hidden_sizes': (64, 64), 'sac.hidden_sizes': (64, 64)},
  'utd0.25': {'loop.num_envs': 4},  # 4 environments, 1 update per vectorised step
  'sac': {'irl.policy_learner': 'sac'},  # SAC (3e-4, actor on every update) as the learner
  # r and h see the particle relative to the target (PointMaze's observation: particle xyz, target
  # xyz), so a reward learned from one demonstrated target applies to every target.
  'goal_rel': {'discriminator.goal_relative': (0, 3, 3)},
  # The discriminator's shaping network h at 64-64 (official 256-256): h with its gradient penalty
  # (a double backward pass) is most of a step's time at 64-wide policy networks.
  'disc64': {'discriminator.shaping_hidden': (64, 64)},
  'utd0.5': {'loop.num_envs': 2},  # 2 environments, 1 update per vectorised step
  # Smaller minibatches for the discriminator and the policy learner (official 256): on this CPU a
  # 64-wide step runs 2.2x (128) and 3.3x (64) as fast; the question is what they cost in learning.
  'batch128': {'irl.batch_size': 128, 'sac.batch_size': 128, 'algaedice.batch_size': 128},
  'batch64': {'irl.batch_size': 64, 'sac.batch_size': 64, 'algaedice.batch_size': 64},
}


def variant_base(name: str) -> str:
  """The config argument a variant starts from: '' (the shipped defaults) for 'default' and
  'default+...', ':official' otherwise."""
  return '' if name.split('+')[0] == 'default' else ':official'


def variant_overrides(name: str) -> dict | None:
  """The overrides of a '+'-joined variant name (on top of `variant_base(name)`); None for 'default'.
  ValueError for an unknown knob."""
  if name == 'default':
    return None
  knobs = name.split('+')
  if knobs[0] == 'default':
    knobs = knobs[1:]
  overrides = {}
  for knob in knobs:
    if knob not in KNOBS:
      raise ValueError(
        f'unknown knob {knob!r} in variant {name!r}; knobs: {sorted(KNOBS)} (or the '
        f'variant default)'
      )
    overrides.update(KNOBS[knob])
  return overrides


_ENV = flags.DEFINE_enum('env', 'PointMaze-Left', sorted(CONFIGS), 'Environment.')
_VARIANTS = flags.DEFINE_list(
  'variants', ['default', 'official'], f"'default', or knobs joined by '+', of {sorted(KNOBS)}."
)
_SEED = flags.DEFINE_integer('seed', 100, 'First seed (the study chooses on 100-102).')
_NUM_SEEDS = flags.DEFINE_integer('num_seeds', 3, 'Seeds, vmapped in one run.', lower_bound=1)
_STEPS = flags.DEFINE_integer('steps', 100_000, 'Environment steps per seed.', lower_bound=1)
_EVALS = flags.DEFINE_integer(
  'evals', 20, 'Evaluations per run (must divide --steps).', lower_bound=1
)
_ROOT = flags.DEFINE_string('root', 'runs/opirl_study', "Parent of the runs' work directories.")
_OUT = flags.DEFINE_string(
  'out', None, 'JSON summary (default <root>/<env>_seed<seed>_<steps>.json).'
)
_PLOT = flags.DEFINE_string('plot', None, 'PNG of the curves (default next to --out).')


def run_variant(name: str, workdir: str) -> dict:
  """One scripts/train_irl.py process (or its finished results); adds `variant` and `overrides`."""
  results_path = os.path.join(workdir, 'results.json')
  if not os.path.exists(results_path):
    overrides = variant_overrides(name)
    arg = variant_base(name)
    cmd = [
      sys.executable,
      os.path.join(ROOT, 'scripts', 'train_irl.py'),
      f'--config={CONFIGS[_ENV.value]}{arg}',
      f'--workdir={workdir}',
      f'--config.seed={_SEED.value}',
      f'--config.num_seeds={_NUM_SEEDS.value}',
      f'--config.loop.num_env_steps={_STEPS.value}',
      f'--config.loop.eval_every={_STEPS.value // _EVALS.value}',
    ]
    cmd += [f'--config.{k}={v}'.replace(' ', '') for k, v in (overrides or {}).items()]
    print(' '.join(cmd), flush=True)
    proc = subprocess.run(
      cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    if proc.returncode:
      raise app.UsageError(f'{name}: train_irl.py exited {proc.returncode}: {proc.stderr[-2000:]}')
  with open(results_path, encoding='utf-8') as f:
    results = json.load(f)
  return {'variant': name, 'overrides': variant_overrides(name), **results}


def steps_to_90_text(reached: list[int | None]) -> str:
  """The per-seed steps to 90 % of the expert as printed: 'not reached' for a seed that never got
  there (null in the JSON), e.g. '[12000, not reached]'."""
  return '[' + ', '.join('not reached' if s is None else str(s) for s in reached) + ']'


def main(argv):
  del argv
  for name in _VARIANTS.value:
    try:
      variant_overrides(name)
    except ValueError as e:
      raise app.UsageError(f'--variants: {e}') from None
  if _STEPS.value % _EVALS.value:
    raise app.UsageError(f'--evals ({_EVALS.value}) must divide --steps ({_STEPS.value})')
  import numpy as np

  from cljax import runs

  tag = f'{_ENV.value}_seed{_SEED.value}_{_STEPS.value}'
  out = _OUT.value or os.path.join(_ROOT.value, f'{tag}.json')
  plot = _PLOT.value or os.path.splitext(out)[0] + '.png'
  rows = []
  for name in _VARIANTS.value:
    r = run_variant(
      name, os.path.join(_ROOT.value, _ENV.value, f'{name}_seed{_SEED.value}_{_STEPS.value}')
    )
    gap = r['expert_return'] - r['random_return']
    finals = [s['final_return'] for s in r['per_seed']]
    reached = [s['steps_to_90pct_expert'] for s in r['per_seed']]
    rows.append(
      {
        'variant': name,
        'overrides': r['overrides'],
        'final_return': float(np.mean(finals)),
        'final_return_std': float(np.std(finals)),
        'final_score': float(np.mean([(x - r['random_return']) / gap for x in finals])),
        'steps_to_90pct_expert_per_seed': reached,
        'expert_return': r['expert_return'],
        'random_return': r['random_return'],
        'per_seed_curves': [s['learning_curve'] for s in r['per_seed']],
      }
    )
    print(
      f'{name:>22}: final {rows[-1]["final_return"]:8.1f} ± {rows[-1]["final_return_std"]:6.1f} '
      f'(score {rows[-1]["final_score"]:.2f}), steps to 90 %: {steps_to_90_text(reached)}',
      flush=True,
    )
  os.makedirs(os.path.dirname(out) or '.', exist_ok=True)
  with open(out, 'w', encoding='utf-8') as f:
    json.dump(
      {
        'env': _ENV.value,
        'seeds': list(range(_SEED.value, _SEED.value + _NUM_SEEDS.value)),
        'steps': _STEPS.value,
        'rows': rows,
      },
      f,
      indent=1,
    )
  runs.plot_band_curves(
    {r['variant']: r['per_seed_curves'] for r in rows},
    plot,
    f'OPIRL variants on {_ENV.value}, seeds {_SEED.value}-{_SEED.value + _NUM_SEEDS.value - 1}',
    'true return (deterministic policy)',
    hlines={'expert': rows[0]['expert_return'], 'random': rows[0]['random_return']},
  )
  print(f'wrote {out} and {plot}')


if __name__ == '__main__':
  console.run(main)
