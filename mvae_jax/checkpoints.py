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

import os

import grain
import jax
import ml_collections
import orbax.checkpoint as ocp

from mvae_jax import config as config_lib

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
LOCK_FILE = ".lock"  # who trains in the workdir, flock'd while it runs (train/loop.py)


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
  """The saved config as plain JSON (None when there is none); ConfigError when corrupt."""
  path = os.path.join(workdir, CONFIG_FILE)
  return config_lib.read_json(path) if os.path.exists(path) else None


def read_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a workdir was trained with, locked."""
  if not os.path.exists(os.path.join(workdir, CONFIG_FILE)):
    raise CheckpointError(f"{workdir}: not a training workdir (no {CONFIG_FILE}); give the "
                          "--workdir of a `mvae train` run, a bundle from `mvae export --format "
                          "bundle`, or turn a Magenta checkpoint into a workdir with `mvae import`")
  return config_lib.load(os.path.join(workdir, CONFIG_FILE))


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


def _mismatch(stored: dict, abstract) -> str | None:
  """The first difference between a checkpoint's `params` metadata and the model's, or None."""
  flat = lambda t: {"".join(f"/{getattr(p, 'key', p)}" for p in k): v  # noqa: E731
                    for k, v in jax.tree_util.tree_flatten_with_path(t)[0]}
  have, want = flat(stored), flat(abstract)
  for k in sorted(set(have) | set(want)):
    if k not in have:
      return f"params{k} is missing from the checkpoint"
    if k not in want:
      return f"params{k} is in the checkpoint but not in this model"
    if tuple(have[k].shape) != tuple(want[k].shape):
      return f"params{k} has shape {tuple(have[k].shape)} there, {tuple(want[k].shape)} here"
  return None


def restore_params(workdir: str, abstract_params, step: int | None = None):
  """The parameters alone of checkpoint `step` (default: latest) -> (params, step).

  abstract_params: `jax.ShapeDtypeStruct`s with shardings (where each array lands). Only the
  `params` subtree of the state item is read. MismatchError, before reading any array, when the
  checkpoint's parameter names or shapes differ from the model's.
  """
  step = pick_step(workdir, step)
  item = {"params": abstract_params}
  mngr = ocp.CheckpointManager(checkpoint_dir(workdir),
                               item_handlers={"state": ocp.PyTreeCheckpointHandler()})
  try:
    stored = mngr.item_metadata(step)["state"]
    problem = _mismatch(getattr(stored, "tree", stored)["params"], abstract_params)
    if problem:
      raise MismatchError(f"{workdir}: checkpoint {step} does not fit this model ({problem})")
    restored = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
        item, restore_args=ocp.checkpoint_utils.construct_restore_args(item),
        partial_restore=True)))
  finally:
    mngr.close()
  return restored["state"]["params"], step


__all__ = ["CONFIG_FILE", "CHECKPOINT_DIR", "CheckpointError", "MismatchError", "resolve",
           "write_config", "read_config", "read_config_dict", "training_manager", "steps_of",
           "pick_step", "restore_params", "checkpoint_dir"]
