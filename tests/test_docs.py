"""Every Python example in the README and the docs runs: each fenced ```python block is executed as a
script from the repository root, so a wrong example fails CI."""

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ['README.md'] + sorted(
  os.path.join('docs', f) for f in os.listdir(os.path.join(ROOT, 'docs')) if f.endswith('.md')
)
FENCE = re.compile(r'^```python\n(.*?)^```', re.S | re.M)


def python_blocks(text: str) -> list[str]:
  return FENCE.findall(text)


def _examples():
  for page in PAGES:
    with open(os.path.join(ROOT, page), encoding='utf-8') as f:
      for i, block in enumerate(python_blocks(f.read())):
        yield pytest.param(block, id=f'{page}#{i + 1}')


def run_block(block: str) -> subprocess.CompletedProcess:
  env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS='cpu')
  env.pop('XLA_FLAGS', None)  # the examples run as a user would, on one CPU device
  return subprocess.run(
    [sys.executable, '-c', block], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
  )


def test_the_pages_have_examples():
  assert len(list(_examples())) >= 2


@pytest.mark.slow
@pytest.mark.parametrize('block', _examples())
def test_example_runs(block):
  proc = run_block(block)
  assert proc.returncode == 0, proc.stderr[-3000:]


def test_a_wrong_example_fails():
  """The mirror: the harness finds a block in a page and reports its failure."""
  (block,) = python_blocks('text\n\n```python\nfrom cl import no_such_module\n```\n')
  proc = run_block(block)
  assert proc.returncode != 0 and 'no_such_module' in proc.stderr
