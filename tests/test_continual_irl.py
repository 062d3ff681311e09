"""irl.continual: the discriminator as a two-class classifier for cl.methods, and the reward AUC."""

import itertools
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from cl import methods
from cljax.config import load_config
from irl import continual, continual_train, epic
from irl.discriminator import DiscriminatorConfig, make_discriminator
from irl.replay import Transition

OBS, ACT = 3, 2
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def transitions(key, n, shift=0.0):
  k1, k2, k3 = jax.random.split(key, 3)
  obs = jax.random.normal(k1, (n, OBS)) + shift
  return Transition(
    obs=obs,
    action=jax.random.normal(k2, (n, ACT)),
    reward=jnp.zeros(n),
    next_obs=obs + 0.3 * jax.random.normal(k3, (n, OBS)),
    terminated=jnp.zeros(n, bool),
    truncated=jnp.zeros(n, bool),
  )


def opirl_discriminator(**kwargs):
  return make_discriminator(OBS, ACT, DiscriminatorConfig(kind='airl', use_log_pi=False, **kwargs))


def test_the_two_class_cross_entropy_is_the_discriminators_binary_cross_entropy():
  disc = opirl_discriminator(gp_coeff=0.0)
  params = disc.init(jax.random.key(0)).params
  expert, policy = transitions(jax.random.key(1), 16, 1.0), transitions(jax.random.key(2), 16)
  apply_fn = continual.classifier_apply(disc)
  data = continual.task_data(expert, policy, task_index=0)
  logits = apply_fn(params, data.x)
  ce = methods.cross_entropy(logits, data.y, data.mask)
  bce, _ = disc.loss(params, expert, policy, jax.random.key(3))
  # cross_entropy averages over all 32 rows, the discriminator each class's 16: half of its sum.
  np.testing.assert_allclose(2.0 * ce, bce, rtol=1e-6)
  np.testing.assert_allclose(
    jax.nn.softmax(logits)[:16, continual.EXPERT_LABEL],
    jax.nn.sigmoid(disc.logits(params, expert.obs, expert.action, expert.next_obs)),
    rtol=1e-6,
  )


def test_kpriors_on_the_discriminator_reconstructs_the_past_gradient():
  """The K-priors identity (tests/test_previous_model_targets.py) on the binary classifier: with linear
  r and h, OPIRL's logit f = r(s, a) + γ h(s') − h(s) is linear in its parameters, a GLM, and a memory
  that holds every past transition with the previous discriminator's σ(f) as targets gives exactly the
  gradient of the past tasks' cross-entropy plus (δ/2)‖θ‖², at any θ, when θ_old minimises it."""
  disc = opirl_discriminator(reward_hidden=(), shaping_hidden=())
  apply_fn = continual.classifier_apply(disc)
  delta = 0.5
  data = [
    continual.task_data(
      transitions(jax.random.key(10 + t), 4, 1.0), transitions(jax.random.key(20 + t), 4), t
    )
    for t in range(2)
  ]

  def past_objective(params):
    total = sum(methods.cross_entropy(apply_fn(params, d.x), d.y, d.mask) for d in data)
    return total + 0.5 * delta * sum(jnp.sum(p**2) for p in jax.tree.leaves(params))

  flat, unravel = ravel_pytree(disc.init(jax.random.key(0)).params)
  objective = lambda f: past_objective(unravel(f))  # noqa: E731
  for _ in range(20):  # Newton's method: the objective is strictly convex
    flat = flat - jnp.linalg.solve(jax.hessian(objective)(flat), jax.grad(objective)(flat))
  theta_old = unravel(flat)
  assert float(jnp.max(jnp.abs(jax.grad(objective)(flat)))) < 1e-5

  theta0 = disc.init(jax.random.key(5)).params
  theta = jax.tree.map(lambda p: p + 0.3 * jnp.sin(jnp.arange(p.size).reshape(p.shape)), theta_old)
  want = jax.grad(objective)(ravel_pytree(theta)[0])

  def kprior_gradient(memory_per_task):
    """The K-prior's gradient at θ after the two tasks, and whether its memory holds them whole."""
    method = methods.kpriors(
      apply_fn,
      input_shape=(2 * OBS + ACT,),
      num_outputs=2,
      num_tasks=3,
      classes_per_task=2,
      memory_per_task=memory_per_task,
      tau=1.0,
      delta=delta,
      selection='lambda_descend',
      targets='previous',
    )
    state = method.init(theta0)
    state = method.consolidate(state, theta0, data[0], jax.random.key(1))
    state = method.consolidate(state, theta_old, data[1], jax.random.key(2))
    grad = ravel_pytree(jax.grad(method.loss)(theta, state, jax.random.key(0), 2))[0]
    return grad, bool(jnp.all(state.memory.valid[:2]))

  got, whole = kprior_gradient(8)
  assert whole  # every past transition is in the memory
  np.testing.assert_allclose(got, want, atol=2e-5)
  # The mirror: memories that hold half of each task's transitions miss the identity.
  missed, _ = kprior_gradient(4)
  assert float(jnp.max(jnp.abs(missed - want))) > 1e-2


def test_reward_drift_sees_a_new_r_but_not_a_new_shaping_h():
  """The drift between two discriminators is EPIC between their policy rewards f = r + γh' − h: a
  new h alone is potential shaping (distance 0 when EPIC's discount is the discriminator's), a new r
  moves the reward (the mirror)."""
  disc = opirl_discriminator()
  gamma = disc.config.gamma_d
  a, b = (disc.init(jax.random.key(k)).params for k in (0, 1))
  rows = transitions(jax.random.key(2), 300)
  samples = transitions(jax.random.key(3), 64)
  evaluation = continual.TaskEvaluation(
    coverage=epic.Coverage(rows.obs, rows.action, rows.next_obs, samples.obs, samples.action),
    expert=rows,
    random=rows,
  )
  drift = lambda p, q: float(  # noqa: E731
    continual.reward_drift(disc, p, q, evaluation, gamma, jax.random.key(4))
  )
  assert drift(a, a) < 1e-3
  assert drift(a, a._replace(shaping=b.shaping)) < 1e-3
  assert drift(a, a._replace(reward=b.reward)) > 0.05


def test_an_auc_rejects_log_pi_and_matches_counting_pairs():
  with pytest.raises(ValueError, match='use_log_pi'):
    continual.classifier_apply(make_discriminator(OBS, ACT, DiscriminatorConfig(use_log_pi=True)))
  assert continual.auc([2.0, 3.0], [0.0, 1.0]) == 1.0
  assert continual.auc([0.0, 1.0], [2.0, 3.0]) == 0.0
  assert continual.auc([1.0, 1.0], [1.0]) == 0.5
  rng = np.random.default_rng(0)
  pos, neg = rng.integers(0, 5, 40).astype(float), rng.integers(0, 5, 30).astype(float)
  pairs = [1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg)]
  assert continual.auc(pos, neg) == pytest.approx(np.mean(pairs))
  with pytest.raises(ValueError, match='both classes'):
    continual.auc([], [1.0])


@pytest.mark.parametrize('name', continual_train.METHODS)
def test_every_stream_method_consolidates_the_discriminator(name):
  """Each method the stream offers, built from the stream's config as the script builds it, keeps a
  finite state over two tasks of discriminator data, and its term, where it has one, is positive a
  step away from the consolidated parameters, with a finite, non-zero gradient."""
  config = load_config(os.path.join(ROOT, 'configs/cirl/pointmaze_goals.py:quick'))
  config.method = name
  disc = opirl_discriminator(reward_hidden=(8,), shaping_hidden=(8,))
  method = methods.make_method(
    config,
    continual.classifier_apply(disc),
    input_shape=(2 * OBS + ACT,),
    num_outputs=2,
    num_tasks=3,
    classes_per_task=2,
  )
  params = disc.init(jax.random.key(0)).params
  state = method.init(params)
  for t in range(2):
    params = jax.tree.map(lambda p: p + 0.1 * t, params)
    data = continual.task_data(
      transitions(jax.random.key(10 + t), 16, 1.0), transitions(jax.random.key(20 + t), 48), t
    )
    state = method.consolidate(state, params, data, jax.random.key(t))
  assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(state))
  num_past = 2 if method.static_task_count else None
  moved = jax.tree.map(lambda p: p + 0.3, params)
  loss, grad = jax.value_and_grad(method.loss)(moved, state, jax.random.key(5), num_past)
  assert np.isfinite(float(loss))
  assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grad))
  if name in ('finetune', 'joint'):
    assert float(loss) == 0.0
  else:
    assert float(loss) > 0.0 and max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(grad)) > 0


def test_the_stream_config_sweeps_every_method_the_issue_names(tmp_path):
  from cljax import sweep  # the sweep machinery, only for this test

  tasks = sweep.expand(
    'train_continual_irl.py', 'configs/cirl/pointmaze_goals.py', str(tmp_path / 'sweep')
  )
  assert [t.overrides for t in tasks] == [
    {'method': m} for m in ('finetune', 'joint', 'ewc', 'replay', 'kpriors', 'fromp')
  ]
  assert {t.overrides['method'] for t in tasks} <= set(continual_train.METHODS)


def test_the_docs_table_is_the_one_of_the_results_json():
  """docs/continual-irl.md's results table is scripts/continual_irl_table.py's rendering of the
  committed docs/results/cirl_pointmaze_goals.json (in a subprocess: the script defines absl flags)."""
  program = (
    'import importlib.util, json, sys\n'
    "spec = importlib.util.spec_from_file_location('table', 'scripts/continual_irl_table.py')\n"
    'module = importlib.util.module_from_spec(spec)\n'
    'spec.loader.exec_module(module)\n'
    "with open('docs/results/cirl_pointmaze_goals.json', encoding='utf-8') as f:\n"
    "  print(module.table(json.load(f)['rows']))\n"
  )
  proc = subprocess.run(
    [sys.executable, '-c', program], cwd=ROOT, capture_output=True, text=True, timeout=300
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(os.path.join(ROOT, 'docs', 'continual-irl.md'), encoding='utf-8') as f:
    assert proc.stdout.strip() in f.read()
