r"""Regenerates the IRL results tables (docs/results.md): imitation from 1 expert trajectory, and reward transfer.

  python scripts/irl_results_table.py --out runs/irl_results.json --plot runs/irl_curves.png
  python scripts/irl_results_table.py --table=transfer --out runs/irl_transfer.json

For each environment in `--envs` and each algorithm in `--algos`, runs scripts/train_irl.py (one
process for all seeds on JAX-native environments, whose seeds are vmapped; one process per seed on
MuJoCo, `--parallel` of them at once) in `--root/<env>/<algo>[/seed<i>]`, then reads every
`results.json` and reports, per row, the budget used, the return after the budget (mean ± std over
seeds; the deterministic policy's true return, `eval_episodes` episodes), the steps to 90 % of the
expert (the mean over the seeds that reached it, and how many did) and the wall-clock seconds to it
(the training clock of the seed's process, which trains `seeds_per_process` seeds together; with
`--parallel` > 1 the processes share the machine). Runs that already finished are read, not redone;
killed ones resume. Prints a markdown table, writes everything to `--out` and draws the learning
curves (mean ± std over seeds, every algorithm, one panel per environment, log-scaled steps) into
`--plot`. The on-policy algorithms (airl_onpolicy, gail_onpolicy) run on MuJoCo through the Gymnasium adapter's vector
environment (`ppo.num_envs` environments per process).

`--table=transfer`: for each target in `--targets` and each reward-learning algorithm (opirl, airl,
dac) in `--algos`, the rewards of that algorithm's imitation runs on the target's source environment
(configs/irl/transfer.py: PointMaze-Left for PointMaze-Right, CustomAnt for AmputatedAnt / BigAnt;
runs missing under `--root` are made first, with the source's budget) are each handed to
scripts/transfer_reward.py (seed i's reward trains SAC seed i, one process each), next to SAC on the
true reward with the same seeds and budget. Reports the target's true return after the budget.

Budgets (`--budgets env=steps,...`, default `configs/irl/common.TABLE_BUDGETS`) are environment steps
per seed of the off-policy algorithms; the on-policy ones get `ONPOLICY_BUDGET_FACTOR` (10) times as
many (issue 12: 1e5 and 1e6). The evaluation period is a run's budget / `--evals_per_run`.
"""

import concurrent.futures
import json
import os
import subprocess
import sys

from absl import app, flags

from cljax import console
from cljax.config import load_module
from irl import config_defaults as irl_common

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TRANSFER_CONFIG = 'configs/irl/transfer.py'
REWARD_ALGOS = ('opirl', 'airl', 'dac')
CONFIGS = {
  'PointMaze-Left': 'configs/irl/pointmaze.py',
  'Pendulum': 'configs/irl/pendulum.py',
  'Hopper-v5': 'configs/irl/mujoco.py:Hopper-v5',
  'HalfCheetah-v5': 'configs/irl/mujoco.py:HalfCheetah-v5',
  'CustomAnt': 'configs/irl/mujoco.py:CustomAnt',
}
DEFAULT_BUDGETS = irl_common.TABLE_BUDGETS

_TABLE = flags.DEFINE_enum('table', 'imitation', ['imitation', 'transfer'], 'Which table.')
_TARGETS = flags.DEFINE_list(
  'targets', ['PointMaze-Right', 'AmputatedAnt'], 'Transfer targets (configs/irl/transfer.py).'
)

_ENVS = flags.DEFINE_list(
  'envs',
  ['PointMaze-Left', 'Pendulum', 'Hopper-v5', 'HalfCheetah-v5'],
  f'Environments, of {sorted(CONFIGS)}.',
)
_ALGOS = flags.DEFINE_list('algos', list(irl_common.TABLE_ALGOS), 'Algorithms.')
_SEEDS = flags.DEFINE_integer('num_seeds', 3, 'Seeds per row (0, 1, ...).', lower_bound=1)
_BUDGETS = flags.DEFINE_list('budgets', [], 'env=steps overrides of DEFAULT_BUDGETS.')
_EVALS = flags.DEFINE_integer(
  'evals_per_run',
  irl_common.TABLE_EVALS_PER_RUN,
  'Evaluations per run (the budget must divide).',
  lower_bound=1,
)
_EVAL_EPISODES = flags.DEFINE_integer(
  'eval_episodes', irl_common.TABLE_EVAL_EPISODES, 'Episodes per evaluation.', lower_bound=1
)
_PARALLEL = flags.DEFINE_integer(
  'parallel',
  1,
  'Processes run at once for the one-per-seed runs of host (MuJoCo) environments; with more than '
  "one, each runs XLA on one thread (2 processes on this machine's 2 cores: 1.3x the steps per "
  'second of one process on both).',
  lower_bound=1,
)
_ROOT = flags.DEFINE_string('root', 'runs/irl_table', "Parent of the runs' work directories.")
_PLOT = flags.DEFINE_string(
  'plot', 'runs/irl_curves.png', 'Learning-curve PNG of the imitation table (empty: none).'
)
_ROWS_FROM = flags.DEFINE_list(
  'rows_from',
  [],
  "Imitation table only: read the rows from these --out JSON files (a later file's row replaces "
  'an earlier one of the same environment and algorithm) instead of running; --envs / --algos '
  'then select from them. For a table or figure of rows made in different sessions.',
)
_OUT = flags.DEFINE_string(
  'out',
  None,
  "Where to write the table's numbers (default "
  'runs/irl_results.json, or runs/irl_transfer.json for --table=transfer).',
)


def parse_budgets(items, envs, algos):
  budgets = dict(DEFAULT_BUDGETS)
  for item in items:
    env, sep, steps = item.partition('=')
    if not sep or env not in DEFAULT_BUDGETS or not steps.isdigit() or int(steps) < 1:
      raise app.UsageError(
        f'--budgets entries must be env=steps with env in {sorted(DEFAULT_BUDGETS)} and '
        f'steps a positive int, got {item!r}'
      )
    budgets[env] = int(steps)
  for env in envs:
    for algo in algos:
      budget = irl_common.table_budget(env, algo, budgets)
      if budget % _EVALS.value:
        raise app.UsageError(
          f'the budget of {algo} on {env} ({budget}) must be a multiple of '
          f'--evals_per_run ({_EVALS.value})'
        )
  return budgets


def run_one(env, algo, budget, workdir, seed, num_seeds):
  """One scripts/train_irl.py process; returns its results.json, with `reward_dirs` resolved
  against `workdir` (the run may have been started from another directory)."""
  results = _run(
    'train_irl.py', CONFIGS[env], budget, workdir, seed, num_seeds, [f'--config.algo={algo}']
  )
  if 'reward_dirs' in results:
    results['reward_dirs'] = [
      os.path.join(os.path.abspath(workdir), 'reward', os.path.basename(d))
      for d in results['reward_dirs']
    ]
  return results


def run_transfer(target, reward, budget, workdir, seed):
  """One scripts/transfer_reward.py process; returns its results.json."""
  return _run(
    'transfer_reward.py',
    f'{TRANSFER_CONFIG}:{target}',
    budget,
    workdir,
    seed,
    1,
    [f'--config.reward={reward}'],
  )


def _run(script, config, budget, workdir, seed, num_seeds, extra):
  results_path = os.path.join(workdir, 'results.json')
  if not os.path.exists(results_path):
    cmd = [
      sys.executable,
      os.path.join(ROOT, 'scripts', script),
      '--config',
      os.path.join(ROOT, config),
      *extra,
      f'--workdir={workdir}',
      f'--config.seed={seed}',
      f'--config.num_seeds={num_seeds}',
      f'--config.loop.num_env_steps={budget}',
      f'--config.loop.eval_every={budget // _EVALS.value}',
      f'--config.loop.eval_episodes={_EVAL_EPISODES.value}',
    ]
    print(' '.join(cmd[1:]), file=sys.stderr, flush=True)
    env = dict(os.environ)
    if _PARALLEL.value > 1:  # processes side by side: one XLA thread each
      env['XLA_FLAGS'] = (
        env.get('XLA_FLAGS', '')
        + ' --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1'
      ).strip()
    proc = subprocess.run(
      cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    if proc.returncode:
      raise RuntimeError(f'{" ".join(cmd)} failed:\n{proc.stderr[-3000:]}')
  with open(results_path, encoding='utf-8') as f:
    return json.load(f)


def row_of(results_list):
  """Merges one row's results.json files (one per process) into its per-seed figures."""
  import numpy as np

  per_seed = [s for r in results_list for s in r['per_seed']]
  finals = [s['final_return'] for s in per_seed]
  reached = [s['steps_to_90pct_expert'] for s in per_seed if s['steps_to_90pct_expert'] is not None]
  # Runs made before the wall-clock was recorded per seed have no 'wall_s_to_90pct_expert'.
  wall = [s.get('wall_s_to_90pct_expert') for s in per_seed]
  wall_reached = [w for w in wall if w is not None]
  first = results_list[0]
  return {
    'algo': first['algo'],
    'env': first['env'],
    'env_steps': first['env_steps'],
    'num_trajectories': first['num_trajectories'],
    'seeds': [s['seed'] for s in per_seed],
    'final_return': float(np.mean(finals)),
    'final_return_std': float(np.std(finals)),
    'final_return_per_seed': finals,
    'steps_to_90pct_expert_per_seed': [s['steps_to_90pct_expert'] for s in per_seed],
    'learning_curve_per_seed': [s['learning_curve'] for s in per_seed],
    'steps_to_90pct_expert_mean_of_reached': float(np.mean(reached)) if reached else None,
    'seeds_reaching_90pct': len(reached),
    'wall_s_to_90pct_expert_per_seed': wall,
    'wall_s_to_90pct_expert_mean_of_reached': float(np.mean(wall_reached))
    if wall_reached
    else None,
    'seeds_per_process': len(per_seed) // len(results_list),
    'device': first.get('device', 'cpu'),  # runs made before it was recorded ran on this CPU
    'expert_return': first['expert_return'],
    'random_return': first['random_return'],
  }


def markdown(rows):
  lines = [
    '| environment | algorithm | budget (env steps) | return after budget | steps to 90 % of '
    'expert (seeds reaching) | wall-clock s to 90 % (seeds per process) | expert / random |',
    '|---|---|---|---|---|---|---|',
  ]
  for r in rows:
    steps = r['steps_to_90pct_expert_mean_of_reached']
    reached = (
      f'{steps:,.0f} ({r["seeds_reaching_90pct"]}/{len(r["seeds"])})'
      if steps
      else f'not reached (0/{len(r["seeds"])})'
    )
    seconds = r.get('wall_s_to_90pct_expert_mean_of_reached')
    # The wall-clock is the device's that ran the row: named when it is not this machine's CPU.
    device = r.get('device', 'cpu')
    where = '' if device == 'cpu' else f', {device}'
    wall = '—' if seconds is None else f'{seconds:,.0f} ({r["seeds_per_process"]}{where})'
    lines.append(
      f'| {r["env"]} | {r["algo"]} | {r["env_steps"]:,} | {r["final_return"]:.1f} ± '
      f'{r["final_return_std"]:.1f} | {reached} | {wall} | {r["expert_return"]:.1f} / '
      f'{r["random_return"]:.1f} |'
    )
  return '\n'.join(lines)


def imitation_rows(budgets):
  rows = []
  for env in _ENVS.value:
    for algo in _ALGOS.value:
      rows.append(row_of(source_runs(env, algo, budgets)))
      print(
        f'{env} {algo}: {rows[-1]["final_return"]:.1f} ± {rows[-1]["final_return_std"]:.1f}',
        file=sys.stderr,
        flush=True,
      )
  return rows


def source_runs(env, algo, budgets):
  """The imitation runs of one row (made if missing): one results.json per process."""
  from envs import registry

  workdir = os.path.join(_ROOT.value, env, algo)
  budget = irl_common.table_budget(env, algo, budgets)
  if registry.is_jax_env(env):
    return [run_one(env, algo, budget, workdir, 0, _SEEDS.value)]
  one_seed = lambda s: run_one(env, algo, budget, os.path.join(workdir, f'seed{s}'), s, 1)
  with concurrent.futures.ThreadPoolExecutor(_PARALLEL.value) as pool:
    return list(pool.map(one_seed, range(_SEEDS.value)))


def transfer_rows(budgets):
  import numpy as np

  transfer = load_module('configs/irl/transfer.py')

  rows = []
  for target in _TARGETS.value:
    source = transfer.TARGETS[target][0]
    for algo in [a for a in _ALGOS.value if a in REWARD_ALGOS] + ['true']:
      if algo == 'true':
        rewards = ['true'] * _SEEDS.value
      else:
        rewards = [d for r in source_runs(source, algo, budgets) for d in r['reward_dirs']]
      results = [
        run_transfer(
          target,
          reward,
          budgets[target],
          os.path.join(_ROOT.value, 'transfer', target, algo, f'seed{s}'),
          s,
        )
        for s, reward in enumerate(rewards)
      ]
      finals = [r['final_return'] for r in results]
      rows.append(
        {
          'env': target,
          'source_env': None if algo == 'true' else source,
          'reward': 'true reward' if algo == 'true' else algo,
          'source_env_steps': None if algo == 'true' else budgets[source],
          'env_steps': budgets[target],
          'seeds': list(range(len(results))),
          'final_return': float(np.mean(finals)),
          'final_return_std': float(np.std(finals)),
          'final_return_per_seed': finals,
          'random_return': results[0]['random_return'],
        }
      )
      print(
        f'{target} {algo}: {rows[-1]["final_return"]:.1f} ± {rows[-1]["final_return_std"]:.1f}',
        file=sys.stderr,
        flush=True,
      )
  return rows


def transfer_markdown(rows):
  lines = [
    '| target | SAC trained on | reward learned with (budget) | SAC budget (env steps) | true '
    'return after budget | random |',
    '|---|---|---|---|---|---|',
  ]
  for r in rows:
    learned = f'{r["source_env"]}, {r["source_env_steps"]:,} steps' if r['source_env'] else '—'
    lines.append(
      f'| {r["env"]} | {r["reward"]} | {learned} | {r["env_steps"]:,} | '
      f'{r["final_return"]:.1f} ± {r["final_return_std"]:.1f} | {r["random_return"]:.1f} |'
    )
  return '\n'.join(lines)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  transfer = load_module('configs/irl/transfer.py')
  from irl import builders

  for env in _ENVS.value:
    if env not in CONFIGS:
      raise app.UsageError(f'--envs: {env!r} is not one of {sorted(CONFIGS)}')
  for target in _TARGETS.value:
    if target not in transfer.TARGETS:
      raise app.UsageError(f'--targets: {target!r} is not one of {sorted(transfer.TARGETS)}')
  for algo in _ALGOS.value:
    if algo not in builders.ALGOS:
      raise app.UsageError(f'--algos: {algo!r} is not one of {list(builders.ALGOS)}')
  used = (
    _ENVS.value
    if _TABLE.value == 'imitation'
    else _TARGETS.value + [transfer.TARGETS[t][0] for t in _TARGETS.value]
  )
  budgets = parse_budgets(_BUDGETS.value, used, _ALGOS.value)

  if _ROWS_FROM.value:
    if _TABLE.value != 'imitation':
      raise app.UsageError('--rows_from: only for --table=imitation')
    rows, budgets = saved_rows(_ROWS_FROM.value, _ENVS.value, _ALGOS.value)
    used = list(budgets)
  elif _TABLE.value == 'imitation':
    rows = imitation_rows(budgets)
  else:
    rows = transfer_rows(budgets)
  comparisons = onpolicy_comparisons(rows) if _TABLE.value == 'imitation' else []
  out = _OUT.value or (
    'runs/irl_results.json' if _TABLE.value == 'imitation' else 'runs/irl_transfer.json'
  )
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  with open(out, 'w', encoding='utf-8') as f:
    json.dump(
      {
        'table': _TABLE.value,
        'rows': rows,
        'onpolicy_comparisons': comparisons,
        'budgets': {e: budgets[e] for e in used},
        'evals_per_run': _EVALS.value,
        'eval_episodes': _EVAL_EPISODES.value,
      },
      f,
      indent=2,
    )
  if _TABLE.value == 'imitation' and _PLOT.value:
    plot(rows, _PLOT.value)
  print(markdown(rows) if _TABLE.value == 'imitation' else transfer_markdown(rows))
  for c in comparisons:
    ratio = 'OPIRL does not reach it' if c['step_ratio'] is None else f'ratio {c["step_ratio"]:.1f}'
    print(
      f"{c['env']}: on-policy AIRL's best normalised score {c['score']:.2f} (mean over seeds) "
      f'first at {c["airl_onpolicy_steps"]:,} steps, OPIRL at '
      f'{c["opirl_steps"] and format(c["opirl_steps"], ",")} ({ratio})'
    )


def saved_rows(paths, envs, algos):
  """The imitation rows of the `--out` files `paths` for `envs` x `algos`, in that order (a later
  file's row replaces an earlier one's), and the files' budgets of those environments. UsageError
  for a missing or unreadable file, a file of another table, or a selection none of them holds."""
  found, budgets = {}, {}
  for path in paths:
    try:
      with open(path, encoding='utf-8') as f:
        saved = json.load(f)
    except (OSError, ValueError) as e:
      raise app.UsageError(f'--rows_from: cannot read {path}: {e}') from None
    if saved.get('table') != 'imitation':
      raise app.UsageError(
        f'--rows_from: {path} is not an imitation table ({saved.get("table")!r})'
      )
    found.update({(r['env'], r['algo']): r for r in saved['rows']})
    budgets.update(saved['budgets'])
  rows = [found[e, a] for e in envs for a in algos if (e, a) in found]
  if not rows:
    raise app.UsageError(
      f'--rows_from: no row for --envs={",".join(envs)} --algos={",".join(algos)} in '
      f'{", ".join(paths)} (they hold {sorted(found)})'
    )
  return rows, {e: budgets[e] for e in dict.fromkeys(r['env'] for r in rows)}


def onpolicy_comparisons(rows):
  """`irl.report.steps_at_best_score` per environment with both an OPIRL and an on-policy AIRL row:
  the best normalised score (mean over seeds) that on-policy AIRL reaches within its budget, the
  steps at which it and OPIRL first reach it, and their ratio (issue 12's goal: at least 5)."""
  from irl import report

  out = []
  by_key = {(r['env'], r['algo']): r for r in rows}
  for env in dict.fromkeys(r['env'] for r in rows):
    if (env, 'opirl') not in by_key or (env, 'airl_onpolicy') not in by_key:
      continue
    opirl, onpolicy_airl = by_key[env, 'opirl'], by_key[env, 'airl_onpolicy']
    out.append(
      {
        'env': env,
        **report.steps_at_best_score(
          onpolicy_airl['learning_curve_per_seed'],
          opirl['learning_curve_per_seed'],
          opirl['expert_return'],
          opirl['random_return'],
          names=('airl_onpolicy', 'opirl'),
        ),
      }
    )
  return out


def plot(rows, path):
  """One panel per environment: every algorithm's mean ± std band, the expert and random lines."""
  from cljax import runs

  panels = {}
  for r in rows:
    curves, hlines = panels.setdefault(r['env'], ({}, {}))
    curves[r['algo']] = r['learning_curve_per_seed']
    hlines.update({'expert': r['expert_return'], 'random': r['random_return']})
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  runs.plot_band_panels(
    {
      f'{env} (1 expert trajectory, {len(rows[0]["seeds"])} seeds)': panel
      for env, panel in panels.items()
    },
    path,
    'true return (deterministic policy)',
    log_x=True,
  )


if __name__ == '__main__':
  console.run(main)
