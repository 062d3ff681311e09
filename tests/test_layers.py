"""The layers, read from the source: scripts → configs → cl / irl → envs / cljax, no edge upward;
config files are data (loading one imports no jax); an import inside a function says why it is there."""

import ast
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Lower rank = higher layer; a module may import its own layer or any layer below it.
RANK = {'scripts': 0, 'configs': 1, 'cl': 2, 'irl': 2, 'envs': 3, 'cljax': 3}
PACKAGES = ('configs', 'cl', 'irl', 'envs', 'cljax')


def _modules():
  for package in PACKAGES:
    for directory, _, files in os.walk(os.path.join(ROOT, package)):
      for name in sorted(files):
        if name.endswith('.py'):
          path = os.path.join(directory, name)
          yield package, os.path.relpath(path, ROOT), ast.parse(open(path, encoding='utf-8').read())


def _imports(tree):
  """(node, imported top-level package) for every absolute import in the module, at any depth."""
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for alias in node.names:
        yield node, alias.name.split('.')[0]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      yield node, node.module.split('.')[0]


def upward_edges():
  return [
    f'{path}:{node.lineno}: {package} imports {target}'
    for package, path, tree in _modules()
    for node, target in _imports(tree)
    if target in RANK and RANK[target] < RANK[package]
  ]


def test_no_module_imports_a_layer_above_its_own():
  assert upward_edges() == []


def test_the_walk_sees_an_upward_edge(tmp_path, monkeypatch):
  """The mirror: an `envs` module importing `irl` is found."""
  fake = tmp_path / 'envs'
  fake.mkdir()
  (fake / 'bad.py').write_text('from irl import loops\n')
  monkeypatch.setattr(sys.modules[__name__], 'ROOT', str(tmp_path))
  monkeypatch.setattr(sys.modules[__name__], 'PACKAGES', ('envs',))
  assert upward_edges() == ['envs/bad.py:1: envs imports irl']


def _function_level_imports(tree):
  for function in ast.walk(tree):
    if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
      for node in ast.walk(function):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
          yield node


def test_imports_inside_functions_say_why():
  """Only a cycle or a heavy optional dependency justifies one; a comment on its line (or on the
  import line right above it, for a group) says which."""
  unexplained = []
  for _, path, tree in _modules():
    lines = open(os.path.join(ROOT, path), encoding='utf-8').read().splitlines()
    for node in _function_level_imports(tree):
      line, above = lines[node.lineno - 1], lines[node.lineno - 2]
      if '#' not in line and not ('#' in above and above.strip().startswith(('import ', 'from '))):
        unexplained.append(f'{path}:{node.lineno}: {line.strip()}')
  assert unexplained == []


CONFIG_FILES = sorted(
  os.path.relpath(os.path.join(d, f), ROOT)
  for d, _, fs in os.walk(os.path.join(ROOT, 'configs'))
  for f in fs
  if f.endswith('.py') and f != '__init__.py'
)


def heavy_modules_after_loading(paths) -> list[str]:
  """Loads each config file (and calls its `get_config`) in a fresh interpreter; the heavy
  libraries that are imported afterwards."""
  code = f"""
import importlib.util, sys
sys.path.insert(0, {ROOT!r})
for path in {list(paths)!r}:
  spec = importlib.util.spec_from_file_location('config_under_test', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if hasattr(module, 'get_config'):
    module.get_config()
print(sorted(m for m in ('jax', 'flax', 'optax', 'orbax') if m in sys.modules))
"""
  proc = subprocess.run(
    [sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, timeout=120
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  return ast.literal_eval(proc.stdout.strip())


def test_loading_every_config_file_imports_no_jax():
  assert heavy_modules_after_loading(CONFIG_FILES) == []


def test_the_config_check_sees_jax(tmp_path):
  """The mirror: the same check, on a config file that imports jax, reports it."""
  bad = tmp_path / 'bad_config.py'
  source = open(os.path.join(ROOT, 'configs/irl/pointmaze.py'), encoding='utf-8').read()
  bad.write_text(source + '\nimport jax\n')
  assert 'jax' in heavy_modules_after_loading([str(bad)])


def test_scripts_run_without_sys_path_edits():
  """The scripts import the installed packages (setup.sh installs the project in editable mode); none
  puts the checkout on `sys.path` (issue 15, packaging)."""
  edits = [
    f'scripts/{name}'
    for name in sorted(os.listdir(os.path.join(ROOT, 'scripts')))
    if name.endswith('.py')
    and 'sys.path' in open(os.path.join(ROOT, 'scripts', name), encoding='utf-8').read()
  ]
  assert edits == []


def test_config_files_are_loaded_by_path_not_imported():
  """`configs/` is data, not an installed package (a top-level `configs` would shadow a user's own):
  no module imports it, and the project installs only its distinctly named packages."""
  importers = []
  for top in ('cl', 'irl', 'envs', 'cljax', 'configs', 'scripts', 'tests'):
    for dirpath, _, names in os.walk(os.path.join(ROOT, top)):
      for name in names:
        if name.endswith('.py'):
          path = os.path.join(dirpath, name)
          tree = ast.parse(open(path, encoding='utf-8').read())
          for node in ast.walk(tree):
            module = (
              node.module
              if isinstance(node, ast.ImportFrom)
              else (node.names[0].name if isinstance(node, ast.Import) else None)
            )
            if module and module.split('.')[0] == 'configs':
              importers.append(f'{os.path.relpath(path, ROOT)}:{node.lineno}')
  assert importers == []
  pyproject = open(os.path.join(ROOT, 'pyproject.toml'), encoding='utf-8').read()
  assert 'include = ["cl*", "irl*", "envs*", "cljax*"]' in pyproject
