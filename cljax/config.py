"""Config checks that run before any compute: every error names the field and the allowed values."""

from __future__ import annotations

from typing import Any, Iterable


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
