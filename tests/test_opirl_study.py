"""scripts/opirl_study.py: variants are '+'-joined knobs over the `:official` config, a bad one is one
clear line before any run, and a tiny study writes its JSON and its figure."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'scripts'))

import opirl_study  # pylint: disable=wrong-import-position


def test_variants_join_knobs_and_default_is_the_shipped_config():
  assert opirl_study.variant_overrides('default') is None
  assert opirl_study.variant_overrides('official') == {}
  assert opirl_study.variant_base('default') == opirl_study.variant_base('default+disc64') == ''
  assert opirl_study.variant_base('sac+net64') == ':official'
  assert opirl_study.variant_overrides('default+disc64') == {
    'discriminator.shaping_hidden': (64, 64)
  }
  both = opirl_study.variant_overrides('sac+net64')
  assert both['irl.policy_learner'] == 'sac' and both['sac.hidden_sizes'] == (64, 64)
  with pytest.raises(ValueError, match=r"unknown knob 'fast' in variant 'sac\+fast'"):
    opirl_study.variant_overrides('sac+fast')


def test_bad_variant_is_one_line_before_any_run(tmp_path):
  proc = subprocess.run(
    [sys.executable, 'scripts/opirl_study.py', '--variants=official,bogus', f'--root={tmp_path}'],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert proc.returncode != 0 and "unknown knob 'bogus'" in proc.stderr
  assert not os.listdir(tmp_path)


@pytest.mark.slow
def test_tiny_study_writes_rows_and_a_figure(tmp_path):
  proc = subprocess.run(
    [
      sys.executable,
      'scripts/opirl_study.py',
      '--env=Pendulum',
      '--seed=100',
      '--num_seeds=2',
      '--steps=1200',
      '--evals=2',
      '--variants=official+net64',
      f'--root={tmp_path}',
    ],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  summary = json.loads((tmp_path / 'Pendulum_seed100_1200.json').read_text())
  assert summary['seeds'] == [100, 101] and len(summary['rows']) == 1
  row = summary['rows'][0]
  assert row['variant'] == 'official+net64' and len(row['per_seed_curves']) == 2
  assert [x for x, _ in row['per_seed_curves'][0]] == [600, 1200]
  assert (tmp_path / 'Pendulum_seed100_1200.png').stat().st_size > 0


def test_a_seed_that_never_reaches_90_percent_prints_not_reached():
  assert opirl_study.steps_to_90_text([12000, None]) == '[12000, not reached]'
  assert 'None' not in opirl_study.steps_to_90_text([None, None, 5000])
