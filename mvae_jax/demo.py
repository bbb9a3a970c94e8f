"""`mvae demo`: the main job on a fresh install, end to end on a 2-core CPU in under 8 minutes.

1. prepares the embedded default data set (folk_melodies; reused when present);
2. trains `demo-mel_2bar` (a 2-bar melody MusicVAE sized for the budget; resumes its workdir);
3. writes 8 samples, a reconstruction beside its input and a 7-step interpolation between two
   held-out melodies, as MIDI files and one PNG;
4. measures, on every held-out (validation) window: argmax reconstruction accuracy from μ, overall
   and on note-onset steps, beside the trivial baselines on the same windows (most frequent
   class; "repeat the previous token"); and for the samples and the training windows the
   statistics of `music.stats` (key fit, notes per bar, pitch range, mean interval), counting the
   samples outside the training windows' 5th-95th percentiles, beside how often 8 real held-out
   windows drawn at random have none outside (`chance_none_outside`). The learning curve (the
   training loop's metrics.jsonl) goes into the report too.

Everything derives from the config's seed: two runs give the same report (wall times aside).
"""

from __future__ import annotations

import json
import math
import os
import time

import numpy as np

from mvae_jax import allocator

CONFIG = "demo-mel_2bar"
TARGETS = {"reconstruction_overall": 0.90, "reconstruction_onset": 0.60, "samples_outside": 0}
NUM_SAMPLES = 8
TEMPERATURE = 0.5


def learning_curve(records: list[dict]) -> list[dict]:
  """The eval records of metrics.jsonl, each with the train loss logged at the same step."""
  train = {r["step"]: r for r in records if "train/loss" in r}
  curve = []
  for r in records:
    if "eval/r_loss" not in r:
      continue
    t = train.get(r["step"], {})
    curve.append({"step": r["step"], "train_loss": round(t.get("train/loss", float("nan")), 3),
                  "eval_r_loss": round(r["eval/r_loss"], 3),
                  "eval_kl_bits": round(r["eval/kl_bits"], 2),
                  "eval_teacher_forced_accuracy": round(r["eval/accuracy"], 4),
                  "eval_argmax_reconstruction": round(r["eval/sampled_accuracy"], 4)})
  return curve


def chance_none_outside(num_outside: int, num_windows: int, draws: int = NUM_SAMPLES) -> float:
  """Probability that `draws` windows picked at random (without replacement) from `num_windows`,
  of which `num_outside` are outside the reference range, are all inside: what a sampler that
  returns real melodies would score on the "none of 8 outside" goal."""
  if draws > num_windows:
    return 0.0
  return math.comb(num_windows - num_outside, draws) / math.comb(num_windows, draws)


def music_report(samples: np.ndarray, train: np.ndarray, heldout: np.ndarray) -> dict:
  """Statistics of sampled, training and held-out label windows `[N, T, S]` (music.stats)."""
  from mvae_jax.music import stats  # noqa: PLC0415

  s, t, h = stats.batch_stats(samples), stats.batch_stats(train), stats.batch_stats(heldout)
  h_out = stats.outside(h, t)
  return {
      "statistics": list(stats.NAMES),
      "samples": stats.percentiles(s),
      "training_windows": stats.percentiles(t),
      "samples_each": [dict(zip(stats.NAMES, np.round(row, 3).tolist())) for row in s],
      "samples_outside_training_p5_p95": int(stats.outside(s, t).sum()),
      "num_samples": len(s),
      # real melodies fall outside on some statistic at this rate: the reference for the count
      "heldout_windows_outside_rate": round(float(h_out.mean()), 3),
      # ... so a draw of len(samples) real held-out windows has none outside this often
      "heldout_draw_none_outside_probability":
          round(chance_none_outside(int(h_out.sum()), len(h), len(s)), 3),
  }


def _round(d):
  if isinstance(d, dict):
    return {k: _round(v) for k, v in d.items()}
  return round(d, 4) if isinstance(d, float) else d


def run(workdir: str, out: str, steps: int | None = None, data_dir: str | None = None,
        progress: bool = True) -> dict:
  from mvae_jax import config, datasets, evaluate, generate  # noqa: PLC0415
  from mvae_jax import data as data_lib  # noqa: PLC0415
  from mvae_jax.music import plot  # noqa: PLC0415
  from mvae_jax.music._note_seq import midi_io  # noqa: PLC0415
  from mvae_jax.train import loop  # noqa: PLC0415

  t0 = time.time()
  print("1/4 preparing folk_melodies (the embedded default data set)...", flush=True)
  builder, stats_, built = datasets.prepare("folk_melodies", data_dir=data_dir)
  print(f"    {'built' if built else 'reused'}: {builder.data_dir}; mel_2bar windows "
        f"{stats_['windows']['mel_2bar']}", flush=True)
  t_data = time.time() - t0

  overrides = [f"--config.train.num_steps={steps}"] if steps else []
  if data_dir:
    overrides.append(f"--config.data.data_dir={data_dir}")
  cfg = config.load(CONFIG, overrides)
  print(f"2/4 training {cfg.name} for {cfg.train.num_steps} steps in {workdir} ...", flush=True)
  t1 = time.time()
  last = loop.train(cfg, workdir, progress=progress)
  t_train = time.time() - t1
  print(f"    step {last['step']}: train loss {last.get('train/loss', float('nan')):.2f}",
        flush=True)

  print("3/4 measuring on held-out windows ...", flush=True)
  model = generate.TrainedModel.load(workdir)
  conv = model.conv
  d = cfg.data
  train = data_lib.load_windows(d.dataset, "train", d.converter, data_dir=d.data_dir or None)
  val = data_lib.load_windows(d.dataset, d.eval_split, d.converter, data_dir=d.data_dir or None)
  labels = val.labels.astype(np.int32)
  _, mu, _ = model.encode_labels(labels)
  recon = model.decode_labels(mu, temperature=0.0)
  kinds = evaluate.stream_kinds(conv)
  rec = evaluate.reconstruction_report(recon, labels, train.labels.astype(np.int32), kinds)
  samples = model.sample(NUM_SAMPLES, temperature=TEMPERATURE, seed=cfg.seed)
  sample_labels = np.stack([conv.encode_window(ns) for ns in samples])
  music = music_report(sample_labels, train.labels, labels)

  print("4/4 writing MIDI files and pictures ...", flush=True)
  os.makedirs(out, exist_ok=True)
  rng = np.random.default_rng(cfg.seed)
  ia, ib = rng.choice(len(val), 2, replace=False)
  a, b = conv.to_sequence(labels[ia]), conv.to_sequence(labels[ib])
  path = model.interpolate(a, b, 7)
  ra, rb = model.reconstruct([a, b])
  for mode, seqs in (("sample", samples), ("interpolate", path), ("input", [a, b]),
                     ("reconstruction", [ra, rb])):
    for i, ns in enumerate(seqs):
      midi_io.note_sequence_to_midi_file(ns, os.path.join(out, f"{cfg.name}_{mode}_{i:02d}.mid"))
  png = os.path.join(out, f"{cfg.name}.png")
  half = NUM_SAMPLES // 2
  titles = ["A"] + [f"{t:.2f}" for t in np.linspace(0, 1, 7)[1:-1]] + ["B"]
  plot.strips_png([
      (f"samples 0-{half - 1} (z ~ N(0, I), temperature {TEMPERATURE})", samples[:half],
       [f"sample {i}" for i in range(half)]),
      (f"samples {half}-{NUM_SAMPLES - 1}", samples[half:],
       [f"sample {i}" for i in range(half, NUM_SAMPLES)]),
      ("held-out melodies and their reconstructions (argmax from μ)", [a, ra, b, rb],
       ["input A", "reconstruction A", "input B", "reconstruction B"]),
      ("interpolation A -> B (slerp on μ, argmax)", path, titles),
  ], png, seconds=model._window_seconds(a))

  m = rec["model"]
  report = {
      "config": cfg.name,
      "steps": last["step"],
      "batch_size": cfg.train.batch_size,
      "heldout": f"{d.dataset} {d.eval_split}: all {rec['windows']} {d.converter} windows",
      "reconstruction": _round(rec),
      "targets": {
          "reconstruction_overall": {"goal": TARGETS["reconstruction_overall"],
                                     "got": round(m["overall"], 4),
                                     "met": m["overall"] >= TARGETS["reconstruction_overall"]},
          "reconstruction_onset": {"goal": TARGETS["reconstruction_onset"],
                                   "got": round(m["onset"], 4),
                                   "met": m["onset"] >= TARGETS["reconstruction_onset"]},
          "samples_outside": {"goal": TARGETS["samples_outside"],
                              "got": music["samples_outside_training_p5_p95"],
                              "chance_real_windows_meet_it":
                                  music["heldout_draw_none_outside_probability"],
                              "met": music["samples_outside_training_p5_p95"]
                              <= TARGETS["samples_outside"]},
      },
      "final_eval": {k.split("/")[1]: round(v, 4) for k, v in last.items()
                     if k.startswith("eval/")},
      "music": music,
      "learning_curve": learning_curve(loop.read_metrics(workdir)),
      "seconds": {"data": round(t_data), "train": round(t_train),
                  "total": round(time.time() - t0), "allocator": allocator.describe()},
      "out": os.path.abspath(out),
      "picture": os.path.abspath(png),
  }
  with open(os.path.join(out, "demo_report.json"), "w") as f:
    json.dump(report, f, indent=1)
  print(summary(report))
  print(f"MIDI files, {os.path.basename(png)} and demo_report.json are in {os.path.abspath(out)}")
  return report


def summary(report: dict) -> str:
  """The report's headline figures, a few lines for the terminal."""
  r, m = report["reconstruction"], report["music"]
  lines = [f"{report['config']}, {report['steps']} steps of batch {report['batch_size']}; "
           f"held-out: {report['heldout']}",
           "argmax reconstruction from mu   overall  onset steps"]
  for name in ("model", "majority_class", "repeat_previous"):
    lines.append(f"  {name:<30}{r[name]['overall']:>8.4f}{r[name]['onset']:>12.4f}")
  lines.append(f"samples outside the training windows' p5-p95 on some statistic: "
               f"{m['samples_outside_training_p5_p95']} of {m['num_samples']} "
               f"(held-out real windows: {m['heldout_windows_outside_rate']:.3f} of them; "
               f"{m['num_samples']} real windows drawn at random have none outside with "
               f"probability {m['heldout_draw_none_outside_probability']:.3f})")
  for k, t in report["targets"].items():
    lines.append(f"target {k}: goal {t['goal']}, got {t['got']}: "
                 f"{'met' if t['met'] else 'NOT met'}")
  s = report["seconds"]
  lines.append(f"time: data {s['data']} s, training {s['train']} s, total {s['total']} s "
               f"({s.get('allocator', 'system malloc')})")
  return "\n".join(lines)
