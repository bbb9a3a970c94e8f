"""`mvae demo`: the main job on a fresh install, end to end on the CPU in a few minutes.

1. prepares the embedded default data set (folk_melodies; reused when present);
2. trains `cat-mel_2bar_small_tiny` (resuming its workdir if present);
3. writes 8 samples and a 7-step interpolation between two held-out melodies as MIDI + PNG;
4. prints the figures that show it learned music: held-out reconstruction accuracy (teacher-forced
   and free-running), and the share of samples whose notes all fit one major/minor key, beside
   the same share for random label sequences.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

DIATONIC = (0, 2, 4, 5, 7, 9, 11)


def in_one_key(ns) -> bool:
  """All pitched notes inside one of the 12 diatonic (major/natural minor) pitch-class sets."""
  pcs = {n.pitch % 12 for n in ns.notes if not n.is_drum}
  if not pcs:
    return False
  return any(pcs <= {(k + d) % 12 for d in DIATONIC} for k in range(12))


def run(workdir: str, out: str, steps: int = 1500, data_dir: str | None = None) -> dict:
  from mvae_jax import config, datasets, generate  # noqa: PLC0415
  from mvae_jax import data as data_lib  # noqa: PLC0415
  from mvae_jax.music import plot  # noqa: PLC0415
  from mvae_jax.music._note_seq import midi_io  # noqa: PLC0415
  from mvae_jax.train import loop  # noqa: PLC0415

  t0 = time.time()
  print("1/4 preparing folk_melodies (the embedded default data set)...", flush=True)
  builder, stats, built = datasets.prepare("folk_melodies", data_dir=data_dir)
  print(f"    {'built' if built else 'reused'}: {builder.data_dir}; mel_2bar windows "
        f"{stats['windows']['mel_2bar']}", flush=True)

  print(f"2/4 training cat-mel_2bar_small_tiny for {steps} steps in {workdir} ...", flush=True)
  overrides = [f"--config.train.num_steps={steps}", "--config.train.eval_every_steps=500",
               "--config.train.checkpoint_every_steps=500"]
  if data_dir:
    overrides.append(f"--config.data.data_dir={data_dir}")
  cfg = config.load("cat-mel_2bar_small_tiny", overrides)
  last = loop.train(cfg, workdir)
  print(f"    step {last['step']}: train loss {last.get('train/loss', float('nan')):.2f}", flush=True)

  print("3/4 writing samples and an interpolation ...", flush=True)
  model = generate.TrainedModel.load(workdir)
  conv = model.conv
  os.makedirs(out, exist_ok=True)
  samples = model.sample(8, temperature=0.5, seed=0)
  val = data_lib.load_windows("folk_melodies", "validation", "mel_2bar", data_dir=data_dir)
  rng = np.random.default_rng(0)
  ia, ib = rng.choice(len(val), 2, replace=False)
  a, b = conv.to_sequence(val.labels[ia]), conv.to_sequence(val.labels[ib])
  path = model.interpolate(a, b, 7)
  files = []
  for mode, seqs in (("sample", samples), ("interpolate", path)):
    for i, ns in enumerate(seqs):
      f = os.path.join(out, f"{cfg.name}_{mode}_{i:02d}.mid")
      midi_io.note_sequence_to_midi_file(ns, f)
      files.append(f)
  plot.pianoroll_png(samples, os.path.join(out, f"{cfg.name}_sample.png"),
                     [f"sample {i} (T=0.5)" for i in range(len(samples))])
  titles = ["A"] + [f"{t:.2f}" for t in np.linspace(0, 1, 7)[1:-1]] + ["B"]
  plot.pianoroll_png(path, os.path.join(out, f"{cfg.name}_interpolate.png"), titles, strip=True,
                     seconds=model._window_seconds(path[0]))

  print("4/4 measuring ...", flush=True)
  n_eval = min(len(val), 512)
  z, mu, _ = model.encode_labels(val.labels[:n_eval].astype(np.int32))
  recon = model.decode_labels(mu, temperature=0.0)
  labels = val.labels[:n_eval].astype(np.int32)
  sampled_acc = float(np.mean(np.all(recon == labels, axis=-1)))
  many = model.sample(200, temperature=0.5, seed=1)
  rand_labels = rng.integers(0, 90, (200, conv.window_steps, 1))
  random_seqs = [conv.to_sequence(l) for l in rand_labels]
  ev = loop.evaluate(cfg, workdir)
  report = {
      "steps": last["step"],
      "heldout_windows": int(ev["eval/windows"]),
      "heldout_teacher_forced_accuracy": round(ev["eval/accuracy"], 4),
      "heldout_reconstruction_accuracy_argmax": round(sampled_acc, 4),
      "majority_class_accuracy": round(float(np.mean(labels == 0)), 4),
      "samples_in_one_key": round(float(np.mean([in_one_key(s) for s in many])), 3),
      "random_sequences_in_one_key": round(float(np.mean([in_one_key(s) for s in random_seqs])),
                                           3),
      "minutes": round((time.time() - t0) / 60, 1),
      "out": os.path.abspath(out),
  }
  with open(os.path.join(out, "demo_report.json"), "w") as f:
    json.dump(report, f, indent=1)
  print(json.dumps(report, indent=1))
  print(f"MIDI and PNG files are in {os.path.abspath(out)}")
  return report
