"""Function-space methods on a small memory of each past task: FROMP, FROMP-L2, K-priors, EWC+FR+replay.

All four keep, for every finished task s, a memory M_s of `memory_per_task` inputs with their head mask
and the old model's predictions on them, and add a term on the current outputs at those points.

- **FROMP** (Pan, Swaroop, Immer, Eschenhagen, Turner & Khan, NeurIPS 2020, eq. 7): the memorable points
  are the top-λ_i examples per class, λ_i = Σ_k p_ik(1 − p_ik); the regulariser is
      (τ / 2N) Σ_s Σ_c (m_{s,c}(θ) − m_{s,c}^old)ᵀ K_{s,c}⁻¹ (m_{s,c}(θ) − m_{s,c}^old),
  with m the softmax outputs at the memory points, m^old those of the previous model θ_{t−1}, and
  K_{s,c} = J_c Σ J_cᵀ the DNN2GP kernel of class c at θ_{t−1} of the softmax outputs (J_c = ∂m_c/∂θ =
  (Λ J)_c; `cl.dual.kernel`), Σ the diagonal posterior covariance 1 / (δ₀ + Σ_{r<t} diag GGN_r), the GGN
  of each task taken at the end of that task on all its training data.
- **FROMP-L2**: the same with K = I.
- **K-priors** (Khan & Swaroop, NeurIPS 2021): τ Σ_s mean_{i∈M_s} CE(σ(f_i(θ_{t−1})), f_i(θ)) +
  (δ/2)‖θ − θ_{t−1}‖². With equal task sizes, the soft-label term weights each past task like the
  current one, i.e. each memory point stands for N_s / |M_s| old examples.
- **EWC + FR + replay** (Daxberger et al., TMLR 2023): the past gradient Σ_i J_iᵀ(σ(f_i) − y_i) is split
  into Σ J_iᵀ(σ(f_i(θ)) − σ(f_i(θ_old))) — functional regularisation on M₁ (a soft-label term) — plus
  Σ J_iᵀ(σ(f_i(θ_old)) − y_i), the residual, which is constant in θ and enters as the linear
  "error-correction" term f_i(θ)ᵀ(σ(f_i(θ_old)) − y_i) on M₂ ⊂ M₁ (the first `m2_fraction` of each
  memory); online EWC (Laplace with the diagonal Fisher, γ = 1) covers the rest of the old data. On M₂
  with temperature 1 and τ equal to the replay weight, FR + correction has exactly the replay gradient.
  Memories are chosen uniformly at random per class, as in the paper's code. Departure: the Fisher is
  estimated on a random subset of all the task's examples, memory included (the paper's code excludes
  the last memory set).

**Targets of the previous model** (`targets='previous'`, the default of all four): at the end of each
task the stored predictions of *every* past memory, and FROMP's per-class K⁻¹ under the accumulated
precision, are recomputed at the model that just finished, θ_{t−1} for the next task — FROMP's eq. 7
uses m_{t−1}(x) and the kernel of μ_{t−1}, Σ_{t−1} for all past tasks (its code recomputes them at each
task boundary), and K-priors needs the predictions of θ_{t−1} on the whole memory to reconstruct the past
gradient at θ_{t−1}. `targets='task_end'` keeps each slot's predictions and kernel from the end of its own
task (the two agree while one task lies in the past).

N in FROMP's scaling is the training-set size of the last finished task (our streams have equal-sized
tasks). Past tasks are summed every step (`tasks_per_step='all'`, the papers' choice) or one past task
is drawn per step and its term scaled by the number of past tasks (`'one'`: an unbiased estimate whose
cost does not grow with the number of tasks). `'all_masked'` is `'all'` in fixed shapes: every slot is
evaluated each step and the slots of unfinished tasks are weighted 0, so the whole stream compiles one
epoch function (the same loss as `'all'`, at the cost of the last task's memory from the first task on).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from cl import dual
from cl.hparams import METHOD_DEFAULTS
from cl.methods.base import Method, TaskData, no_after_step
from cl.methods.ewc import diagonal_fisher
from cl.models import masked_logits

SELECTION_RULES = ('lambda_descend', 'lambda_ascend', 'random', 'sensitivity')
TASKS_PER_STEP = ('all', 'one', 'all_masked')
TARGETS = ('previous', 'task_end')

# The keyword defaults below (and every CL config's method sections) come from this one place.
_FROMP, _KPRIORS, _EWC_FR_REPLAY = (
  METHOD_DEFAULTS[name] for name in ('fromp', 'kpriors', 'ewc_fr_replay')
)


def _check_targets(targets: str) -> None:
  if targets not in TARGETS:
    raise ValueError(f'targets must be one of {list(TARGETS)}, got {targets!r}')


class TaskMemory(NamedTuple):
  x: jax.Array  # [T, M, ...]
  y: jax.Array  # [T, M] int32
  mask: jax.Array  # [T, M, C] bool head masks
  valid: jax.Array  # [T, M] bool
  targets: jax.Array  # [T, M, C] old model's (tempered) softmax
  num_tasks: jax.Array  # [] int32 finished tasks stored


def init_memory(num_tasks, memory_per_task, input_shape, num_outputs) -> TaskMemory:
  t, m, c = num_tasks, memory_per_task, num_outputs
  return TaskMemory(
    x=jnp.zeros((t, m) + tuple(input_shape), jnp.float32),
    y=jnp.zeros((t, m), jnp.int32),
    mask=jnp.zeros((t, m, c), bool),
    valid=jnp.zeros((t, m), bool),
    targets=jnp.zeros((t, m, c), jnp.float32),
    num_tasks=jnp.zeros((), jnp.int32),
  )


def select_points(
  apply_fn,
  params,
  data: TaskData,
  key,
  *,
  num_outputs,
  memory_per_task,
  classes_per_task,
  rule,
  variance=None,
):
  """Indices [memory_per_task] (and validity) of a class-balanced memory of this task's examples."""
  per_class = max(memory_per_task // classes_per_task, 1)
  head = data.mask[0]
  if rule == 'random':
    scores = jnp.zeros(data.y.shape, jnp.float32)
  elif rule == 'sensitivity':
    scores = dual.sensitivity_scores(apply_fn, params, data.x, data.y, variance, head)
  else:
    logits = jax.lax.map(lambda xb: apply_fn(params, xb[None])[0], data.x, batch_size=512)
    scores = dual.lambda_scores(logits, head)
  idx, valid = dual.select_memory(
    key, scores, data.y, num_classes=num_outputs, num_per_class=per_class, rule=rule
  )
  idx, valid = idx.reshape(-1), valid.reshape(-1)
  # Compact the valid slots (classes present in this task) to the front and keep memory_per_task.
  order = jnp.argsort(~valid, stable=True)[:memory_per_task]
  return idx[order], valid[order]


def store(memory: TaskMemory, slot, data: TaskData, idx, valid, targets) -> TaskMemory:
  put = lambda stack, x: jax.lax.dynamic_update_index_in_dim(stack, x, slot, axis=0)
  return TaskMemory(
    x=put(memory.x, data.x[idx]),
    y=put(memory.y, data.y[idx]),
    mask=put(memory.mask, data.mask[idx]),
    valid=put(memory.valid, valid),
    targets=put(memory.targets, targets),
    num_tasks=memory.num_tasks + 1,
  )


def memory_logits(apply_fn, params, mem: TaskMemory):
  """Logits at every memory point of the chosen task slots, flattened to [k·M, C], with their head masks
  and stored targets flattened alike."""
  k, m, c = mem.targets.shape
  x = mem.x.reshape((k * m,) + mem.x.shape[2:])
  return apply_fn(params, x), mem.mask.reshape(k * m, c), mem.targets.reshape(k * m, c)


def softmax_probs(apply_fn, params, x, mask, temperature=1.0):
  return jax.nn.softmax(masked_logits(apply_fn(params, x), mask) / temperature)


def refresh_targets(apply_fn, params, memory: TaskMemory, temperature=1.0) -> TaskMemory:
  """`memory` with the targets of every stored slot (those below `memory.num_tasks`) recomputed at
  `params`: the (tempered) softmax under each point's own head mask. Unused slots get zeros."""
  t, m, c = memory.targets.shape
  x = memory.x.reshape((t * m,) + memory.x.shape[2:])
  probs = softmax_probs(apply_fn, params, x, memory.mask.reshape(t * m, c), temperature)
  stored = (jnp.arange(t) < memory.num_tasks)[:, None, None]
  return memory._replace(targets=jnp.where(stored, probs.reshape(t, m, c), 0.0))


class MemorySpec(NamedTuple):
  """How a functional-memory method fills its memory: slots, outputs, points per task, the task's
  classes, the selection rule and which model the stored targets come from."""

  num_tasks: int
  num_outputs: int
  memory_per_task: int
  classes_per_task: int
  rule: str
  targets: str


def remember(
  apply_fn,
  spec: MemorySpec,
  memory: TaskMemory,
  params,
  data: TaskData,
  key,
  *,
  temperature=1.0,
  variance=None,
) -> TaskMemory:
  """`memory` with this task's points (`select_points`) in the next slot, their (tempered) soft
  labels at `params` (θ_t), and, with targets 'previous', every stored slot's labels recomputed at
  `params` (`refresh_targets`): what the functional-memory methods do at a task boundary."""
  slot = jnp.minimum(memory.num_tasks, spec.num_tasks - 1)
  idx, valid = select_points(
    apply_fn,
    params,
    data,
    key,
    num_outputs=spec.num_outputs,
    memory_per_task=spec.memory_per_task,
    classes_per_task=spec.classes_per_task,
    rule=spec.rule,
    variance=variance,
  )
  probs = softmax_probs(apply_fn, params, data.x[idx], data.mask[idx], temperature)
  memory = store(memory, slot, data, idx, valid, probs)
  if spec.targets == 'previous':
    memory = refresh_targets(apply_fn, params, memory, temperature)
  return memory


def past_tasks(memory: TaskMemory, key, num_past, tasks_per_step: str):
  """This step's memories and their weights in the estimate of the sum over past tasks.

  'all': `num_past` is static (the trainer compiles one epoch function per task), so only the
  finished tasks' memories are evaluated: the first `num_past` slots with weight 1 each.
  'one': `num_past` is None and the count is the memory's own, a traced value, so the whole stream
  compiles one epoch function: a single slot drawn uniformly among the finished tasks, weighted by
  their count. Before any task has finished that weight is 0 and the drawn slot is empty; its head
  masks are opened so that every term stays finite and the weight zeroes its value and gradient.
  'all_masked': `num_past` is None; every slot, weighted 1 if its task has finished and 0 if not (empty
  slots' head masks opened as for 'one'), so the shapes do not change with the task.
  Returns `(memory restricted to the chosen slots, weights [k], slot index or None)`."""
  if tasks_per_step == 'all':
    take = lambda a: a[:num_past]
    chosen = None
    weights = jnp.ones((num_past,), jnp.float32)
  elif tasks_per_step == 'all_masked':
    slots = memory.valid.shape[0]
    take = lambda a: a
    chosen = None
    weights = (jnp.arange(slots) < memory.num_tasks).astype(jnp.float32)
  else:
    count = memory.num_tasks
    chosen = jax.random.randint(key, (), 0, jnp.maximum(count, 1))
    take = lambda a: jax.lax.dynamic_index_in_dim(a, chosen, axis=0, keepdims=True)
    weights = jnp.full((1,), count, jnp.float32)
  mem = TaskMemory(*(take(a) for a in memory[:-1]), num_tasks=memory.num_tasks)
  if tasks_per_step == 'one':
    mem = mem._replace(mask=jnp.where(memory.num_tasks > 0, mem.mask, True))
  elif tasks_per_step == 'all_masked':
    finished = jnp.arange(mem.mask.shape[0]) < memory.num_tasks
    mem = mem._replace(
      mask=jnp.where(finished.reshape((-1,) + (1,) * (mem.mask.ndim - 1)), mem.mask, True)
    )
  return mem, weights, chosen


def _no_past_task(num_past) -> bool:
  """Whether a static task count says that no task has finished (the loss is then 0 without any
  work); None, the 'one' mode's traced count, decides inside the loss."""
  return num_past is not None and not num_past


def _memory_method(init, loss, consolidate, tasks_per_step) -> Method:
  """A memory method's `Method`: nothing after a step; with `tasks_per_step='all'` the loss sums a
  static number of past tasks (one epoch compile per task), with 'one' it reads the memory's count."""
  return Method(
    init=init,
    loss=loss,
    after_step=no_after_step,
    consolidate=consolidate,
    static_task_count=tasks_per_step == 'all',
  )


class FrompState(NamedTuple):
  memory: TaskMemory
  kernel_inv: jax.Array  # [T, C, M, M]
  precision: object  # params pytree: δ₀ + Σ_s diag GGN_s
  task_size: jax.Array  # [] float32, N of the last finished task


def fromp(
  apply_fn,
  *,
  input_shape,
  num_outputs,
  num_tasks,
  classes_per_task,
  memory_per_task=_FROMP['memory_per_task'],
  tau=_FROMP['tau'],
  prior_precision=_FROMP['prior_precision'],
  jitter=_FROMP['jitter'],
  relative_jitter=_FROMP['relative_jitter'],
  selection=_FROMP['selection'],
  tasks_per_step=_FROMP['tasks_per_step'],
  use_kernel=True,
  ggn_num_examples=_FROMP['ggn_num_examples'],
  ggn_chunk_size=64,
  targets=_FROMP['targets'],
) -> Method:
  """FROMP (`use_kernel=True`) or FROMP-L2 (`use_kernel=False`).

  `targets='previous'` (module docstring) recomputes, after each task, every past slot's predictions
  and its per-class K⁻¹ at the parameters that finished the task, under the precision accumulated
  over all finished tasks; `'task_end'` computes them once, for the new slot only.

  The task's GGN is estimated on a random subset of `ggn_num_examples` training examples scaled by
  N / n (0 = all examples, exact; the estimate only enters the kernel's covariance).

  Each per-class kernel gets `jitter`·I (FROMP's absolute ε) plus `relative_jitter`·mean(diag K)·I
  before it is inverted. The second term is ours: K's eigenvalues span many decades (directions the
  posterior pins down have eigenvalues near 0), so with an absolute ε alone K⁻¹ is dominated by 1/ε
  and its float32 inverse is inaccurate; a relative floor bounds the condition number by about
  1 / relative_jitter. The inverse is taken by a symmetric eigendecomposition."""
  _check_targets(targets)
  m, c = memory_per_task, num_outputs
  spec = MemorySpec(num_tasks, c, m, classes_per_task, selection, targets)

  def kernel_inverse(params, variance, x_mem, mask_mem, valid):
    """[C, M, M] inverse of the jittered per-class kernel of the softmax outputs at `params`."""
    if not use_kernel:
      return jnp.broadcast_to(jnp.eye(m), (c, m, m))
    # The kernel of the softmax outputs m(θ) (FROMP's linearisation: ∂m/∂θ = Λ J), per class.
    kern = dual.kernel(apply_fn, params, x_mem, variance, mask_mem, outputs='probs')  # [C, M, M]
    both = valid[:, None] & valid[None, :]
    # Invalid slots get an identity block so the inverse exists; their diff is zero anyway.
    kern = jnp.where(both, kern, 0.0)
    scale = jnp.sum(jnp.diagonal(kern, axis1=1, axis2=2), -1) / jnp.maximum(jnp.sum(valid), 1)
    eps = jitter + relative_jitter * scale[:, None, None]  # [C, 1, 1]
    kern = kern + jnp.eye(m) * jnp.where(valid, eps, 1.0)
    evals, evecs = jnp.linalg.eigh(kern)
    return jnp.einsum('cij,cj,ckj->cik', evecs, 1.0 / evals, evecs)

  def init(params):
    return FrompState(
      memory=init_memory(num_tasks, m, input_shape, c),
      kernel_inv=jnp.zeros((num_tasks, c, m, m), jnp.float32),
      precision=jax.tree.map(lambda p: jnp.full_like(p, prior_precision), params),
      task_size=jnp.ones((), jnp.float32),
    )

  def loss(params, state, key, num_past):
    if _no_past_task(num_past):
      return jnp.zeros((), jnp.float32)
    mem, w, chosen = past_tasks(state.memory, key, num_past, tasks_per_step)
    kinv = (
      state.kernel_inv[:num_past]
      if chosen is None
      else jax.lax.dynamic_index_in_dim(state.kernel_inv, chosen, 0)
    )
    k = mem.x.shape[0]
    logits, mask, _ = memory_logits(apply_fn, params, mem)
    probs = jax.nn.softmax(masked_logits(logits, mask)).reshape(k, m, c)
    diff = (probs - mem.targets) * mem.valid[..., None]  # [k, M, C]
    diff = jnp.swapaxes(diff, 1, 2)  # [k, C, M]
    if use_kernel:
      quad = jnp.einsum('kci,kcij,kcj->k', diff, kinv, diff)
    else:
      quad = jnp.sum(jnp.square(diff), axis=(1, 2))
    return 0.5 * tau * jnp.sum(w * quad) / state.task_size

  def consolidate(state, params, data, key, opt_state=None):
    del opt_state
    slot = jnp.minimum(state.memory.num_tasks, num_tasks - 1)
    head = data.mask[0]
    ggn_key, key = jax.random.split(key)
    n_total = data.y.shape[0]
    n = min(ggn_num_examples or n_total, n_total)
    subset = jax.random.permutation(ggn_key, n_total)[:n]
    ggn = dual.diagonal_ggn(apply_fn, params, data.x[subset], head, chunk_size=ggn_chunk_size)
    precision = jax.tree.map(lambda p, g: p + g * (n_total / n), state.precision, ggn)
    variance = jax.tree.map(lambda p: 1.0 / p, precision)
    memory = remember(apply_fn, spec, state.memory, params, data, key, variance=variance)

    def refresh_kernel(s, kinv_all):  # slot s's K⁻¹ at θ_t and Σ_t, on its stored points
      take = lambda a: jax.lax.dynamic_index_in_dim(a, s, axis=0, keepdims=False)
      kinv = kernel_inverse(params, variance, take(memory.x), take(memory.mask), take(memory.valid))
      return jax.lax.dynamic_update_index_in_dim(kinv_all, kinv, s, axis=0)

    if targets == 'previous' and use_kernel:
      # Every stored slot (a dynamic count, so a while loop: one kernel per past task).
      stored = jnp.minimum(memory.num_tasks, num_tasks)
      kernel_inv = jax.lax.fori_loop(0, stored, refresh_kernel, state.kernel_inv)
    else:  # the new slot only
      kernel_inv = refresh_kernel(slot, state.kernel_inv)
    return FrompState(
      memory=memory,
      kernel_inv=kernel_inv,
      precision=precision,
      task_size=jnp.asarray(data.y.shape[0], jnp.float32),
    )

  return _memory_method(init, loss, consolidate, tasks_per_step)


class KPriorState(NamedTuple):
  memory: TaskMemory
  anchor: object  # θ_{t−1}


def kpriors(
  apply_fn,
  *,
  input_shape,
  num_outputs,
  num_tasks,
  classes_per_task,
  memory_per_task=_KPRIORS['memory_per_task'],
  tau=_KPRIORS['tau'],
  delta=_KPRIORS['delta'],
  selection=_KPRIORS['selection'],
  tasks_per_step=_KPRIORS['tasks_per_step'],
  targets=_KPRIORS['targets'],
) -> Method:
  """K-priors (module docstring); `targets` as for `fromp`: 'previous' relabels the whole memory
  with θ_{t−1} at each task boundary, the model the weight term is anchored at."""
  _check_targets(targets)
  m, c = memory_per_task, num_outputs
  spec = MemorySpec(num_tasks, c, m, classes_per_task, selection, targets)

  def init(params):
    return KPriorState(memory=init_memory(num_tasks, m, input_shape, c), anchor=params)

  def loss(params, state, key, num_past):
    if _no_past_task(num_past):
      return jnp.zeros((), jnp.float32)
    mem, w, _ = past_tasks(state.memory, key, num_past, tasks_per_step)
    k = mem.x.shape[0]
    logits, mask, targets = memory_logits(apply_fn, params, mem)
    ce = dual.soft_label_cross_entropy(logits, targets, mask).reshape(k, m)
    valid = mem.valid.astype(jnp.float32)
    per_task = jnp.sum(ce * valid, 1) / jnp.maximum(jnp.sum(valid, 1), 1.0)
    weight_term = sum(
      jax.tree.leaves(jax.tree.map(lambda p, a: jnp.sum(jnp.square(p - a)), params, state.anchor))
    )
    started = (state.memory.num_tasks > 0).astype(jnp.float32)  # 'one' before task 2: no term
    return tau * jnp.sum(w * per_task) + 0.5 * delta * weight_term * started

  def consolidate(state, params, data, key, opt_state=None):
    del opt_state
    memory = remember(apply_fn, spec, state.memory, params, data, key)
    return KPriorState(memory=memory, anchor=params)

  return _memory_method(init, loss, consolidate, tasks_per_step)


class EwcFrReplayState(NamedTuple):
  memory: TaskMemory
  anchor: object
  fisher: object


def ewc_fr_replay(
  apply_fn,
  *,
  input_shape,
  num_outputs,
  num_tasks,
  classes_per_task,
  memory_per_task=_EWC_FR_REPLAY['memory_per_task'],
  ewc_lambda=_EWC_FR_REPLAY['ewc_lambda'],
  tau=_EWC_FR_REPLAY['tau'],
  replay_weight=_EWC_FR_REPLAY['replay_weight'],
  m2_fraction=_EWC_FR_REPLAY['m2_fraction'],
  temperature=_EWC_FR_REPLAY['temperature'],
  fisher_num_examples=_EWC_FR_REPLAY['fisher_num_examples'],
  fisher_type=_EWC_FR_REPLAY['fisher_type'],
  selection=_EWC_FR_REPLAY['selection'],
  tasks_per_step=_EWC_FR_REPLAY['tasks_per_step'],
  targets=_EWC_FR_REPLAY['targets'],
) -> Method:
  """EWC + FR + replay (module docstring); `targets` as for `fromp`: 'previous' recomputes the soft
  labels (and so the correction term's residuals) of every memory at θ_old = θ_{t−1}, the point the
  gradient split of the module docstring is taken at."""
  _check_targets(targets)
  m, c = memory_per_task, num_outputs
  spec = MemorySpec(num_tasks, c, m, classes_per_task, selection, targets)
  m2 = int(round(m * m2_fraction))

  def init(params):
    zeros = jax.tree.map(jnp.zeros_like, params)
    return EwcFrReplayState(
      memory=init_memory(num_tasks, m, input_shape, c), anchor=zeros, fisher=zeros
    )

  def loss(params, state, key, num_past):
    if _no_past_task(num_past):
      return jnp.zeros((), jnp.float32)
    mem, w, _ = past_tasks(state.memory, key, num_past, tasks_per_step)
    k = mem.x.shape[0]
    logits, flat_mask, targets = memory_logits(apply_fn, params, mem)
    fr = dual.soft_label_cross_entropy(logits / temperature, targets, flat_mask).reshape(k, m)
    onehot = jax.nn.one_hot(mem.y.reshape(k * m), c)
    residual = (targets - onehot) * flat_mask
    correction = jnp.sum(jnp.where(flat_mask, logits, 0.0) * residual, -1).reshape(k, m)
    valid = mem.valid.astype(jnp.float32)
    in_m2 = valid * (jnp.arange(m) < m2)
    # Both terms are averaged over M₁ so that each point of M₂ carries the same weight in both: then
    # FR + correction on M₂ is exactly the cross-entropy with the true labels (bounded below); a larger
    # weight on the linear correction term alone would be unbounded.
    count = jnp.maximum(jnp.sum(valid, 1), 1.0)
    fr_term = jnp.sum(fr * valid, 1) / count
    corr_term = jnp.sum(correction * in_m2, 1) / count
    ewc_term = sum(
      jax.tree.leaves(
        jax.tree.map(
          lambda p, a, f: jnp.sum(f * jnp.square(p - a)), params, state.anchor, state.fisher
        )
      )
    )
    started = (state.memory.num_tasks > 0).astype(jnp.float32)  # 'one' before task 2: no term
    memory_terms = jnp.sum(w * (tau * fr_term + replay_weight * corr_term))
    return memory_terms + 0.5 * ewc_lambda * ewc_term * started

  def consolidate(state, params, data, key, opt_state=None):
    del opt_state
    select_key, fisher_key = jax.random.split(key)
    memory = remember(
      apply_fn, spec, state.memory, params, data, select_key, temperature=temperature
    )
    fisher = diagonal_fisher(
      apply_fn, params, data, fisher_key, num_examples=fisher_num_examples, fisher_type=fisher_type
    )
    return EwcFrReplayState(
      memory=memory, anchor=params, fisher=jax.tree.map(jnp.add, state.fisher, fisher)
    )

  return _memory_method(init, loss, consolidate, tasks_per_step)
