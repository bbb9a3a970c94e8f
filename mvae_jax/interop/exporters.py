"""`mvae export`: load a model (workdir, checkpoint or bundle), write it in another format.

Each format checks everything it can before writing, then writes into a temporary folder beside
OUT that is renamed into place: a refused or failed export leaves nothing at OUT.
"""

from __future__ import annotations

import os

import numpy as np

from mvae_jax.interop import bundle as bundle_lib
from mvae_jax.interop import magentajs
from mvae_jax.interop import tf_checkpoint as tfc
from mvae_jax.interop.workdir import check_empty_destination, staged


class ExportError(ValueError):
  """A model that cannot be exported in a format; str() is one line saying why."""


def human(n: int) -> str:
  for unit in ("B", "KiB", "MiB", "GiB"):
    if n < 1024 or unit == "GiB":
      return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
    n /= 1024
  return str(n)


class Source:
  """A model to export: cfg, conv, flat params (name -> float32 array), step, Adam state."""

  def __init__(self, cfg, flat: dict, step: int, path: str, opt=None):
    from mvae_jax.music import converters  # noqa: PLC0415
    self.cfg, self.flat, self.step, self.path, self.opt = cfg, flat, step, path, opt
    self.conv = converters.get_converter(cfg.data.converter)


def _flatten(params) -> dict:
  from flax import traverse_util  # noqa: PLC0415
  return {k: np.asarray(v, np.float32)
          for k, v in traverse_util.flatten_dict(params, sep="/").items()}


def load_source(path: str, optimizer_state: bool = False) -> Source:
  """A workdir (latest checkpoint), `WORKDIR/checkpoints/STEP`, or a bundle folder."""
  if not os.path.exists(path):
    raise ExportError(f"{path}: no such workdir, checkpoint or bundle")
  if bundle_lib.is_bundle(path):
    if optimizer_state:
      raise ExportError(f"{path}: a bundle holds no optimizer state; export from the workdir")
    b = bundle_lib.read(path)
    return Source(b.cfg, b.flat, b.step, path)
  from mvae_jax import generate  # noqa: PLC0415
  model = generate.TrainedModel.load(path)
  opt = None
  if optimizer_state:
    opt = _restore_adam(model.cfg, model.workdir, model.step)
  return Source(model.cfg, _flatten(model.params), model.step, path, opt)


def _restore_adam(cfg, workdir: str, step: int):
  """(count, mu flat, nu flat) of a workdir's checkpoint."""
  import optax  # noqa: PLC0415
  import orbax.checkpoint as ocp  # noqa: PLC0415

  from mvae_jax.train import loop  # noqa: PLC0415
  run = loop.Run(cfg)
  mngr = ocp.CheckpointManager(os.path.join(workdir, "checkpoints"),
                               item_handlers={"state": ocp.StandardCheckpointHandler()})
  try:
    state = mngr.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(run.abstract_state)))["state"]
  finally:
    mngr.close()
  adam = next(s for s in state.opt_state if isinstance(s, optax.ScaleByAdamState))
  return int(adam.count), _flatten(adam.mu), _flatten(adam.nu)


def magenta_tf_tensors(src: Source) -> dict:
  """The variables of a Magenta checkpoint of `src` (names are our parameter paths)."""
  out = dict(src.flat)
  out["global_step"] = np.asarray(src.step, np.int64)
  if src.opt is not None:
    count, mu, nu = src.opt
    for n in src.flat:
      out[n + "/Adam"] = mu[n]
      out[n + "/Adam_1"] = nu[n]
    out["beta1_power"] = np.asarray(0.9 ** (count + 1), np.float32)
    out["beta2_power"] = np.asarray(0.999 ** (count + 1), np.float32)
  return out


def _sizes_line(out: str, src: Source) -> str:
  total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
  ckpt = os.path.join(os.path.abspath(src.path), "checkpoints")
  ref = ""
  if os.path.isdir(ckpt) and not bundle_lib.is_bundle(src.path):
    steps = sorted(d for d in os.listdir(ckpt) if d.isdigit())
    if steps:
      one = os.path.join(ckpt, steps[-1])
      n = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(one) for f in fs)
      ref = f" (the training checkpoint is {human(n)})"
  return f"{human(total)}{ref}"


def export(path: str, fmt: str, out: str, *, quantize: str | None = None,
           optimizer_state: bool = False) -> str:
  check_empty_destination(out, "OUT")
  src = load_source(path, optimizer_state)
  if fmt == "magenta-js":
    try:
      magentajs.check_structure(src.cfg, src.conv)
    except magentajs.MagentaJsError as e:
      raise ExportError(str(e)) from None
    with staged(out, "OUT") as tmp:
      info = magentajs.write(tmp, src.cfg, src.conv, src.flat, quantize)
    q = f", {quantize}-quantized" if quantize else ", float32"
    return (f"exported {src.cfg.name} (step {src.step}) for magenta.js{q}: "
            f"{len(info['files']) - 2} shard(s), {_sizes_line(out, src)} in {out}; load it with "
            "new mm.MusicVAE(URL_OF_THAT_FOLDER)")
  if fmt == "magenta-tf":
    with staged(out, "OUT") as tmp:
      tfc.write(os.path.join(tmp, f"model.ckpt-{src.step}"), magenta_tf_tensors(src))
      with open(os.path.join(tmp, "mvae_config.json"), "w") as f:
        f.write(src.cfg.to_json(indent=1))
    opt = "with Adam's slots" if src.opt is not None else "model variables and global_step"
    return (f"exported {src.cfg.name} (step {src.step}) as a Magenta TF checkpoint ({opt}): "
            f"{os.path.join(out, f'model.ckpt-{src.step}')}, {_sizes_line(out, src)}")
  if fmt == "bundle":
    with staged(out, "OUT") as tmp:
      bundle_lib.write(tmp, src.cfg, src.flat, src.step)
    return (f"exported {src.cfg.name} (step {src.step}) as an inference bundle: "
            f"{_sizes_line(out, src)} in {out}")
  raise ExportError(f"--format {fmt}: choose magenta-js, magenta-tf or bundle")
