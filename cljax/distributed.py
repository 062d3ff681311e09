"""Multi-host runs: `jax.distributed` set up from the launcher, and host copies of global arrays.

  distributed.initialize()                      # first thing in a script, before any JAX computation

Under SLURM, a job step with several tasks (`srun --ntasks=N ...`, one process per node or per GPU)
is detected from its environment (SLURM_NTASKS > 1 inside a step) and `jax.distributed.initialize()`
finds the coordinator itself. Elsewhere pass the coordinator explicitly (flags
`--coordinator_address host:port --num_processes N --process_id i`, or the environment variables
CLJAX_COORDINATOR_ADDRESS / CLJAX_NUM_PROCESSES / CLJAX_PROCESS_ID). A single process does nothing.
On CPU the processes' collectives go over gloo (TCP; loopback on one machine).

Every process then sees every process's devices in `jax.devices()`, so `cljax.mesh` meshes span
the cluster; each process builds the same host values and places only its devices' parts
(`cljax.mesh.shard_leading` / `replicate`); checkpoints are written and restored by all
processes together (orbax); only process 0 writes logs and results (`is_primary`).
"""

from __future__ import annotations

import os

import numpy as np
from absl import flags

# jax is imported inside the functions: scripts import this module before parsing flags (for
# `define_flags`), and `--help` should not wait for jax.


def define_flags():
  """Defines the scripts' --coordinator_address / --num_processes / --process_id flags; returns the
  function (call it first in `main`) that initialises from them, from CLJAX_* variables or SLURM."""
  coordinator = flags.DEFINE_string(
    'coordinator_address',
    '',
    'Multi-process runs without SLURM: host:port of process 0 (cljax/distributed.py).',
  )
  num_processes = flags.DEFINE_integer('num_processes', 0, 'With --coordinator_address.')
  process_id = flags.DEFINE_integer('process_id', -1, 'With --coordinator_address.')
  return lambda: initialize(coordinator.value, num_processes.value, process_id.value)


def slurm_multi_task() -> bool:
  """True inside a SLURM job step with more than one task (where jax.distributed auto-detects)."""
  return int(os.environ.get('SLURM_NTASKS', '1')) > 1 and 'SLURM_STEP_NODELIST' in os.environ


def initialize(coordinator_address: str = '', num_processes: int = 0, process_id: int = -1) -> bool:
  """Initialises `jax.distributed` when launched as one of several processes; returns whether it did.
  Must run before any JAX computation. Explicit arguments win over CLJAX_* variables over SLURM."""
  import jax  # deferred: see the note at the top

  coordinator_address = coordinator_address or os.environ.get('CLJAX_COORDINATOR_ADDRESS', '')
  num_processes = num_processes or int(os.environ.get('CLJAX_NUM_PROCESSES', '0'))
  if process_id < 0:
    process_id = int(os.environ.get('CLJAX_PROCESS_ID', '-1'))
  if coordinator_address:
    if num_processes < 1 or not 0 <= process_id < num_processes:
      raise ValueError(
        f'a coordinator address needs num_processes >= 1 and 0 <= process_id < '
        f'num_processes, got num_processes={num_processes}, process_id={process_id}'
      )
    _cpu_collectives()
    jax.distributed.initialize(coordinator_address, num_processes, process_id)
    return True
  if slurm_multi_task():
    _cpu_collectives()
    jax.distributed.initialize()
    return True
  return False


def _cpu_collectives() -> None:
  import jax  # deferred: see the note at the top

  # Only matters on CPU (GPUs use NCCL); harmless elsewhere. Must precede backend initialisation.
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')


def is_primary() -> bool:
  import jax  # deferred: see the note at the top

  return jax.process_index() == 0


def to_host(x):
  """A NumPy copy of a (possibly multi-process) global array, the same on every process."""
  import jax  # deferred: see the note at the top

  if isinstance(x, jax.Array) and not x.is_fully_addressable and not x.is_fully_replicated:
    from jax.experimental import multihost_utils  # deferred, as jax

    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return np.asarray(x)
