"""How many XLA executables this process built, and the seconds spent building them.

`count()` (run by `cljax.console.run` before a script's first compilation) listens to JAX's
monitoring events: each jitted function JAX compiles — or loads from the persistent compilation
cache — is one executable; its tracing, lowering and backend-compilation seconds are summed.
`stats()` is what `cljax.runs.write_results` stores as `compilation` in every results.json, so a
run that recompiles per task or per shape shows it.
"""

from __future__ import annotations

_EVENTS = {
  '/jax/core/compile/jaxpr_trace_duration': 'trace_s',
  '/jax/core/compile/jaxpr_to_mlir_module_duration': 'lower_s',
  '/jax/core/compile/backend_compile_duration': 'backend_s',
}
_STATS: dict | None = None


def count() -> None:
  """Starts counting (once per process; later calls do nothing)."""
  global _STATS
  if _STATS is not None:
    return
  from jax import monitoring  # deferred: jax, which the launchers never import

  _STATS = {'executables': 0, 'cache_hits': 0, **dict.fromkeys(_EVENTS.values(), 0.0)}

  def on_duration(event, duration, **kwargs):
    del kwargs
    if event in _EVENTS:
      _STATS[_EVENTS[event]] += duration
      _STATS['executables'] += event.endswith('backend_compile_duration')

  def on_event(event, **kwargs):
    del kwargs
    _STATS['cache_hits'] += event == '/jax/compilation_cache/cache_hits'

  monitoring.register_event_duration_secs_listener(on_duration)
  monitoring.register_event_listener(on_event)


def stats() -> dict | None:
  """{'executables', 'cache_hits', 'seconds' (trace + lower + backend), 'trace_s', 'lower_s',
  'backend_s'} since `count()`; None when nothing counts."""
  if _STATS is None:
    return None
  seconds = sum(_STATS[k] for k in _EVENTS.values())
  return {**_STATS, 'seconds': seconds}
