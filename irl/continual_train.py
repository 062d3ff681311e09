r"""Continual inverse RL over a stream of tasks (scripts/train_continual_irl.py): OPIRL trained task
after task, its reward learner consolidated between tasks by a method of `cl.methods`, and the reward
of every task measured after every task.

  results = train_stream(workdir, config)   # config: configs/cirl/pointmaze_goals.py

For each task t of `config.stream` (`STREAMS`), in order:

1. **Learn.** OPIRL on task t (`irl.opirl`, the same replay rules as a single run: a fresh policy, a
   fresh replay buffer, negatives uniform over it) from `config.num_trajectories` demonstrations of t
   (`joint`: of every task so far), for `config.loop.num_env_steps` steps, with `irl.train.train`
   (metrics, checkpoints and resume in `workdir/task<t>/`). The discriminator starts from the one of
   task t − 1 (a fresh Adam state, as `cl.train` resets its optimiser), and from task 2 on the method's
   term on the discriminator's parameters is added to its loss (`irl.continual.Consolidation`). Task 1
   has no past, so it is plain OPIRL with the same seed and budget, whatever the method.
2. **Consolidate.** The method's `consolidate` on the task's labelled transitions
   (`irl.continual.task_data`): its expert rows (1) and `config.consolidation.num_negatives` rows drawn
   from the final replay buffer (0). K-priors and FROMP pick their memorable transitions there by
   λ-descend on p(1 − p) with the discriminator's σ(f) as targets (`irl.continual`).
3. **Measure** every task j's reward with the discriminator after task t (`irl.continual
   .evaluate_reward`): the EPIC distance (Gleave et al. 2021) of the policy's reward to task j's true
   reward on task j's coverage, and the AUC of held-out expert transitions of j against a uniform
   random policy's. Row t of `epic_matrix` / `auc_matrix`; `epic_before` / `auc_before` are the
   discriminator before any training.

Then the stream checkpoint (`workdir/stream/`) is saved: a killed run resumes inside the task it was
in (its own checkpoints) or at the next task. Seeds are vmapped as in `irl.train`. The forgetting
metrics are `cl.metrics`' on the quality matrices 1 − EPIC and AUC (higher is better for both); read
back as a distance, EPIC's forgetting of task j is the rise of its distance from its best
(min over rows l ≥ j of D_{l,j}) to the last row.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from typing import Any, NamedTuple

import flax
import jax
import jax.numpy as jnp
import numpy as np

from cl import metrics as cl_metrics
from cl.methods import make_method
from cl.methods.base import Method
from cljax import distributed, runs
from cljax.checkpoint import Checkpointer
from cljax.config import ConfigError, check_choice, check_positive
from envs import pointmaze, registry
from irl import builders, continual, demos, imitation, opirl, replay, report, rewards
from irl import train as irl_train
from irl.builders import Built
from irl.sac import agent as sac_agent

STREAMS = {'PointMaze-Goals': registry.GOAL_ENVS}
TRUE_REWARDS = {name: pointmaze.true_reward for name in registry.GOAL_ENVS}
# cl.methods that consolidate a reward learner here: SI needs every optimiser step (`after_step`) and
# VCL the IVON optimiser, neither of which the discriminator's Adam step gives.
METHODS = (
  'finetune',
  'joint',
  'ewc',
  'online_ewc',
  'replay',
  'kpriors',
  'fromp',
  'fromp_l2',
  'ewc_fr_replay',
)


class Stream(NamedTuple):
  """Everything a stream run needs, built and checked before any training (`build_stream`)."""

  names: tuple[str, ...]
  builts: list[Built]  # one irl.builders.build per task
  method: Method
  evaluations: list[continual.TaskEvaluation]
  seeds: list[int]


def task_config(config, env_name: str):
  """The single-task IRL config of one task: `config` with its env and demonstrations."""
  c = copy.deepcopy(config)
  c.env = env_name
  c.demos = os.path.join(config.demos_dir, env_name)
  return c


def held_out_expert(prefix: str, env_name: str, num_trajectories: int, spec) -> Any:
  """The demonstrations file's episodes after the first `num_trajectories` (those train)."""
  rows, meta = demos.load(
    prefix, env=env_name, obs_dim=spec.observation.shape[0], act_dim=spec.action.shape[0]
  )
  if meta['num_episodes'] <= num_trajectories:
    raise ConfigError(
      f'config.num_trajectories ({num_trajectories}) leaves no held-out episode in {prefix} '
      f'({meta["num_episodes"]} episodes); the AUC and EPIC need some'
    )
  ends = np.asarray(rows.terminated) | np.asarray(rows.truncated)
  episode = np.cumsum(np.r_[0, ends[:-1]])
  keep = episode >= num_trajectories
  return jax.tree.map(lambda x: np.asarray(x)[keep], rows)


def build_stream(config) -> Stream:
  """Checks a continual IRL config and builds every task; ConfigError before any compute."""
  check_choice('stream', config.stream, tuple(STREAMS))
  check_choice('method', config.method, METHODS)
  check_choice('algo', config.algo, ('opirl',))
  if config.normalize_states:
    raise ConfigError(
      'config.normalize_states must be False for a stream: expert-statistics normalisation would '
      "move the reward learner's inputs from task to task"
    )
  check_positive('consolidation.num_negatives', config.consolidation.num_negatives, integer=True)
  for field in ('num_random_episodes', 'num_uniform', 'num_samples'):
    check_positive(f'evaluation.{field}', config.evaluation[field], integer=True)
  if not 0.0 <= config.evaluation.discount <= 1.0:
    raise ConfigError(
      f'config.evaluation.discount must be in [0, 1], got {config.evaluation.discount}'
    )
  if config.policy_check.enabled:  # its config errors before any training
    builders.dataclass_from_config(sac_agent.SACConfig, config.sac, 'sac')
    check_positive('policy_check.num_env_steps', config.policy_check.num_env_steps, integer=True)
  names = STREAMS[config.stream]
  if not (isinstance(config.num_tasks, int) and 0 <= config.num_tasks <= len(names)):
    raise ConfigError(
      f'config.num_tasks must be an int in [0, {len(names)}] (0: the whole stream), '
      f'got {config.num_tasks!r}'
    )
  names = names[: config.num_tasks or None]
  builts = [builders.build(task_config(config, name)) for name in names]
  disc = builts[0].parts.discriminator
  try:
    apply_fn = continual.classifier_apply(disc)
  except ValueError as e:
    raise ConfigError(f'config.discriminator: {e}') from None
  width = 2 * disc.obs_dim + disc.act_dim
  try:
    method = make_method(
      config,
      apply_fn,
      input_shape=(width,),
      num_outputs=2,
      num_tasks=len(names),
      classes_per_task=2,
    )
  except ValueError as e:
    raise ConfigError(f'config.{config.method}: {e}') from None
  evaluations = []
  for j, (name, built) in enumerate(zip(names, builts)):
    held_out = held_out_expert(
      os.path.join(config.demos_dir, name), name, config.num_trajectories, built.env.spec
    )
    try:
      evaluation = continual.evaluation_data(
        built.env,
        held_out,
        jax.random.key(config.evaluation.seed + j),  # the same coverage for every method and seed
        num_random_episodes=config.evaluation.num_random_episodes,
        num_uniform=config.evaluation.num_uniform,
        num_samples=config.evaluation.num_samples,
        transform_fn=built.parts.prep.transitions,
      )
    except ValueError as e:
      raise ConfigError(f'config.evaluation: {e}') from None
    evaluations.append(evaluation)
  seeds = list(range(config.seed, config.seed + config.num_seeds))
  return Stream(names, builts, method, evaluations, seeds)


def _expert_rows(built: Built):
  return built.expert_buffer.data


@flax.struct.dataclass
class StreamState:
  """The stream checkpoint after a task: per seed [S, ...], matrices [T + 1, S, T] (row 0: before)."""

  discriminator: Any  # DiscriminatorState after the last finished task
  consolidation: Any  # the method's state
  snapshots: Any  # DiscriminatorParams after each task, [T, S, ...]
  epic: jax.Array
  auc: jax.Array


def _evaluation_key(config, task: int) -> jax.Array:
  """The key of task `task`'s EPIC samples, the same for every method, seed and measure."""
  return jax.random.key(config.evaluation.seed + 1000 + task)


def _evaluators(stream: Stream, disc, config) -> list:
  """Per task j, `params -> (EPIC [S], expert logits, random logits)` of the seed-batched
  discriminator params (`irl.continual.evaluate_reward`), jitted once per run. The task's evaluation
  data go in as arguments: closed over, they would be constants of the program, which XLA folds at
  compile time (the true reward's canonicalisation: minutes of compilation)."""
  evaluators = []
  for j, (name, evaluation) in enumerate(zip(stream.names, stream.evaluations)):
    key = _evaluation_key(config, j)

    def evaluate(params, evaluation, key, true_reward=TRUE_REWARDS[name]):
      return continual.evaluate_reward(
        disc, params, evaluation, true_reward, config.evaluation.discount, key
      )

    batched = jax.jit(jax.vmap(evaluate, in_axes=(0, None, None)))
    evaluators.append(lambda params, f=batched, e=evaluation, k=key: f(params, e, k))
  return evaluators


def _evaluate_all(evaluators, params) -> tuple[np.ndarray, np.ndarray]:
  """[S, T] EPIC distances and AUCs of the seed-batched discriminator `params` on every task."""
  epic_rows, auc_rows = [], []
  for evaluate in evaluators:
    distance, expert_logits, random_logits = evaluate(params)
    epic_rows.append(np.asarray(distance))
    expert_logits, random_logits = np.asarray(expert_logits), np.asarray(random_logits)
    auc_rows.append([continual.auc(e, r) for e, r in zip(expert_logits, random_logits)])
  return np.stack(epic_rows, 1), np.asarray(auc_rows, np.float64).T


def train_stream(workdir: str, config, *, stream: Stream | None = None, after_checkpoint=None):
  """Trains the stream (module docstring) into `workdir`; returns the results dict
  (`summarise`), also written by the script as results.json. `after_checkpoint(step)` runs after
  every checkpoint: each evaluation period's inside a task or a policy-check run, and each task's
  stream checkpoint (e.g. `cljax.preemption.Guard.check`, which may raise to stop)."""
  stream = stream or build_stream(config)
  method, seeds, num_tasks = stream.method, stream.seeds, len(stream.names)
  disc = stream.builts[0].parts.discriminator
  irl_config = imitation.IRLConfig(**config.irl.to_dict())
  primary = distributed.is_primary()
  warn = print if primary else (lambda message: None)

  # The discriminator task 1 starts from (irl.loops.init_carry's key, then make_opirl's): "before".
  fresh_disc = jax.vmap(lambda k: disc.init(jax.random.split(jax.random.split(k, 3)[0])[1]))(
    irl_train.seed_keys(seeds)
  )
  abstract = jax.eval_shape(
    lambda d: StreamState(
      discriminator=d,
      consolidation=jax.vmap(method.init)(d.params),
      snapshots=jax.tree.map(lambda x: jnp.stack([x] * num_tasks), d.params),
      epic=jnp.zeros((num_tasks + 1, len(seeds), num_tasks)),
      auc=jnp.zeros((num_tasks + 1, len(seeds), num_tasks)),
    ),
    fresh_disc,
  )
  evaluators = _evaluators(stream, disc, config)
  with Checkpointer(os.path.join(workdir, 'stream')) as ckpt:
    restored = ckpt.restore_newest(abstract, warn)
    if restored is None:
      first = 0
      epic0, auc0 = _evaluate_all(evaluators, fresh_disc.params)
      nan = np.full((num_tasks, len(seeds), num_tasks), np.nan)
      state = StreamState(
        discriminator=fresh_disc,
        consolidation=jax.vmap(method.init)(fresh_disc.params),
        snapshots=jax.tree.map(
          lambda x: jnp.zeros((num_tasks,) + x.shape, x.dtype), fresh_disc.params
        ),
        epic=jnp.asarray(np.concatenate([epic0[None], nan])),
        auc=jnp.asarray(np.concatenate([auc0[None], nan])),
      )
    else:
      first, state, _ = restored
      warn(f'Resuming the stream in {workdir} after task {first} of {num_tasks}.')

    for t in range(first, num_tasks):
      state = _train_task(
        workdir, config, stream, irl_config, state, t, evaluators, after_checkpoint
      )
      ckpt.save(t + 1, state, {'task': t + 1})
      if primary:
        row = np.asarray(state.epic[t + 1]).mean(0)
        print(
          f'task {t + 1}/{num_tasks} ({stream.names[t]}): EPIC to each task '
          f'{np.array2string(row, precision=3)}, AUC '
          f'{np.array2string(np.asarray(state.auc[t + 1]).mean(0), precision=3)}',
          flush=True,
        )
      if after_checkpoint is not None:
        after_checkpoint(t + 1)
  results = summarise(stream, config, state)
  if config.policy_check.enabled:
    results['final_policy_returns'] = policy_check(workdir, config, stream, state, after_checkpoint)
  return results


def _last_returns(metrics_path: str, seeds: list[int]) -> list[float]:
  """Each seed's last evaluation return in a run's metrics.jsonl."""
  return [float(runs.read_curve(metrics_path, f'eval_return_seed{s}')[-1][1]) for s in seeds]


def policy_check(
  workdir: str, config, stream: Stream, state: StreamState, after_checkpoint=None
) -> dict:
  """SAC from scratch on each task j's frozen reward, twice: the reward right after task j was
  learned ('fresh') and the final one, after the whole stream ('final'); `config.policy_check
  .num_env_steps` steps, seeds vmapped, each seed with its own rewards, in
  `workdir/policy_check/<fresh|final>_task<j>/` (resumable). Returns each task's true returns (mean
  over seeds and per seed), the uniform random policy's, and `fraction`: the final reward's normalised
  return (R_final − R_random) / (R_fresh − R_random), 1 when nothing of the reward was lost."""
  sac_config = builders.dataclass_from_config(sac_agent.SACConfig, config.sac, 'sac')
  budget = config.policy_check.num_env_steps
  out = {'fresh': [], 'final': [], 'random': [], 'per_seed': {str(s): {} for s in stream.seeds}}
  final_params = jax.tree.map(lambda x: x[-1], state.snapshots)
  for j, (name, built) in enumerate(zip(stream.names, stream.builts)):
    loop_config = dataclasses.replace(
      built.loop_config,
      num_env_steps=budget,
      eval_every=max(budget // 4, 1),
      start_steps=min(built.loop_config.start_steps, budget // 2),
      update_after=min(built.loop_config.update_after, budget // 2),
    )
    prep, disc = built.parts.prep, built.parts.discriminator
    one_seed = jax.tree.map(lambda x: x[0], final_params)
    policy = sac_agent.make_sac(prep.spec(built.env.spec), sac_config)
    agent = rewards.frozen_reward_agent(policy, rewards.LoadedReward({}, disc, one_seed, prep))
    for kind, params in (
      ('fresh', jax.tree.map(lambda x: x[j], state.snapshots)),
      ('final', final_params),
    ):
      run_dir = os.path.join(workdir, 'policy_check', f'{kind}_task{j}')
      irl_train.train(
        run_dir,
        built.env,
        agent,
        loop_config,
        stream.seeds,
        env_name=name,
        transform_fn=prep.transitions,
        desc=f'SAC on the {kind} reward of task {j + 1}',
        keep_checkpoints=config.keep_checkpoints,
        after_checkpoint=after_checkpoint,
        initial_state_fn=lambda fresh, p=params: fresh.replace(reward_params=p),
      )
      returns = _last_returns(os.path.join(run_dir, 'metrics.jsonl'), stream.seeds)
      out[kind].append(float(np.mean(returns)))
      for s, r in zip(stream.seeds, returns):
        out['per_seed'][str(s)].setdefault(kind, []).append(r)
    out['random'].append(report.random_return(name, built.env, loop_config.eval_episodes))

  def fraction(final, fresh, random):
    return [(a - r) / (b - r) if b != r else None for a, b, r in zip(final, fresh, random)]

  out['fraction'] = fraction(out['final'], out['fresh'], out['random'])
  for per_seed in out['per_seed'].values():
    per_seed['fraction'] = fraction(per_seed['final'], per_seed['fresh'], out['random'])
  out['env_steps'] = budget
  return out


def _train_task(
  workdir,
  config,
  stream: Stream,
  irl_config,
  state: StreamState,
  t: int,
  evaluators,
  after_checkpoint=None,
):
  """Step 1–3 of the module docstring for task `t`; returns the stream state after it."""
  method, built = stream.method, stream.builts[t]
  past = t if method.static_task_count else None
  consolidation = continual.Consolidation(method, past) if t > 0 else None
  agent, parts = opirl.make_opirl(
    built.env.spec,
    built.parts.prep,
    irl_config,
    built.parts.discriminator.config,
    built.parts.policy.config,
    consolidation=consolidation,
  )
  expert_buffer = built.expert_buffer
  if method.cumulative:  # joint: every task's demonstrations so far
    rows = [_expert_rows(b) for b in stream.builts[: t + 1]]
    expert_buffer = replay.expert_buffer(jax.tree.map(lambda *x: jnp.concatenate(x), *rows))

  def initial_state_fn(fresh):
    """A fresh policy; the discriminator of the task before (fresh Adam moments); the method state."""
    if t == 0:
      return fresh
    carried = state.discriminator.replace(
      reward_opt_state=fresh.discriminator.reward_opt_state,
      shaping_opt_state=fresh.discriminator.shaping_opt_state,
    )
    return fresh.replace(discriminator=carried, consolidation=state.consolidation)

  states, carry = irl_train.train(
    os.path.join(workdir, f'task{t}'),
    built.env,
    agent,
    built.loop_config,
    stream.seeds,
    env_name=stream.names[t],
    expert_buffer=expert_buffer,
    transform_fn=parts.prep.transitions,
    desc=f'task {t + 1}/{len(stream.names)} {stream.names[t]}',
    keep_checkpoints=config.keep_checkpoints,
    initial_state_fn=initial_state_fn,
    after_checkpoint=after_checkpoint,
    return_carry=True,
  )
  del states
  disc_state = carry.agent_state.discriminator

  # Consolidate on the task's expert rows and negatives from each seed's final replay buffer.
  n = config.consolidation.num_negatives
  keys = jax.vmap(lambda k: jax.random.fold_in(k, 7_000 + t))(irl_train.seed_keys(stream.seeds))

  def consolidate(method_state, params, buffer, key):
    negative_key, method_key = jax.random.split(key)
    data = continual.task_data(
      _expert_rows(built), replay.sample(buffer, negative_key, n), task_index=t
    )
    return method.consolidate(method_state, params, data, method_key)

  method_state = jax.jit(jax.vmap(consolidate))(
    state.consolidation, disc_state.params, carry.buffer, keys
  )
  epic_row, auc_row = _evaluate_all(evaluators, disc_state.params)
  return StreamState(
    discriminator=disc_state,
    consolidation=method_state,
    snapshots=jax.tree.map(lambda s, p: s.at[t].set(p), state.snapshots, disc_state.params),
    epic=state.epic.at[t + 1].set(epic_row),
    auc=state.auc.at[t + 1].set(auc_row),
  )


def drift_matrix(stream: Stream, config, snapshots) -> np.ndarray:
  """[S, T, T] EPIC distance between the reward after task i and the reward right after task j, on
  task j's coverage with its evaluation key (`irl.continual.reward_drift`); NaN above the diagonal
  and 0 on it. Where the EPIC matrix mixes two things, a learned reward far from the true one and a
  reward that moved, this is the second alone: the reward lost since the task was learned."""
  disc = stream.builts[0].parts.discriminator
  drift = jax.jit(
    jax.vmap(
      lambda p, r, e, k: continual.reward_drift(disc, p, r, e, config.evaluation.discount, k),
      in_axes=(0, 0, None, None),
    )
  )
  num_tasks = len(stream.names)
  num_seeds = len(stream.seeds)
  out = np.full((num_seeds, num_tasks, num_tasks), np.nan)
  for j, evaluation in enumerate(stream.evaluations):
    key = _evaluation_key(config, j)
    reference = jax.tree.map(lambda x: x[j], snapshots)
    out[:, j, j] = 0.0
    for i in range(j + 1, num_tasks):
      out[:, i, j] = np.asarray(
        drift(jax.tree.map(lambda x: x[i], snapshots), reference, evaluation, key)
      )
  return out


def _final_drift(drift: np.ndarray) -> float | None:
  """The mean drift of the tasks before the last, in the final row (None for one task)."""
  return None if drift.shape[0] < 2 else float(np.mean(drift[-1, :-1]))


def _listed(matrix: np.ndarray) -> list:
  return [[None if np.isnan(v) else float(v) for v in row] for row in matrix]


def _metrics(quality: np.ndarray, before: np.ndarray) -> dict:
  return cl_metrics.compute_all(np.clip(quality, 0.0, 1.0), np.clip(before, 0.0, 1.0))


def summarise(stream: Stream, config, state: StreamState) -> dict:
  """results.json's stream part: the matrices (mean over seeds and per seed), and `cl.metrics` of
  the quality matrices 1 − EPIC and AUC (EPIC's are turned back into distances: `average_epic`,
  `epic_forgetting`, the rise of each task's distance from its best, and `epic_backward_transfer`,
  the fall of its distance since it was learned, negative = forgetting), and `epic_drift_matrix`
  (`drift_matrix`) with `final_drift`, the final row's mean over the tasks before the last."""
  epic_all, auc_all = np.asarray(state.epic), np.asarray(state.auc)  # [T + 1, S, T]
  drift_all = drift_matrix(stream, config, state.snapshots)  # [S, T, T]

  def metrics(epic, auc, drift):
    q = _metrics(1.0 - epic[1:], 1.0 - epic[0])
    a = _metrics(auc[1:], auc[0])
    return {
      'epic': {
        'average_epic': None if q['average_accuracy'] is None else 1.0 - q['average_accuracy'],
        'epic_forgetting': q['forgetting'],
        'epic_backward_transfer': q['backward_transfer'],
        'epic_forward_transfer': q['forward_transfer'],
        'final_drift': _final_drift(drift),
      },
      'auc': {
        'average_auc': a['average_accuracy'],
        'auc_forgetting': a['forgetting'],
        'auc_backward_transfer': a['backward_transfer'],
        'auc_forward_transfer': a['forward_transfer'],
      },
    }

  mean_epic, mean_auc = epic_all.mean(1), auc_all.mean(1)
  results = {
    'stream': config.stream,
    'tasks': list(stream.names),
    'method': config.method,
    'seeds': stream.seeds,
    'env_steps_per_task': config.loop.num_env_steps,
    'epic_matrix': mean_epic[1:].tolist(),
    'auc_matrix': mean_auc[1:].tolist(),
    'epic_before': mean_epic[0].tolist(),
    'auc_before': mean_auc[0].tolist(),
    'epic_drift_matrix': _listed(drift_all.mean(0)),
    'metrics': metrics(mean_epic, mean_auc, drift_all.mean(0)),
    'per_seed': {
      str(s): {
        'epic_matrix': epic_all[1:, i].tolist(),
        'auc_matrix': auc_all[1:, i].tolist(),
        'epic_before': epic_all[0, i].tolist(),
        'auc_before': auc_all[0, i].tolist(),
        'epic_drift_matrix': _listed(drift_all[i]),
        'metrics': metrics(epic_all[:, i], auc_all[:, i], drift_all[i]),
      }
      for i, s in enumerate(stream.seeds)
    },
  }
  return results
