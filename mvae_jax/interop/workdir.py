"""Writing a model as a training workdir, as `mvae train` leaves one, atomically.

The layout is mvae_jax/checkpoints.py's: `config.json` plus an Orbax CheckpointManager under `checkpoints/`
with the items "state" (a `steps.TrainState`) and "data" (the grain iterator state). The "data"
item written here is the state of a *fresh* iterator (`{"next_index": 0}`: it does not depend on
the data), so `mvae train` resumes from an imported workdir exactly like from its own, starting the
data order from the beginning, and `sample`, `eval`, `TrainedModel.load` read it as any workdir.
Everything is written to a sibling temporary folder that is renamed into place at the end: an
interrupted or failed write leaves nothing at the destination.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

import numpy as np

from mvae_jax import checkpoints


class WorkdirError(ValueError):
  """A destination that cannot be written; str() is one line."""


def check_empty_destination(path: str, what: str = "--workdir") -> None:
  """A destination must not exist, or be an empty folder; its parent must be writable."""
  # what a failed `mvae train` leaves behind (its lock file) does not count
  left = os.path.isdir(path) and set(os.listdir(path)) - {checkpoints.LOCK_FILE}
  if os.path.exists(path) and (not os.path.isdir(path) or left):
    raise WorkdirError(f"{what} {path}: exists and is not empty; choose a new folder (nothing "
                       "is overwritten)")
  parent = os.path.dirname(os.path.abspath(path))
  try:
    os.makedirs(parent, exist_ok=True)
  except OSError as e:
    raise WorkdirError(f"{what} {path}: cannot create its parent folder ({e.strerror})") from None
  if not os.access(parent, os.W_OK):
    raise WorkdirError(f"{what} {path}: the parent folder {parent} is not writable")


@contextlib.contextmanager
def staged(path: str, what: str = "--workdir"):
  """Yields a temporary folder beside `path`; on success it becomes `path`, on error it goes."""
  check_empty_destination(path, what)
  parent = os.path.dirname(os.path.abspath(path))
  tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(path))}.partial-", dir=parent)
  try:
    yield tmp
    if os.path.isdir(path):
      os.rmdir(path)  # empty (checked above)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's folder is private; the result should not be
    os.rename(tmp, path)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise


def _fresh_data_iterator(cfg, conv):
  """A grain iterator of the config's training pipeline in its initial state (no data read)."""
  from mvae_jax import data as data_lib  # noqa: PLC0415
  n = max(int(cfg.train.batch_size), 1)
  ws = data_lib.WindowSet(np.zeros((n, conv.window_steps, conv.num_streams), np.int16),
                          np.arange(n, dtype=np.int32), np.array([str(i) for i in range(n)]))
  return iter(data_lib.train_dataset(ws, conv, batch_size=n, seed=cfg.seed,
                                     transpose_range=(0, 0), max_windows_per_piece=None))


def write_workdir(path: str, cfg, params: dict, step: int, opt_state=None,
                  extra_files: dict[str, str] | None = None) -> None:
  """A workdir at `path` holding `params` (a nested dict of arrays) at `step`.

  opt_state: Adam's state to keep (default: a fresh optimizer).
  extra_files: name -> text written beside config.json (e.g. a provenance record).
  """
  import grain  # noqa: PLC0415
  import jax.numpy as jnp  # noqa: PLC0415
  import orbax.checkpoint as ocp  # noqa: PLC0415

  from mvae_jax import checkpoints, model as model_lib  # noqa: PLC0415
  from mvae_jax.train import steps  # noqa: PLC0415

  conv = model_lib.converter_of(cfg)
  tx = steps.make_optimizer(steps.step_config_of(cfg, conv))
  params = {k: v for k, v in params.items()}
  import jax  # noqa: PLC0415
  params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params)
  state = steps.TrainState.create(params, tx, step=step)
  if opt_state is not None:
    state = state.replace(opt_state=opt_state)
  with staged(path) as tmp:
    checkpoints.write_config(cfg, tmp)
    for name, text in (extra_files or {}).items():
      with open(os.path.join(tmp, name), "w") as f:
        f.write(text)
    mngr = checkpoints.training_manager(tmp, cfg)
    try:
      mngr.save(step, args=ocp.args.Composite(
          state=ocp.args.StandardSave(state),
          data=grain.checkpoint.CheckpointSave(_fresh_data_iterator(cfg, conv))), force=True)
      mngr.wait_until_finished()
    finally:
      mngr.close()
