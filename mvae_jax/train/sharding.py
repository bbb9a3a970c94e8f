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


def logical_shardings(boxed_abstract_tree, mesh: Mesh, rules) -> object:
  """NamedShardings for every array of a tree from the logical axis names its boxes carry
  (`nn.with_logical_partitioning`) and the rules table; unboxed leaves are replicated.

  Works on any tree built from boxed parameters (the train state: Adam's moments carry their
  parameter's names). A ValueError names a logical axis without a rule, a rule for an axis no
  array has, or a mesh axis the mesh lacks.
  """
  rules = [tuple(r) for r in rules]
  specs = nn.get_partition_spec(boxed_abstract_tree)
  used = {a for spec in jax.tree.leaves(specs, is_leaf=lambda x: isinstance(x, P))
          for a in spec if isinstance(a, str)}
  named = {r[0] for r in rules}
  where = "--config.train.logical_axis_rules"
  if used - named:
    missing = sorted(used - named)
    raise ValueError(f"{where}: no rule for logical axis {missing[0]!r}; add "
                     f"[{missing[0]!r}, None] (replicated) or [{missing[0]!r}, 'model']")
  if named - used:
    raise ValueError(f"{where}: rule for {sorted(named - used)[0]!r}, which no parameter has; "
                     f"the axes are {sorted(used)}")
  for name, axes in rules:
    for axis in (axes,) if isinstance(axes, str) else (axes or ()):
      if axis not in mesh.axis_names:
        raise ValueError(f"{where}: rule [{name!r}, {axes!r}] names mesh axis {axis!r}; the "
                         f"mesh axes are {list(mesh.axis_names)}")
  return nn.logical_to_mesh_sharding(specs, mesh, rules)


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P("data"))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def global_batch(local: dict, mesh: Mesh) -> dict:
  """This host's slice of the batch (NumPy) -> one global jax.Array per key, split over 'data'."""
  sh = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sh, v) for k, v in local.items()}
