"""One device mesh ('data', 'model') over all devices, parameter shardings from logical axes.

Modules name their parameter dimensions (`lstm_in`, `gates`, `embed`, `mlp`, `hidden`, `vocab`);
`config.train.logical_axis_rules` maps them to mesh axes, so model parallelism is a config edit
(default: every parameter replicated, batches split over 'data'). Multi-host runs start with
`maybe_initialize_distributed`, which calls `jax.distributed.initialize` when asked by flag or
by the environment of a TPU pod or SLURM job.
"""

from __future__ import annotations

import os

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


def maybe_initialize_distributed(coordinator: str = "", num_processes: int = 0,
                                 process_id: int = -1) -> bool:
  """Initializes jax.distributed for multi-host training; returns whether it did.

  Explicit arguments win; otherwise TPU pods and SLURM jobs (SLURM_NTASKS > 1) are detected and
  JAX's own cluster detection fills in the rest.
  """
  if coordinator or num_processes > 1:
    jax.distributed.initialize(coordinator_address=coordinator or None,
                               num_processes=num_processes or None,
                               process_id=None if process_id < 0 else process_id)
    return True
  if int(os.environ.get("SLURM_NTASKS", "1")) > 1 or os.environ.get("TPU_WORKER_HOSTNAMES"):
    jax.distributed.initialize()
    return True
  return False


def make_mesh(model_parallelism: int = 1, devices=None) -> Mesh:
  """A ('data', 'model') mesh over `devices` (default: all devices of all hosts)."""
  devices = np.asarray(devices if devices is not None else jax.devices())
  if devices.size % model_parallelism:
    raise ValueError(f"--config.train.model_parallelism={model_parallelism} does not divide the "
                     f"{devices.size} devices")
  return Mesh(devices.reshape(-1, model_parallelism), ("data", "model"))


def param_shardings(boxed_abstract_params, mesh: Mesh, rules) -> object:
  """NamedShardings for parameters from their logical axis names and the rules table."""
  specs = nn.get_partition_spec(boxed_abstract_params)
  return nn.logical_to_mesh_sharding(specs, mesh, [tuple(r) for r in rules])


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P("data"))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def global_batch(local: dict, mesh: Mesh) -> dict:
  """This host's slice of the batch (NumPy) -> one global jax.Array per key, split over 'data'."""
  sh = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sh, v) for k, v in local.items()}
