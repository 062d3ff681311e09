"""Config checks that run before any compute: every error names the field and the allowed values."""

from __future__ import annotations

import importlib.util
import os
from typing import Any, Iterable

# The checkout (setup.sh installs it in editable mode): relative config paths are read from here.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ConfigError(ValueError):
  """A config field has a value the run cannot use."""


def check_choice(field: str, value: Any, allowed: Iterable[Any]) -> None:
  allowed = list(allowed)
  if value not in allowed:
    raise ConfigError(f'config.{field} must be one of {allowed}, got {value!r}')


def check_positive(
  field: str, value: Any, *, integer: bool = False, allow_zero: bool = False
) -> None:
  kind = 'an integer' if integer else 'a number'
  ok = isinstance(value, (int, float)) and not isinstance(value, bool)
  if integer:
    ok = ok and float(value).is_integer()
  bound_ok = ok and (value >= 0 if allow_zero else value > 0)
  if not bound_ok:
    rel = '>= 0' if allow_zero else '> 0'
    raise ConfigError(f'config.{field} must be {kind} {rel}, got {value!r}')


def check_range(field: str, value: Any, low: float, high: float) -> None:
  if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
    raise ConfigError(f'config.{field} must be a number in [{low}, {high}], got {value!r}')


def load_module(path: str):
  """The config file at `path` (a relative path that names no file from the working directory is
  read from the repository root, so 'configs/cl/split_fmnist.py' works anywhere) as a fresh module.

  Config files are data, loaded by path as the scripts' `--config` flag does; they are not an
  installed package (a package named `configs` would shadow a user's own). ConfigError if missing."""
  full = path if os.path.isabs(path) or os.path.isfile(path) else os.path.join(ROOT, path)
  if not os.path.isfile(full):
    raise ConfigError(f'--config: no such config file {path!r}')
  name = 'cljax_config_' + os.path.splitext(os.path.relpath(full, ROOT))[0].replace(os.sep, '_')
  spec = importlib.util.spec_from_file_location(name.replace('.', '_'), full)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def load_config(config: str):
  """`get_config(arg)` of 'path/to/config.py[:arg]' (the scripts' `--config` syntax)."""
  path, _, arg = config.partition(':')
  return load_module(path).get_config(arg or None)
