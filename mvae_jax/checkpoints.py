"""The workdir layout, owned here: what `mvae train` writes and everything else reads.

    WORKDIR/config.json               the resolved config (checked on resume)
    WORKDIR/checkpoints/STEP/state    Orbax: TrainState {step, params, opt_state, skipped, streak}
    WORKDIR/checkpoints/STEP/data     grain iterator state (one file per process)
    WORKDIR/tensorboard/, WORKDIR/eval_STEP.json

Training saves and resumes the whole state through `training_manager`; evaluation and inference
restore the parameters alone (`restore_params`: a partial Orbax restore of the state item), so no
optimizer state is ever read or held for them.
"""

from __future__ import annotations

import json
import os

import grain
import jax
import ml_collections
import orbax.checkpoint as ocp

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"


class CheckpointError(ValueError):
  """A workdir or checkpoint that cannot be read; str() is one line naming the path."""


class MismatchError(CheckpointError):
  """A checkpoint whose arrays do not fit the model asked for."""


def checkpoint_dir(workdir: str) -> str:
  return os.path.join(os.path.abspath(workdir), CHECKPOINT_DIR)


def resolve(workdir_or_checkpoint: str) -> tuple[str, int | None]:
  """`WORKDIR` -> (WORKDIR, None); `WORKDIR/checkpoints/STEP` -> (WORKDIR, STEP)."""
  path = os.path.abspath(os.path.expanduser(workdir_or_checkpoint))
  if os.path.basename(path).isdigit() and os.path.basename(os.path.dirname(path)) == CHECKPOINT_DIR:
    return os.path.dirname(os.path.dirname(path)), int(os.path.basename(path))
  return path, None


# --- config.json -------------------------------------------------------------------------------


def write_config(cfg, workdir: str) -> None:
  """The resolved config, beside the checkpoints (process 0 writes; atomic)."""
  if jax.process_index() == 0:
    path = os.path.join(workdir, CONFIG_FILE)
    with open(path + ".tmp", "w") as f:
      f.write(cfg.to_json(indent=1))
    os.replace(path + ".tmp", path)


def read_config_dict(workdir: str) -> dict | None:
  """The saved config as plain JSON (None when there is none); CheckpointError when corrupt."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      return json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise CheckpointError(f"{path} is not valid JSON ({e}); restore it from the run's copy or "
                          "train in a new --workdir") from None


def read_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a workdir was trained with, locked."""
  d = read_config_dict(workdir)
  if d is None:
    raise CheckpointError(f"{workdir}: not a training workdir (no {CONFIG_FILE}); give the "
                          "--workdir of a `mvae train` run")
  cfg = ml_collections.ConfigDict(d)
  cfg.lock()
  return cfg


# --- checkpoints -------------------------------------------------------------------------------


def training_manager(workdir: str, cfg) -> ocp.CheckpointManager:
  """Saves every `checkpoint_every_steps`; keeps the last `keep_checkpoints` and the best by
  eval loss; items `state` (the TrainState) and `data` (the grain iterator)."""
  policies = ocp.checkpoint_managers
  options = ocp.CheckpointManagerOptions(
      save_decision_policy=policies.FixedIntervalPolicy(cfg.train.checkpoint_every_steps),
      preservation_policy=policies.AnyPreservationPolicy([
          policies.LatestN(cfg.train.keep_checkpoints),
          policies.BestN(get_metric_fn=lambda m: -m["eval_loss"], n=1,
                         keep_checkpoints_without_metrics=False),
      ]),
      enable_async_checkpointing=True)
  return ocp.CheckpointManager(
      checkpoint_dir(workdir), options=options,
      item_handlers={"state": ocp.StandardCheckpointHandler(),
                     "data": grain.checkpoint.CheckpointHandler()})


def steps_of(workdir: str) -> list[int]:
  """The steps with a checkpoint, ascending."""
  if not os.path.isdir(checkpoint_dir(workdir)):
    return []
  mngr = ocp.CheckpointManager(checkpoint_dir(workdir))
  try:
    return list(mngr.all_steps())
  finally:
    mngr.close()


def pick_step(workdir: str, step: int | None = None) -> int:
  """`step` (default: the latest) if the workdir has a checkpoint there; CheckpointError else."""
  have = steps_of(workdir)
  if not have:
    raise CheckpointError(f"{workdir}: no checkpoint; train first (mvae train --config ... "
                          f"--workdir {workdir})")
  step = have[-1] if step is None else step
  if step not in have:
    raise CheckpointError(f"{workdir}: no checkpoint at step {step}; have {have}")
  return step


def restore_params(workdir: str, abstract_params, step: int | None = None):
  """The parameters alone of checkpoint `step` (default: latest) -> (params, step).

  abstract_params: `jax.ShapeDtypeStruct`s with shardings (where each array lands). Only the
  `params` subtree of the state item is read. MismatchError when the shapes do not fit.
  """
  step = pick_step(workdir, step)
  item = {"params": abstract_params}
  mngr = ocp.CheckpointManager(checkpoint_dir(workdir),
                               item_handlers={"state": ocp.PyTreeCheckpointHandler()})
  try:
    restored = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
        item, restore_args=ocp.checkpoint_utils.construct_restore_args(item),
        partial_restore=True)))
  except (ValueError, KeyError, TypeError) as e:
    raise MismatchError(f"{workdir}: checkpoint {step} does not fit this model "
                        f"({str(e).strip().splitlines()[0][:100]})") from None
  finally:
    mngr.close()
  return restored["state"]["params"], step


__all__ = ["CONFIG_FILE", "CHECKPOINT_DIR", "CheckpointError", "MismatchError", "resolve",
           "write_config", "read_config", "read_config_dict", "training_manager", "steps_of",
           "pick_step", "restore_params", "checkpoint_dir"]
