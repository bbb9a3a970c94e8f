"""The training loop, read top to bottom: checks, mesh, data, state, resume, steps, evals, saves.

`train(cfg, workdir)` is what `mvae train` runs; `evaluate(cfg, workdir, step)` is `mvae eval`.
Checkpoints (Orbax CheckpointManager, asynchronous, atomic) hold the train state and the grain
iterator state; the last `keep_checkpoints` are kept plus the best by eval loss. A workdir that
has a checkpoint is resumed from it, and the run continues exactly as if never interrupted
(same data order, augmentation and per-step keys: everything derives from the seed and the step).
SIGTERM (how pods preempt) saves a checkpoint and exits cleanly.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import functools
import json
import math
import os
import signal
import socket
import sys
import tempfile
import time

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp
import tqdm
from flax.linen import meta
from jax.experimental import multihost_utils

from mvae_jax import checkpoints
from mvae_jax import data as data_lib
from mvae_jax import model as model_lib
from mvae_jax.train import sharding, steps

# Keys that may change between a run and its resumption; any other difference is an error.
RESUMABLE_KEYS = ("train.num_steps", "train.log_every_steps", "train.eval_every_steps",
                  "train.eval_batches", "train.checkpoint_every_steps", "train.keep_checkpoints",
                  "data.data_dir", "data.midi_dir", "train.recurrent_dtype",
                  "train.compute_dtype")
METRICS_FILE = "metrics.jsonl"
LOCK_FILE = checkpoints.LOCK_FILE


class TrainError(RuntimeError):
  """A run that cannot start or go on; str() is one line naming the cause and the fix."""


# --- config files ------------------------------------------------------------------------------


def _flat(d: dict, prefix="") -> dict:
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flat(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
  return out


def check_workdir(cfg, workdir: str) -> None:
  """Workdir writable; a saved config must agree with this one except for RESUMABLE_KEYS."""
  try:
    os.makedirs(workdir, exist_ok=True)
    # a unique name: runs started together do not remove each other's probe
    fd, probe = tempfile.mkstemp(prefix=".write_test", dir=workdir)
    os.close(fd)
    os.remove(probe)
  except OSError as e:
    raise TrainError(f"--workdir {workdir}: not writable ({e.strerror}); choose another folder")
  try:
    saved = checkpoints.read_config_dict(workdir)
  except ValueError as e:  # config.json unreadable
    raise TrainError(str(e)) from None
  diff = _differing(saved, cfg) if saved is not None else {}
  if diff:
    raise TrainError(f"--workdir {workdir} holds a run of another config ({_shown(diff)}); "
                     "resume with the same config or use a new --workdir")


@contextlib.contextmanager
def workdir_lock(workdir: str):
  """Holds `workdir` for one training: a second one started on it stops with a TrainError
  naming the holder, before it writes anything (two runs' Orbax saves would collide).

  An exclusive `flock` on workdir/.lock, taken by process 0 (the processes of a multi-host run
  share the workdir), which tells the others whether it got it; the kernel releases it when
  the process ends, SIGKILL included, so a killed run's workdir resumes. An object store
  (gs://...) or a filesystem without locks (some network mounts) trains unguarded."""
  if "://" in workdir:
    yield
    return
  with contextlib.ExitStack() as held:
    holder = None
    if jax.process_index() == 0:
      f = held.enter_context(open(os.path.join(workdir, LOCK_FILE), "a+"))
      try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "another process"
      except OSError:  # no locks on this filesystem
        pass
      else:
        since = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {socket.gethostname()}, since {since}\n")
        f.flush()
    if jax.process_count() > 1:  # every process of the run stops, not process 0 alone
      busy = multihost_utils.broadcast_one_to_all(np.int32(holder is not None))
      holder = holder or ("found by process 0" if int(busy) else None)
    if holder is not None:
      raise TrainError(f"--workdir {workdir} is in use by another training ({holder}); wait for "
                       "it to end, stop it (SIGTERM saves a checkpoint), or use another "
                       "--workdir")
    yield


# --- setup -------------------------------------------------------------------------------------


class Run:
  """Everything a run needs, built from a config (no side effects but compilation)."""

  def __init__(self, cfg, mesh=None):
    self.cfg = cfg
    self.conv = model_lib.converter_of(cfg)
    self.model = model_lib.model_of(cfg, self.conv)
    self.sc = steps.step_config_of(cfg, self.conv)
    self.tx = steps.make_optimizer(self.sc)
    self.mesh = mesh if mesh is not None else sharding.make_mesh(cfg.train.model_parallelism)
    n_data = self.mesh.shape["data"]
    if cfg.train.batch_size % n_data:
      raise TrainError(f"--config.train.batch_size={cfg.train.batch_size} is not divisible by "
                       f"the {n_data} data-parallel devices; use a multiple of {n_data}")
    self.local_batch = cfg.train.batch_size // jax.process_count()
    inputs_fn = model_lib.inputs_fn_of(self.conv)

    def init_boxed(k):  # parameters and Adam's moments carry their logical axis names
      return steps.TrainState.create(model_lib.init_params(self.model, self.conv, k, boxed=True),
                                     self.tx)

    key = jax.random.key(cfg.seed)
    boxed = jax.eval_shape(init_boxed, key)
    self.state_sharding = sharding.logical_shardings(boxed, self.mesh,
                                                     cfg.train.logical_axis_rules)
    self._init = jax.jit(lambda k: meta.unbox(init_boxed(k)), out_shardings=self.state_sharding)
    self.abstract_state = jax.tree.map(
        lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), meta.unbox(boxed),
        self.state_sharding)
    rep = sharding.replicated(self.mesh)
    b_sh = sharding.batch_sharding(self.mesh)
    self.train_step = jax.jit(
        functools.partial(steps.train_step, model=self.model, sc=self.sc, inputs_fn=inputs_fn,
                          tx=self.tx),
        in_shardings=(self.state_sharding, b_sh, rep), out_shardings=(self.state_sharding, rep),
        donate_argnums=0)
    self.eval_step = jax.jit(
        functools.partial(steps.eval_step, model=self.model, sc=self.sc, inputs_fn=inputs_fn),
        in_shardings=(self.state_sharding.params, b_sh, rep), out_shardings=rep)
    self.rng = jax.random.key(cfg.seed + 1)

  def init_state(self) -> steps.TrainState:
    return self._init(jax.random.key(self.cfg.seed))

  def windows(self, split: str) -> data_lib.WindowSet:
    d = self.cfg.data
    return data_lib.load_windows(d.dataset, split, d.converter, data_dir=d.data_dir or None,
                                 midi_dir=d.midi_dir or None)

  def train_iterator(self, windows):
    d = self.cfg.data
    ds = data_lib.train_dataset(
        windows, self.conv, batch_size=self.local_batch, seed=self.cfg.seed,
        transpose_range=tuple(d.transpose_range),
        max_windows_per_piece=d.max_windows_per_piece or None,
        process_index=jax.process_index(), process_count=jax.process_count())
    return iter(ds)

  def evaluate(self, params, windows, max_batches: int = 0) -> dict:
    """Weighted means over the eval split (all of it when max_batches is 0)."""
    totals, weight = {}, 0.0
    batches = data_lib.eval_batches(windows, self.local_batch, jax.process_index(),
                                    jax.process_count())
    for i, local in enumerate(batches):
      if max_batches and i >= max_batches:
        break
      m = jax.device_get(self.eval_step(params, sharding.global_batch(local, self.mesh),
                                        jax.random.key(i)))
      w = float(m.pop("weight"))
      for k, v in m.items():
        totals[k] = totals.get(k, 0.0) + float(v) * w
      weight += w
    return {f"eval/{k}": v / max(weight, 1.0) for k, v in totals.items()} | {
        "eval/windows": weight}


# --- the loop ----------------------------------------------------------------------------------


class _Writer:
  """Process 0's metrics: TensorBoard scalars and one JSON line per record in metrics.jsonl."""

  def __init__(self, workdir: str):
    from tensorboardX import SummaryWriter  # noqa: PLC0415
    self.tb = SummaryWriter(os.path.join(workdir, "tensorboard"))
    self.jsonl = open(os.path.join(workdir, METRICS_FILE), "a")  # noqa: SIM115

  def write(self, step: int, metrics: dict) -> None:
    for k, v in metrics.items():
      self.tb.add_scalar(k, v, step)
    self.jsonl.write(json.dumps({"step": step} | {k: float(v) for k, v in metrics.items()}) + "\n")
    self.jsonl.flush()

  def close(self) -> None:
    self.tb.close()
    self.jsonl.close()


def _writer(workdir: str) -> _Writer | None:
  return _Writer(workdir) if jax.process_index() == 0 else None


def read_metrics(workdir: str) -> list[dict]:
  """The records of a workdir's metrics.jsonl (train and eval lines), oldest first."""
  path = os.path.join(workdir, METRICS_FILE)
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def train(cfg, workdir: str, *, progress: bool = True, stop_after: int | None = None) -> dict:
  """Trains (or resumes) `cfg` in `workdir` up to cfg.train.num_steps -> last metrics.

  stop_after: stop (with a checkpoint) after this many steps of this invocation (tests).
  """
  check_workdir(cfg, workdir)
  with workdir_lock(workdir):
    return _train(cfg, workdir, progress, stop_after)


def _train(cfg, workdir: str, progress: bool, stop_after: int | None) -> dict:
  run = Run(cfg)
  train_windows = run.windows("train")
  data_lib.check_can_fill(train_windows, run.local_batch, jax.process_count(),
                          f"data set {cfg.data.dataset} (train, {cfg.data.converter})",
                          cfg.data.max_windows_per_piece or None)
  eval_windows = run.windows(cfg.data.eval_split)
  checkpoints.write_config(cfg, workdir)
  it = run.train_iterator(train_windows)
  mngr = checkpoints.training_manager(workdir, cfg)
  state = run.init_state()
  start = 0
  if mngr.latest_step() is not None:
    start = mngr.latest_step()
    try:
      restored = mngr.restore(start, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(run.abstract_state),
          data=grain.checkpoint.CheckpointRestore(it)))
    except (ValueError, KeyError) as e:
      raise TrainError(f"--workdir {workdir}: checkpoint {start} does not fit this config "
                       f"({str(e).splitlines()[0][:100]}); use a new --workdir") from None
    state = restored["state"]
    print(f"resumed from step {start} in {workdir}", flush=True)

  stop = {"signal": None}
  old_handler = signal.signal(signal.SIGTERM, lambda *_: stop.update(signal="SIGTERM"))
  writer = _writer(workdir)
  num_steps = cfg.train.num_steps
  bar = tqdm.tqdm(total=num_steps, initial=start, disable=not progress or None,
                  unit="step", dynamic_ncols=True)
  last, t_log, steps_since = {}, time.perf_counter(), 0
  eval_loss = None
  step = start
  try:
    while step < num_steps:
      batch = sharding.global_batch(next(it), run.mesh)
      state, metrics = run.train_step(state, batch, run.rng)
      step += 1
      steps_since += 1
      bar.update(1)
      at_log = step % cfg.train.log_every_steps == 0 or step == num_steps
      if at_log:
        m = {f"train/{k}": float(v) for k, v in jax.device_get(metrics).items()}
        dt = time.perf_counter() - t_log
        m["train/steps_per_sec"] = steps_since / dt
        m["train/examples_per_sec"] = steps_since * cfg.train.batch_size / dt
        t_log, steps_since = time.perf_counter(), 0
        bar.set_postfix(loss=f"{m['train/loss']:.2f}", ex_s=f"{m['train/examples_per_sec']:.0f}")
        if progress and bar.disable and jax.process_index() == 0:  # no terminal: log lines
          print(f"step {step}/{num_steps}: loss {m['train/loss']:.3f}, r_loss "
                f"{m['train/r_loss']:.3f}, kl_bits {m['train/kl_bits']:.2f}, "
                f"{m['train/steps_per_sec']:.1f} steps/s, "
                f"{m['train/examples_per_sec']:.0f} examples/s", flush=True)
        if writer:
          writer.write(step, m)
        last.update(m)
        if m["train/skip_streak"] >= cfg.train.max_skipped_in_a_row:
          raise TrainError(
              f"step {step}: {int(m['train/skip_streak'])} updates in a row skipped (non-finite "
              f"loss or gradient norm >= {cfg.optim.grad_norm_clip_to_zero}); stopped, the last "
              f"good checkpoint is step {mngr.latest_step()}; lower --config.optim.learning_rate")
      metrics_for_ckpt = None
      if step % cfg.train.eval_every_steps == 0 or step == num_steps:
        ev = run.evaluate(state.params, eval_windows, cfg.train.eval_batches)
        eval_loss = ev.get("eval/loss")
        if writer:
          writer.write(step, ev)
        last.update(ev)
        if eval_loss is not None and math.isfinite(eval_loss):
          metrics_for_ckpt = {"eval_loss": eval_loss}
      force = step == num_steps or stop["signal"] is not None or (
          stop_after is not None and step - start >= stop_after)
      mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                              data=grain.checkpoint.CheckpointSave(it)),
                metrics=metrics_for_ckpt, force=force)
      if stop["signal"] is not None:
        print(f"{stop['signal']}: saved step {step} in {workdir}, exiting", flush=True)
        break
      if stop_after is not None and step - start >= stop_after:
        break
  finally:
    mngr.wait_until_finished()
    mngr.close()
    bar.close()
    if writer:
      writer.close()
    signal.signal(signal.SIGTERM, old_handler)
  last["step"] = step
  return last


def restore_params(cfg, workdir: str, step: int | None = None, run: Run | None = None):
  """Parameters alone of a checkpoint (latest by default), placed for `run`'s mesh."""
  run = run or Run(cfg)
  try:
    return checkpoints.restore_params(workdir, run.abstract_state.params, step)
  except checkpoints.MismatchError as e:
    raise TrainError(f"{e}; pass the config it was trained with: --config "
                     f"{os.path.join(workdir, checkpoints.CONFIG_FILE)}") from None
  except (checkpoints.CheckpointError, ValueError) as e:
    raise TrainError(str(e)) from None


def _differing(saved: dict, cfg, wanted=lambda k: True) -> dict:
  """{key: (saved value, cfg's)} for the flattened keys `wanted` that differ, but for
  RESUMABLE_KEYS."""
  old, new = _flat(saved), _flat(json.loads(cfg.to_json()))
  return {k: (old.get(k), new.get(k)) for k in sorted(set(old) | set(new))
          if k not in RESUMABLE_KEYS and wanted(k) and old.get(k) != new.get(k)}


def _shown(diff: dict, most: int = 4) -> str:
  return ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in list(diff.items())[:most])


def _defines_the_params(key: str) -> bool:
  """What a checkpoint's parameters mean: its model and its encoding (the data set, split,
  batch and the loss's weighting may differ in evaluation)."""
  return key.startswith("model.") or key == "data.converter"


def evaluate(cfg, workdir: str, step: int | None = None, split: str | None = None) -> dict:
  """Held-out metrics of a checkpoint; printed by the CLI and written to eval_<step>.json
  (with `loss_unlike_training` where the loss's settings differ from the training's). `cfg`
  must agree with the workdir's config where `_defines_the_params`."""
  try:
    saved = checkpoints.read_config_dict(workdir) or {}
  except ValueError as e:  # config.json unreadable
    raise TrainError(str(e)) from None
  diff = _differing(saved, cfg, _defines_the_params) if saved else {}
  if diff:
    raise TrainError(f"--workdir {workdir} was trained with another model or encoding "
                     f"({_shown(diff)}); evaluate it with its own config, --config "
                     f"{os.path.join(workdir, checkpoints.CONFIG_FILE)} (the default without "
                     "--config), without overriding model.* or data.converter")
  loss = _differing(saved, cfg, lambda k: k.startswith("loss.")) if saved else {}
  if loss and jax.process_index() == 0:
    print(f"mvae: note: evaluating with a loss unlike the training's ({_shown(loss, 99)})",
          file=sys.stderr)
  run = Run(cfg)
  params, step = restore_params(cfg, workdir, step, run)
  windows = run.windows(split or cfg.data.eval_split)
  if not len(windows):
    raise TrainError(f"data set {cfg.data.dataset}: split {split or cfg.data.eval_split} has no "
                     f"{cfg.data.converter} windows; evaluate on another --split")
  result = {"step": step} | run.evaluate(params, windows, 0)
  if loss:
    result["loss_unlike_training"] = {k: {"trained": a, "evaluated": b}
                                      for k, (a, b) in loss.items()}
  if jax.process_index() == 0:
    with open(os.path.join(workdir, f"eval_{step}.json"), "w") as f:
      json.dump(result, f, indent=1)
  return result


__all__ = ["train", "evaluate", "restore_params", "read_metrics", "Run", "TrainError"]
