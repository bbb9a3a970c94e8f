"""`mvae bench`: train each config of a suite (or reuse its workdir), evaluate them on the same
held-out windows, and write report.md, results.json and the plots into OUT.

Resumable: training resumes from its checkpoints (`loop.train`), and each finished evaluation
is kept as OUT/results/<label>/<evaluation>.json, stamped with the checkpoint step and the
suite's evaluation settings, so a killed bench restarted with the same command redoes only what
was unfinished.

    OUT/suite.json            the resolved suite (checked on resume)
    OUT/runs/<label>/         training workdirs (mvae train layout)
    OUT/results/<label>/*.json
    OUT/report.md, OUT/results.json, OUT/*.png
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import tqdm

from mvae_jax.bench import suite as suite_lib

SUITE_FILE = "suite.json"


class BenchError(RuntimeError):
  """A bench that cannot go on; str() is one line naming the cause and the fix."""


def _read(path: str):
  if os.path.exists(path):
    with open(path) as f:
      return json.load(f)
  return None


def _write(path: str, obj) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(obj, f, indent=1)
  os.replace(tmp, path)  # atomic: a killed bench never leaves half a result


def _check_out(s, out: str) -> None:
  """OUT is writable, and holds either nothing of ours or a run of this very suite."""
  try:
    os.makedirs(out, exist_ok=True)
  except OSError as e:
    raise BenchError(f"--workdir {out}: cannot create it ({e.strerror}); choose another folder")
  saved = _read(os.path.join(out, SUITE_FILE))
  new = json.loads(s.to_json())
  if saved is not None:
    keep = ("eval", "interpolation", "attributes", "throughput")  # may change: results re-made
    diff = sorted(k for k in set(saved) | set(new)
                  if k not in keep and saved.get(k) != new.get(k))
    if diff:
      raise BenchError(f"--workdir {out} holds a bench of another suite or budget (differs in "
                       f"{', '.join(diff)}); rerun with the same suite, preset and overrides, "
                       "or use a new --workdir")
  _write(os.path.join(out, SUITE_FILE), new)


def _cached(path: str, stamp: dict, make):
  """The result at `path` if made with `stamp`, else `make()` saved there with it."""
  old = _read(path)
  if old is not None and old.get("stamp") == stamp:
    return old["result"]
  result = make()
  _write(path, {"stamp": stamp, "result": result})
  return result


class _Data:
  """The suite's windows, read once: held-out (eval split) and training windows."""

  def __init__(self, s, cfg):
    from mvae_jax import data as data_lib  # noqa: PLC0415
    d = cfg.data
    load = lambda split: data_lib.load_windows(  # noqa: E731
        d.dataset, split, d.converter, data_dir=d.data_dir or None, midi_dir=d.midi_dir or None)
    self.held_out = load(s.data.eval_split)
    self.train = load("train")
    if len(self.held_out) < 8:
      raise BenchError(f"data set {d.dataset}: split {s.data.eval_split} has "
                       f"{len(self.held_out)} {d.converter} windows; the bench needs at least 8: "
                       "set --config.data.eval_split to another split or use a larger data set")
    rng = np.random.default_rng(s.seed)
    self.order = rng.permutation(len(self.held_out))  # every evaluation's windows, in this order

  def eval_labels(self, n: int) -> np.ndarray:
    idx = self.order[:n] if n else self.order
    return self.held_out.labels[idx].astype(np.int32)


def run(s, out: str, progress: bool = True) -> dict:
  """Runs suite `s` (suite.load) in `out`; returns the results (as results.json)."""
  from mvae_jax import generate  # noqa: PLC0415
  from mvae_jax import model as model_lib  # noqa: PLC0415
  from mvae_jax.bench import attributes_eval, interpolation, reconstruction  # noqa: PLC0415
  from mvae_jax.bench import report, throughput  # noqa: PLC0415
  from mvae_jax.train import flops as flops_lib  # noqa: PLC0415
  from mvae_jax.train import loop  # noqa: PLC0415
  from mvae_jax.train import steps as steps_lib  # noqa: PLC0415
  from mvae_jax import evaluate  # noqa: PLC0415

  _check_out(s, out)
  cfgs = suite_lib.model_configs(s)
  converters = {c.data.converter for _, c in cfgs}
  if len(converters) > 1:
    raise BenchError(f"suite {s.name}: configs use different converters {sorted(converters)}; "
                     "a suite compares models of one encoding")
  evals = list(s.eval.evaluations)
  conv = model_lib.converter_of(cfgs[0][1])
  if "attributes" in evals and conv.kind == "drums":
    evals.remove("attributes")  # the five attributes are melodic
  stages = [f"train {label}" for label, _ in cfgs] + [f"{e} {label}" for label, _ in cfgs
                                                       for e in evals]
  stages += ["interpolation data space"] if "interpolation" in evals else []
  bar = tqdm.tqdm(total=len(stages), desc=f"bench {s.name}", unit="stage",
                  disable=not progress or None, dynamic_ncols=True, position=0)
  t_start = time.time()
  timings = _read(os.path.join(out, "timings.json")) or {}

  def stage_done(name: str, seconds: float) -> None:
    timings[name] = timings.get(name, 0.0) + seconds
    _write(os.path.join(out, "timings.json"), timings)
    bar.update(1)

  data = _Data(s, cfgs[0][1])  # missing data or too few windows: fail before training
  # 1. training (or reuse)
  workdirs = {}
  for (label, cfg), given in zip(cfgs, s.workdirs):
    t0 = time.time()
    bar.set_postfix_str(f"train {label}")
    if given:
      workdirs[label] = os.path.expanduser(given)
    else:
      workdirs[label] = os.path.join(out, "runs", label)
      try:
        loop.train(cfg, workdirs[label], progress=progress)
      except (loop.TrainError, ValueError) as e:
        raise BenchError(f"training {label} ({cfg.name}): {e}") from None
    stage_done(f"train {label}", time.time() - t0)

  kinds = evaluate.stream_kinds(conv)
  lm, pairs = None, None
  results = {"suite": json.loads(s.to_json()), "configs": {}, "data": {
      "dataset": s.data.dataset, "converter": cfgs[0][1].data.converter, "eval_split": s.data.eval_split,
      "held_out_windows": len(data.held_out), "train_windows": len(data.train)}}
  alphas = np.linspace(0.0, 1.0, s.interpolation.alphas).tolist()
  rates = {}  # the GEMM rate per compute dtype, measured once

  def get_lm():
    nonlocal lm
    if lm is None:
      n = s.interpolation.lm_train_windows
      idx = np.random.default_rng(s.seed).permutation(len(data.train))
      idx = idx[:n] if n else idx
      try:
        lm = interpolation.NgramLM(s.interpolation.lm_order, data.train.labels[idx],
                                   interpolation.alphabet_of(conv))
      except ImportError as e:
        raise BenchError(str(e)) from None
    return lm

  def get_pairs():
    nonlocal pairs
    if pairs is None:
      rng = np.random.default_rng(s.seed + 1)
      idx = interpolation.pick_pairs(len(data.held_out), data.held_out.piece,
                                     s.interpolation.pairs, rng)
      pairs = (data.held_out.labels[idx[:, 0]].astype(np.int32),
               data.held_out.labels[idx[:, 1]].astype(np.int32))
    return pairs

  interp_stamp = {"pairs": s.interpolation.pairs, "alphas": s.interpolation.alphas,
                  "lm_order": s.interpolation.lm_order, "seed": s.seed,
                  "lm_train_windows": s.interpolation.lm_train_windows,
                  "split": s.data.eval_split}
  if "interpolation" in evals:  # the baseline, and the language model's fit
    t0 = time.time()
    bar.set_postfix_str("interpolation data space")
    results["data_interpolation"] = _cached(
        os.path.join(out, "results", "data_interpolation.json"), interp_stamp,
        lambda: interpolation.data_study(*get_pairs(), alphas, get_lm(), s.seed + 2))
    stage_done("interpolation data space", time.time() - t0)

  # 2. evaluations, config by config
  for label, cfg in cfgs:
    try:
      tm = generate.TrainedModel.load(workdirs[label], batch_size=s.eval.batch_size)
    except generate.ModelError as e:
      raise BenchError(f"{label}: {e}") from None
    if tm.cfg.data.converter != cfg.data.converter:
      raise BenchError(f"{label}: {workdirs[label]} holds a {tm.cfg.data.converter} model; this "
                       f"suite compares {cfg.data.converter} models: fix --config.workdirs")
    res = {"config": cfg.name, "workdir": workdirs[label], "step": tm.step,
           "decoder": tm.cfg.model.decoder, "encoder": tm.cfg.model.encoder,
           "parameters": model_lib.count_params(tm.params)}
    base = {"step": tm.step, "workdir": os.path.abspath(workdirs[label])}
    for e in evals:
      t0 = time.time()
      bar.set_postfix_str(f"{e} {label}")
      path = os.path.join(out, "results", label, f"{e}.json")
      if e == "reconstruction":
        stamp = base | {"windows": s.eval.windows, "seed": s.seed, "split": s.data.eval_split}
        def make():
          labels = data.eval_labels(s.eval.windows)
          dec = reconstruction.decode_windows(tm, labels, s.eval.batch_size, s.seed)
          return reconstruction.table_row(dec, labels, data.train.labels, kinds)
      elif e == "interpolation":
        stamp = base | interp_stamp | {"method": s.interpolation.method}
        make = lambda: interpolation.latent_study(tm, *get_pairs(), alphas, get_lm(),  # noqa: E731
                                                  s.interpolation.method)
      elif e == "attributes":
        stamp = base | {"windows": s.attributes.windows, "scale": s.attributes.scale,
                        "seed": s.seed, "split": s.data.eval_split}
        make = lambda: attributes_eval.matrix(  # noqa: E731
            tm, data.eval_labels(s.attributes.windows), s.attributes.scale)
      else:  # throughput: on this machine, now; always re-measured when asked again
        stamp = base | {"steps": s.throughput.steps, "batch": s.throughput.batch_size,
                        "device": flops_lib.device_name()}
        def make():
          dtype = steps_lib.dtype_setting(cfg.train, "compute_dtype")
          if dtype not in rates:
            rates[dtype] = flops_lib.matmul_rate(dtype=dtype)
          tcfg = cfg
          if s.throughput.batch_size:
            from mvae_jax import config as config_lib  # noqa: PLC0415
            tcfg = config_lib.apply_overrides(
                cfg.copy_and_resolve_references(),
                [f"--config.train.batch_size={s.throughput.batch_size}"])
          return throughput.measure(tcfg, s.throughput.steps, rates[dtype])
      res[e] = _cached(path, stamp, make)
      stage_done(f"{e} {label}", time.time() - t0)
    res["train_metrics"] = _last_eval(workdirs[label])
    results["configs"][label] = res
  bar.close()
  results["timings_s"] = timings
  results["wall_s_this_invocation"] = time.time() - t_start
  report.write(out, results)
  return results


def _last_eval(workdir: str) -> dict:
  """The last training log line and eval line of a workdir (empty for an imported one)."""
  from mvae_jax.train import loop  # noqa: PLC0415
  recs = loop.read_metrics(workdir)
  tr = [r for r in recs if "train/loss" in r]
  ev = [r for r in recs if "eval/loss" in r]
  return {"train": tr[-1] if tr else {}, "eval": ev[-1] if ev else {}}


__all__ = ["run", "BenchError"]
