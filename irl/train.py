"""Training one agent per seed, with metrics, checkpoints and exact resume (scripts/train_irl.py,
scripts/transfer_reward.py, scripts/train_expert.py):

  states = train(workdir, built.env, built.agent, built.loop_config, seeds, env_name=config.env, ...)

`train` writes `metrics.jsonl` and TensorBoard events, checkpoints the whole training state after every
evaluation period (`checkpoints/`) and resumes from the newest checkpoint when it finds one; on a
JAX-native environment the seeds share one jitted computation (`seed_functions`).
"""

from __future__ import annotations

import contextlib
import functools
import os
from typing import Any, Callable

import jax
import numpy as np
from tqdm import tqdm

from cljax import distributed, divergence
from cljax import mesh as mesh_lib
from cljax.checkpoint import Checkpointer
from cljax.timing import RunClock
from cljax.writers import JsonlWriter, MultiWriter, TensorBoardWriter
from envs import registry
from irl import loops, onpolicy


def seed_keys(seeds: list[int]) -> jax.Array:
  return jax.vmap(jax.random.key)(np.asarray(seeds))


def seed_functions(
  env,
  agent: loops.Agent,
  loop_config: loops.LoopConfig,
  expert_buffer=None,
  transform_fn=None,
  mesh=None,
  model_min_size: int | None = None,
  seed_batching: str = 'vmap',
):
  """The jitted, seed-vmapped `init(keys) -> carry` and `period_fn(carry, period) -> (carry,
  metrics)` (one evaluation period) of a JAX-native run. With `mesh`, every output (all of which
  have the seed axis first) is split over its `seed` axis: without `out_shardings` the compiler may
  return leaves it finds cheap to replicate, and the next call would then recompile. On a mesh with
  a `model` axis the agent state's leaves of at least `model_min_size` elements per seed are split
  over it too (`cljax.mesh.state_shardings`), and kept split through the loop.

  `seed_batching` (`cljax.mesh.over_seeds`): 'vmap' batches the seeds (fast; seed i of n equals
  seed i alone to rounding, which training amplifies); 'map' runs one seed's computation per seed, so
  seed i is the same run bit for bit alone, in any group and on a mesh."""
  mesh_lib.check_seed_batching(seed_batching, mesh, splits_data=False)
  if isinstance(agent, onpolicy.OnPolicyRunner):  # PPO-based AIRL / GAIL: rounds of fresh rollouts
    init_one = agent.init
    rounds = loop_config.eval_every // agent.config.steps_per_round
    period_one = lambda carry, p, constraint, buffer=None: agent.train_periods(
      carry, p, num_periods=1, rounds_per_period=rounds, state_constraint=constraint
    )
  else:
    init_one = lambda k: loops.init_carry(env, agent, loop_config, k, transform_fn=transform_fn)
    period_one = lambda carry, p, constraint, buffer=expert_buffer: loops.train_periods(
      env,
      agent,
      loop_config,
      carry,
      p,
      num_periods=1,
      expert_buffer=buffer,
      transform_fn=transform_fn,
      state_constraint=constraint,
    )
  init_out = period_out = state_constraint = None
  if mesh is not None:
    min_size = mesh_lib.DEFAULT_MIN_SIZE if model_min_size is None else model_min_size
    init_out = carry_shardings(jax.eval_shape(init_one, jax.random.key(0)), mesh, min_size)
    period_out = (init_out, mesh_lib.seed_sharding(mesh))
    if mesh_lib.shards_model(mesh):
      state_constraint = lambda state: mesh_lib.constrain_state(state, mesh, min_size)
  if seed_batching == 'map':  # the expert buffer goes in as an argument (over_seeds)
    init = jax.jit(mesh_lib.over_seeds(init_one, (0,), 'map', mesh), out_shardings=init_out)
    period_jit = jax.jit(
      mesh_lib.over_seeds(
        lambda carry, p, buffer: period_one(carry, p, None, buffer), (0, None, None), 'map', mesh
      ),
      out_shardings=period_out,
    )
    return init, lambda carry, p: period_jit(carry, p, expert_buffer)
  vmap = jax.vmap if mesh is None else functools.partial(jax.vmap, spmd_axis_name='seed')
  init = jax.jit(vmap(init_one), out_shardings=init_out)
  period_fn = jax.jit(
    vmap(lambda carry, p: period_one(carry, p, state_constraint), in_axes=(0, None)),
    out_shardings=period_out,
  )
  return init, period_fn


def built_seed_functions(built, mesh=None, **kwargs):
  """`seed_functions` for a run built by `irl.builders.build`: its environment, agent, loop,
  expert buffer (replicated over `mesh`) and preprocessing. `kwargs` are `seed_functions`'s
  `model_min_size` and `seed_batching`."""
  buffer = built.expert_buffer
  if mesh is not None and buffer is not None:
    buffer = mesh_lib.replicate(buffer, mesh)
  return seed_functions(
    built.env,
    built.agent,
    built.loop_config,
    buffer,
    built.parts.prep.transitions,
    mesh=mesh,
    **kwargs,
  )


def carry_shardings(one_seed_carry, mesh, model_min_size: int):
  """The shardings of a `[S]`-seed carry given one seed's (abstract) carry: everything over `seed`,
  and the agent state's large leaves over `model` as well (`cljax.mesh.state_shardings`)."""
  shardings = jax.tree.map(lambda x: mesh_lib.seed_sharding(mesh), one_seed_carry)
  return shardings.replace(
    agent_state=mesh_lib.state_shardings(one_seed_carry.agent_state, mesh, model_min_size)
  )


def train(
  workdir: str,
  env,
  agent: loops.Agent,
  loop_config: loops.LoopConfig,
  seeds: list[int],
  *,
  env_name: str,
  expert_buffer=None,
  transform_fn=None,
  desc: str = '',
  mesh=None,
  after_checkpoint: Callable[[int], None] | None = None,
  model_min_size: int | None = None,
  seed_batching: str = 'vmap',
  keep_checkpoints: int = 2,
  phases=None,
  initial_state_fn: Callable[[Any], Any] | None = None,
  return_carry: bool = False,
) -> list[Any] | tuple[list[Any], Any]:
  """Trains one agent per seed (vmapped on a JAX-native env; one seed on a host env), logging every
  evaluation period to `workdir/metrics.jsonl` and TensorBoard (means over seeds and
  `eval_return_seed<i>`) and checkpointing the whole state (agent, replay buffer, environment states
  and keys) to `workdir/checkpoints/` after logging it. Resumes from the newest checkpoint: exactly
  on JAX-native environments; host environments start fresh episodes. Returns the final agent states,
  one per seed.

  `mesh` (`cljax.mesh`, JAX-native environments only): the whole per-seed carry is split over
  the mesh's `seed` axis (the number of seeds must be a multiple of its size), the agent state's leaves
  of at least `model_min_size` elements over its `model` axis (`seed_functions`), and the expert buffer
  is replicated; checkpoints are restored with the same shardings. `seed_batching` ('vmap' or 'map'):
  how the seeds share the computation (`seed_functions`). The newest `keep_checkpoints` checkpoints
  stay on disk (0: every one). `after_checkpoint(env_steps)` runs
  after every checkpoint (e.g. `cljax.preemption.Guard.check`, which may raise to stop). `phases` (a
  `cljax.timing.Phases`) gets the seconds of 'training' (the evaluation episodes run inside it: in
  the jitted period on JAX-native environments, inside the host loop otherwise) and 'checkpoints'.
  `initial_state_fn` (JAX-native environments) maps the freshly initialised seed-batched agent state
  to the one training starts from (a continual learner's: the reward learner of the task before);
  a resumed run starts from its checkpoint instead. `return_carry` (JAX-native environments):
  return `(states, carry)`, the seed-batched final carry with its replay buffers."""
  timed = phases or (lambda name: contextlib.nullcontext())

  is_jax = registry.is_jax_env(env_name)
  if not is_jax and len(seeds) != 1:
    raise ValueError(f'a host environment ({env_name}) trains one seed per process, got {seeds}')
  if not is_jax and (initial_state_fn is not None or return_carry):
    raise ValueError(
      f'initial_state_fn and return_carry need a JAX-native environment; {env_name} runs on the host'
    )
  if not is_jax and mesh is not None:
    raise ValueError(
      f'a device mesh shards vmapped seeds, which needs a JAX-native environment; '
      f'{env_name} runs on the host'
    )
  keys = seed_keys(seeds)
  if mesh is not None:
    mesh_lib.check_seeds(len(seeds), mesh)
    keys = mesh_lib.shard_leading(keys, mesh)
    if expert_buffer is not None:
      expert_buffer = mesh_lib.replicate(expert_buffer, mesh)
  num_periods = loop_config.num_env_steps // loop_config.eval_every
  primary = distributed.is_primary()  # with several processes only process 0 writes logs
  writer = MultiWriter(
    [
      JsonlWriter(os.path.join(workdir, 'metrics.jsonl')),
      TensorBoardWriter(os.path.join(workdir, 'tensorboard')),
    ]
    if primary
    else []
  )
  bar = tqdm(
    total=loop_config.num_env_steps, unit='step', disable=None if primary else True, desc=desc
  )

  # Wall-clock since the run started (a resumed run adds the seconds before its kill, kept in the
  # checkpoints' metadata) and the environment steps per second (per seed) since the last record.
  clock = RunClock()
  last_logged = {'env_steps': 0}

  def resume_clock(ckpt_meta):
    clock.resumed(ckpt_meta.get('wall_s', 0.0))
    last_logged['env_steps'] = ckpt_meta['env_steps']

  def meta(env_steps):
    return {'env_steps': env_steps, 'wall_s': clock.elapsed()}

  def log(env_steps, metrics):
    """metrics: name -> [num_seeds] values of one period."""
    scalars = {
      k: float(np.nanmean(v)) if not np.all(np.isnan(v)) else float('nan')
      for k, v in metrics.items()
      if k != 'env_steps'
    }
    scalars['time/wall_s'] = clock.elapsed()
    scalars['time/env_steps_per_s'] = (env_steps - last_logged['env_steps']) / clock.lap()
    last_logged['env_steps'] = env_steps
    scalars.update(
      {f'eval_return_seed{s}': float(v) for s, v in zip(seeds, metrics['eval_return'])}
    )
    writer.write_scalars(env_steps, scalars)
    bar.n = env_steps
    bar.set_postfix(eval_return=f'{scalars["eval_return"]:.1f}')
    bar.refresh()
    if bar.disable and primary:  # no terminal (a log file, a SLURM job): a plain line per period
      print(
        f'{desc + ": " if desc else ""}{env_steps:,} environment steps, evaluation return '
        f'{scalars["eval_return"]:.1f}',
        flush=True,
      )

  def check_finite(env_steps, metrics, params_finite):
    """The divergence guard, once per period before its checkpoint (cljax/divergence.py):
    the agent's parameters, and the period's losses (NaN there also means "not computed")."""
    divergence.check(
      f'{env_steps:,} environment steps',
      metrics,
      params_finite,
      seeds,
      skip=('eval_return', 'train_return'),
      nan_is_missing=True,
    )

  try:
    with Checkpointer(
      os.path.join(workdir, 'checkpoints'), max_to_keep=keep_checkpoints or None
    ) as ckpt:
      warn = print if primary else (lambda message: None)
      if is_jax:
        init, period_fn = seed_functions(
          env, agent, loop_config, expert_buffer, transform_fn, mesh, model_min_size, seed_batching
        )
        # A damaged newest checkpoint is reported and set aside; the one before it is used.
        with timed('checkpoints'):  # init's out_shardings
          restored = ckpt.restore_newest(jax.eval_shape(init, keys), warn)
        if restored is None:
          with timed('training'):
            carry, first = init(keys), 0
            if initial_state_fn is not None:
              carry = carry.replace(agent_state=initial_state_fn(carry.agent_state))
            carry = jax.block_until_ready(carry)
        else:
          _, carry, ckpt_meta = restored
          resume_clock(ckpt_meta)
          first = ckpt_meta['env_steps'] // loop_config.eval_every
          if primary:
            print(f'Resuming {workdir} at {ckpt_meta["env_steps"]} environment steps.')
        finite_fn = jax.jit(jax.vmap(divergence.all_finite))
        for period in range(first, num_periods):
          with timed('training'):  # to_host waits for the period
            carry, metrics = period_fn(carry, period)
            host_metrics = {k: distributed.to_host(v)[:, 0] for k, v in metrics.items()}
          env_steps = (period + 1) * loop_config.eval_every
          # Log first: a kill between the two repeats this period's record (read_curve keeps the
          # last), while the other order could lose it.
          log(env_steps, host_metrics)
          check_finite(env_steps, host_metrics, distributed.to_host(finite_fn(carry.agent_state)))
          with timed('checkpoints'):
            ckpt.save(env_steps, carry, meta(env_steps))
          if after_checkpoint is not None:
            after_checkpoint(env_steps)
        states = [jax.tree.map(lambda x: x[i], carry.agent_state) for i in range(len(seeds))]
      else:
        eval_env = registry.make(
          env_name, num_envs=loop_config.eval_episodes, seed=seeds[0] + 10_000
        )
        initial = None
        is_onpolicy = isinstance(agent, onpolicy.OnPolicyRunner)
        abstract = (
          onpolicy.abstract_host_carry(agent)
          if is_onpolicy
          else loops.abstract_host_carry(env.spec, agent, loop_config, transform_fn)
        )
        with timed('checkpoints'):
          restored = ckpt.restore_newest(abstract, warn)
        if restored is not None:
          _, initial, ckpt_meta = restored
          resume_clock(ckpt_meta)
          print(f'Resuming {workdir} at {ckpt_meta["env_steps"]} environment steps.')
        pending = {}

        finite_fn = jax.jit(divergence.all_finite)

        def checkpoint_fn(env_steps, carry):
          # Before saving: a kill between the two repeats this record, the other order could lose it.
          host_metrics = {k: np.asarray([v]) for k, v in pending.pop(env_steps).items()}
          log(env_steps, host_metrics)
          check_finite(env_steps, host_metrics, np.asarray([finite_fn(carry.agent_state)]))
          with timed('checkpoints'):  # inside 'training': counted here only
            ckpt.save(env_steps, carry, meta(env_steps))
          if after_checkpoint is not None:
            after_checkpoint(env_steps)

        progress_fn = lambda s, m: pending.__setitem__(s, m)
        try:
          with timed('training'):  # the host loop, its evaluations and checkpoints
            if is_onpolicy:  # PPO rounds on the Gymnasium vector environment
              carry = onpolicy.train_host(
                env,
                agent,
                keys[0],
                num_env_steps=loop_config.num_env_steps,
                eval_every=loop_config.eval_every,
                eval_env=eval_env,
                progress_fn=progress_fn,
                checkpoint_fn=checkpoint_fn,
                initial=initial,
              )
            else:
              carry, _ = loops.train_host(
                env,
                agent,
                loop_config,
                keys[0],
                expert_buffer=expert_buffer,
                transform_fn=transform_fn,
                eval_env=eval_env,
                progress_fn=progress_fn,
                checkpoint_fn=checkpoint_fn,
                initial=initial,
              )
        finally:
          eval_env.close()
        states = [carry.agent_state]
  finally:
    bar.close()
    writer.close()
  return (states, carry) if return_carry else states
