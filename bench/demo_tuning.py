"""Tuning runs for the demo's model: train a variant, print its held-out figures (one JSON line).

  python bench/demo_tuning.py NAME STEPS [--base CONFIG] [--config.KEY=VALUE ...]

Trains CONFIG (default cat-mel_2bar_small_tiny) with the overrides in /tmp/mvae_tuning/NAME,
evaluating every 250 steps on the first 4 batches of the validation split (the loop's
metrics.jsonl holds the curve), then measures argmax reconstruction from μ on the first 512
validation windows of folk_melodies, overall and on onset steps, and appends the result to
/tmp/mvae_tuning/results.jsonl. The README's demo tuning table comes from these runs.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
from absl import logging


def main(argv: list[str]) -> None:
  from mvae_jax import config, evaluate, generate  # noqa: PLC0415
  from mvae_jax import data as data_lib  # noqa: PLC0415
  from mvae_jax.train import loop  # noqa: PLC0415

  logging.set_verbosity(logging.ERROR)
  name, steps, *rest = argv
  base = "cat-mel_2bar_small_tiny"
  if rest[:1] == ["--base"]:
    base, rest = rest[1], rest[2:]
  out = os.path.join("/tmp/mvae_tuning", name)
  cfg = config.load(base, [f"--config.train.num_steps={int(steps)}",
                           "--config.train.eval_every_steps=250",
                           "--config.train.checkpoint_every_steps=100000",
                           "--config.train.log_every_steps=250",
                           "--config.train.eval_batches=4", *rest])
  t0 = time.time()
  last = loop.train(cfg, out, progress=False)
  model = generate.TrainedModel.load(out)
  val = data_lib.load_windows(cfg.data.dataset, "validation", cfg.data.converter,
                              data_dir=cfg.data.data_dir or None)
  labels = val.labels[:512].astype(np.int32)
  _, mu, _ = model.encode_labels(labels)
  acc = evaluate.accuracies(model.decode_labels(mu, 0.0), labels, evaluate.stream_kinds(model.conv))
  res = {"name": name, "steps": int(steps), "overrides": rest, "train_s": round(time.time() - t0),
         "recon": round(acc["overall"], 4), "onset": round(acc["onset"], 4),
         "eval_kl_bits": round(last.get("eval/kl_bits", -1), 1),
         "eval_r_loss": round(last.get("eval/r_loss", -1), 2),
         "eval_teacher_forced": round(last.get("eval/accuracy", -1), 4)}
  print(json.dumps(res), flush=True)
  with open("/tmp/mvae_tuning/results.jsonl", "a") as f:
    f.write(json.dumps(res) + "\n")


if __name__ == "__main__":
  main(sys.argv[1:])
