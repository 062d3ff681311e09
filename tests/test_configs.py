"""Every shipped config is valid, and its `quick` variant too."""

import inspect
import os

import pytest

from cl import builders, config_defaults, methods
from cljax.config import ROOT, load_module

CONFIGS = sorted(
  name[:-3] for name in os.listdir(os.path.join(ROOT, 'configs', 'cl')) if name.endswith('.py')
)


@pytest.mark.parametrize('name', CONFIGS)
@pytest.mark.parametrize('variant', [None, 'quick', 'class'])
def test_config_is_valid_for_every_method(name, variant):
  module = load_module(f'configs/cl/{name}.py')
  if variant == 'class' and module.get_config().stream != 'split':
    return
  for method in methods.METHODS:
    config = module.get_config(variant)
    config.method = method
    builders.validate_config(config)


@pytest.mark.parametrize('name, arg', [(n, a) for n in CONFIGS for a in (None, 'class')])
def test_sweeps_list_valid_overrides(name, arg):
  module = load_module(f'configs/cl/{name}.py')
  if not hasattr(module, 'sweep') or (arg == 'class' and module.get_config().stream != 'split'):
    pytest.skip(f'configs/cl/{name}.py has no sweep for arg={arg!r}')
  runs = []
  module.sweep(lambda **kw: runs.append(kw), arg)
  assert runs
  for overrides in runs:
    config = module.get_config(arg)
    for field, value in overrides.items():
      *path, leaf = field.split('.')
      node = config
      for p in path:
        node = node[p]
      node[leaf] = value
    builders.validate_config(config)


def test_cl_sweeps_carry_the_table_hyperparameters():
  permuted_fmnist = load_module('configs/cl/permuted_fmnist.py')
  split_fmnist = load_module('configs/cl/split_fmnist.py')

  runs = []
  split_fmnist.sweep(lambda **kw: runs.append(kw), 'class')
  assert {'method': 'si', 'num_seeds': 3, 'si.c': 100.0} in runs
  runs.clear()
  permuted_fmnist.sweep(lambda **kw: runs.append(kw))
  fromp = {'method': 'fromp', 'num_seeds': 3, 'fromp.tau': 1000.0, 'fromp.memory_per_task': 500}
  assert fromp in runs and len(runs) == 11


def _table_hyperparameters(entry: str) -> dict:
  """'fromp.tau=100000' -> {'fromp.tau': 100000.0}; 'a.x=b.y=1' (tied fields) -> both;
  'fromp.tau=1000, fromp.memory_per_task=500' -> both; '' -> {}."""
  out = {}
  for item in filter(None, entry.split(', ')):
    *fields, value = item.split('=')
    out.update({field: float(value) for field in fields})
  return out


@pytest.mark.parametrize('benchmark', ['split_fmnist', 'split_fmnist:class', 'permuted_fmnist'])
def test_default_configs_give_the_results_table_hyperparameters(benchmark):
  """The documented command for a row (the benchmark's config, `--config.method=<method>`, no other
  flag) trains with the hyper-parameters of that row of docs/results/cl_results.json."""
  import json
  import os

  with open(
    os.path.join(os.path.dirname(__file__), '..', 'docs', 'results', 'cl_results.json'),
    encoding='utf-8',
  ) as f:
    table = json.load(f)
  name, _, variant = benchmark.partition(':')
  module = load_module(f'configs/cl/{name}.py')
  rows = {
    key.rsplit('/', 1)[1]: r for key, r in table.items() if key.rsplit('/', 1)[0] == benchmark
  }
  assert set(rows) == set(methods.METHODS)
  for method, row in rows.items():
    config = module.get_config(variant or None)
    config.method = method
    builders.validate_config(config)
    for field, value in _table_hyperparameters(row['hyperparameter']).items():
      group, leaf = field.split('.')
      assert config[group][leaf] == value, (benchmark, method, field)
  # A value given on the command line wins over the chosen default.
  config = module.get_config(variant or None)
  config.method, config.fromp.tau = 'fromp', 7.0
  builders.validate_config(config)
  assert config.fromp.tau == 7.0


# Config field -> keyword of the method's constructor, where the names differ.
_KEYWORDS = {
  'si': {'c': 'si_c'},
  'replay': {'batch_size': 'replay_batch_size', 'weight': 'replay_weight'},
}
_SECTIONS = {'online_ewc': 'ewc', 'fromp_l2': 'fromp'}


def default_mismatches(config) -> list:
  """(method, field, config value, constructor default) wherever a CL config's method section and
  the constructor's keyword default disagree."""
  out = []
  for name in methods.METHODS:
    section = _SECTIONS.get(name, name)
    if section not in config or name == 'fromp_l2':
      continue
    params = inspect.signature(getattr(methods, name)).parameters
    for field, value in config[section].items():
      keyword = _KEYWORDS.get(name, {}).get(field, field)
      default = params[keyword].default if keyword in params else inspect.Parameter.empty
      if default is not inspect.Parameter.empty and default != value:
        out.append((name, field, value, default))
  return out


def test_a_method_called_from_a_notebook_defaults_to_the_configs_values():
  # (A benchmark's config file then applies its validation choices, cl.config_defaults.CHOSEN.)
  base = config_defaults.base_config()
  assert default_mismatches(base) == []
  base.kpriors.tau = 123.0  # the mirror: a drifted default is found
  assert default_mismatches(base) == [('kpriors', 'tau', 123.0, 1.0)]


def test_unknown_variant_is_rejected():
  split_fmnist = load_module('configs/cl/split_fmnist.py')

  with pytest.raises(
    ValueError,
    match=r"config variant must be one of \['', 'quick', 'class', "
    r"'class,quick'\], got 'big'",
  ):
    split_fmnist.get_config('big')
  assert split_fmnist.get_config('class').scenario == 'class'
  permuted_fmnist = load_module('configs/cl/permuted_fmnist.py')

  with pytest.raises(ValueError, match='needs a split stream'):
    permuted_fmnist.get_config('class')


IRL_CONFIGS = [
  ('pointmaze', None),
  ('pointmaze', 'quick'),
  ('pointmaze', 'official'),
  ('pendulum', None),
  ('pendulum', 'quick'),
  ('pendulum', 'official'),
  ('mujoco', 'Hopper-v5'),
  ('mujoco', 'HalfCheetah-v5'),
  ('mujoco', 'CustomAnt'),
]


@pytest.mark.parametrize('name, arg', IRL_CONFIGS)
def test_irl_configs_build_for_every_algorithm(name, arg):
  pytest.importorskip('mujoco')
  from irl import builders as irl_builders

  for algo in irl_builders.ALGOS:
    config = load_module(f'configs/irl/{name}.py').get_config(arg)
    config.algo = algo
    built = irl_builders.build(config)
    assert built.meta['env'] == config.env
    if not built.is_jax:
      built.env.close()


def test_irl_config_arguments_name_the_allowed_values():
  mujoco = load_module('configs/irl/mujoco.py')
  transfer = load_module('configs/irl/transfer.py')

  with pytest.raises(
    ValueError, match=r"must be one of \['CustomAnt', 'HalfCheetah-v5', 'Hopper-v5'\]"
  ):
    mujoco.get_config('Walker2d-v5')
  with pytest.raises(
    ValueError, match=r"must be one of \['AmputatedAnt', 'BigAnt', 'PointMaze-Right'\]"
  ):
    transfer.get_config('PointMaze-Left')
  assert transfer.get_config('BigAnt').source_env == 'CustomAnt'
  pendulum = load_module('configs/irl/pendulum.py')
  pointmaze = load_module('configs/irl/pointmaze.py')

  for module in (pendulum, pointmaze):
    with pytest.raises(
      ValueError, match=r"must be one of 'official', 'quick' \(or none\), got 'fast'"
    ):
      module.get_config('fast')


@pytest.mark.parametrize('name, env', [('pointmaze', 'PointMaze-Left'), ('pendulum', 'Pendulum')])
def test_official_preset_is_the_defaults_without_the_study_choices(name, env):
  """`:official` differs from the default config exactly in configs/irl/common.STUDY_DEFAULTS."""
  from irl import config_defaults as common

  module = load_module(f'configs/irl/{name}.py')
  official, default = module.get_config('official'), module.get_config()
  common.set_fields(official, common.STUDY_DEFAULTS[env])
  assert official.to_dict() == default.to_dict()
  assert module.get_config().loop.num_env_steps <= 100_000
  assert module.get_config().num_trajectories == 1


def test_goal_relative_reward_rejects_normalised_states():
  from cljax.config import ConfigError

  pointmaze = load_module('configs/irl/pointmaze.py')
  from irl import builders as irl_builders

  config = pointmaze.get_config('quick')
  config.discriminator.goal_relative = (0, 3, 3)
  assert irl_builders.build(config).agent is not None
  config.normalize_states = True
  with pytest.raises(ConfigError, match='goal_relative needs config.normalize_states=False'):
    irl_builders.build(config)


def test_table_budgets_give_on_policy_algorithms_ten_times_the_steps():
  from irl import config_defaults as common

  pendulum = load_module('configs/irl/pendulum.py')
  pointmaze = load_module('configs/irl/pointmaze.py')

  assert common.table_budget('PointMaze-Left', 'opirl') == 100_000
  assert common.table_budget('PointMaze-Left', 'airl_onpolicy') == 1_000_000
  assert common.table_budget('Pendulum', 'gail_onpolicy', {'Pendulum': 5}) == 50
  for module, env in ((pointmaze, 'PointMaze-Left'), (pendulum, 'Pendulum')):
    runs = []
    module.sweep(lambda **kw: runs.append(kw))
    assert [r['algo'] for r in runs] == list(common.TABLE_ALGOS)
    for r in runs:
      assert r['loop.num_env_steps'] == common.table_budget(env, r['algo'])
      assert r['loop.num_env_steps'] % r['loop.eval_every'] == 0
