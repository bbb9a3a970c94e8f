"""`mvae import`: a Magenta TF checkpoint -> a training workdir of ours.

    report = import_checkpoint("cat-mel_2bar_big.tar", cfg, "runs/mel_big")

Every variable the config needs is matched by name and shape; a mismatch is one `ImportError_`
line naming the variable, both shapes and the experiment (or the `--config.model.*` flags) the
checkpoint does match. Variables the config does not use, and missing ones, are errors, never
dropped silently. Adam's slots and `global_step` are read when asked (`optimizer_state=True`).
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

from mvae_jax.interop import magenta_names as mn
from mvae_jax.interop import tf_checkpoint as tfc
from mvae_jax.interop.workdir import WorkdirError, check_empty_destination, write_workdir


class MagentaImportError(ValueError):
  """A checkpoint that does not fit; str() is one line with the fix."""


def _shape(s) -> str:
  return "[" + ", ".join(str(d) for d in s) + "]"


def _what_matches(model_shapes: dict, cfg) -> str:
  names = mn.matching_experiments(model_shapes)
  if names:
    also = f" (or {', '.join(names[1:4])})" if len(names) > 1 else ""
    return f"the checkpoint matches --config {names[0]}{also}"
  hint = mn.override_hint(cfg.model, mn.infer_model(model_shapes))
  if hint:
    return f"the checkpoint matches no experiment; try --config {cfg.name} {hint}"
  return "the checkpoint matches no experiment"


def check_variables(shapes: dict, cfg) -> dict:
  """The config's expected variables, after checking a checkpoint's name -> shape against them."""
  expected = mn.expected_for(cfg)
  model_shapes, _, _ = mn.split_checkpoint(shapes)
  if not model_shapes:
    raise MagentaImportError("the checkpoint holds no MusicVAE variables (nothing under "
                             "encoder/, decoder/ or core_decoder/); is it a MusicVAE checkpoint?")
  for name, shape in expected.items():
    if name in model_shapes and tuple(model_shapes[name]) != tuple(shape):
      raise MagentaImportError(
          f"variable {name}: config {cfg.name} expects {_shape(shape)}, the checkpoint has "
          f"{_shape(model_shapes[name])}; {_what_matches(model_shapes, cfg)}")
  missing = sorted(set(expected) - set(model_shapes))
  unused = sorted(set(model_shapes) - set(expected))
  if missing or unused:
    parts = []
    if missing:
      parts.append(f"{len(missing)} variable(s) of config {cfg.name} missing (first: "
                   f"{missing[0]})")
    if unused:
      parts.append(f"{len(unused)} checkpoint variable(s) the config does not use (first: "
                   f"{unused[0]})")
    raise MagentaImportError("; ".join(parts) + f"; {_what_matches(model_shapes, cfg)}")
  return expected


def _adam_count(values: dict, global_step: int | None) -> int:
  """Updates Adam has made: TF1 keeps beta2_power = 0.999^(t+1) (beta1_power underflows first)."""
  b2 = values.get("beta2_power")
  if b2 is not None and 0 < float(b2) < 1:
    return max(int(round(math.log(float(b2)) / math.log(0.999))) - 1, 0)
  return int(global_step or 0)


def read_checkpoint(path: str, cfg, optimizer_state: bool = False, scratch: str | None = None):
  """(params nested dict, global_step or None, adam (count, mu, nu) flat dicts or None, report)."""
  from flax import traverse_util  # noqa: PLC0415
  reader = tfc.Reader(path, scratch)
  shapes = reader.shapes()
  expected = check_variables(shapes, cfg)
  flat = {}
  for name in expected:
    a = reader.read(name)
    if a.dtype != np.float32:
      raise MagentaImportError(f"variable {name}: dtype {a.dtype}, expected float32")
    flat[name] = a
  model_shapes, opt_shapes, other = mn.split_checkpoint(shapes)
  step = int(reader.read(mn.GLOBAL_STEP)) if mn.GLOBAL_STEP in shapes else None
  adam = None
  if optimizer_state:
    need = [n + s for n in expected for s in mn.OPTIMIZER_SUFFIXES]
    lacking = [n for n in need if n not in shapes]
    if lacking:
      raise MagentaImportError(f"--optimizer_state: the checkpoint has no Adam slot {lacking[0]} "
                               f"({len(lacking)} of {len(need)} missing); import without it")
    slots = reader.read_all(need + [n for n in mn.OPTIMIZER_GLOBALS if n in shapes])
    for n in need:
      if slots[n].shape != flat[n.rsplit("/", 1)[0]].shape:
        raise MagentaImportError(f"variable {n}: shape {_shape(slots[n].shape)} differs from its "
                                 "variable's")
    adam = (_adam_count(slots, step),
            {n: slots[n + "/Adam"] for n in expected}, {n: slots[n + "/Adam_1"] for n in expected})
  report = {"checkpoint": reader.prefix, "variables": len(expected),
            "parameters": int(sum(int(np.prod(s)) for s in expected.values())),
            "global_step": step,
            "optimizer_variables": len(opt_shapes),
            "optimizer_state": "imported" if adam is not None else (
                "not imported (fresh optimizer; --optimizer_state imports it)" if opt_shapes
                else "none in the checkpoint"),
            "not_imported": sorted(n for n in other if n != mn.GLOBAL_STEP)}
  return traverse_util.unflatten_dict(flat, sep="/"), step, adam, report


def _opt_state_from_adam(cfg, params, adam):
  import jax.numpy as jnp  # noqa: PLC0415
  import optax  # noqa: PLC0415
  from flax import traverse_util  # noqa: PLC0415

  from mvae_jax import model as model_lib  # noqa: PLC0415
  from mvae_jax.train import steps  # noqa: PLC0415
  count, mu, nu = adam
  tx = steps.make_optimizer(steps.step_config_of(cfg, model_lib.converter_of(cfg)))
  state = tx.init(params)
  unflat = lambda d: traverse_util.unflatten_dict(  # noqa: E731
      {k: jnp.asarray(v, jnp.float32) for k, v in d.items()}, sep="/")
  return tuple(optax.ScaleByAdamState(count=jnp.asarray(count, jnp.int32), mu=unflat(mu),
                                      nu=unflat(nu)) if isinstance(s, optax.ScaleByAdamState)
               else s for s in state)


def import_checkpoint(path: str, cfg, workdir: str, *, reset_step: bool = False,
                      optimizer_state: bool = False) -> dict:
  """Writes `workdir` (new or empty) from Magenta checkpoint `path` -> a report dict."""
  import tempfile  # noqa: PLC0415
  check_empty_destination(workdir)
  with tempfile.TemporaryDirectory(prefix="mvae_import_") as scratch:
    params, step, adam, report = read_checkpoint(path, cfg, optimizer_state, scratch)
    if reset_step and adam is not None:
      raise MagentaImportError("--reset_step with --optimizer_state: Adam's state belongs to "
                               "its step; use one of them")
    at = 0 if reset_step or step is None else step
    opt_state = _opt_state_from_adam(cfg, params, adam) if adam is not None else None
    report |= {"config": cfg.name, "workdir": os.path.abspath(workdir), "step": at}
    write_workdir(workdir, cfg, params, at, opt_state,
                  extra_files={"imported_from.json": json.dumps(report, indent=1)})
  return report


__all__ = ["import_checkpoint", "read_checkpoint", "check_variables", "MagentaImportError",
           "WorkdirError"]
