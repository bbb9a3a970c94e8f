"""Data pipeline figures: time to prepare each data set, windows/s from NoteSequence to windows
(converter extraction) and from windows to batches (grain: shuffle, transposition, batching).

  python bench/data_throughput.py [--datasets folk_melodies,game_midi] [--batch_size 512]

Prepares into a fresh temporary folder (so preparation is timed from scratch) unless --data_dir
names one that already holds the data sets. Prints one table per measure.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--datasets", default="folk_melodies,game_midi")
  ap.add_argument("--data_dir", default=None)
  ap.add_argument("--batch_size", type=int, default=512)
  ap.add_argument("--batches", type=int, default=20)
  ap.add_argument("--sequences", type=int, default=300, help="NoteSequences timed per converter")
  args = ap.parse_args()

  import tensorflow_datasets as tfds
  from absl import logging as absl_logging

  from mvae_jax import data, datasets
  from mvae_jax.music import converters
  from mvae_jax.music._note_seq import NoteSequence

  tfds.disable_progress_bar()
  absl_logging.set_verbosity(absl_logging.ERROR)
  data_dir = args.data_dir or tempfile.mkdtemp(prefix="mvae_bench_")
  print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"data_dir {data_dir}")

  print("\n| data set | pieces | kept | prepare time (s) | pieces/s |")
  print("|---|---|---|---|---|")
  built = {}
  for name in args.datasets.split(","):
    t0 = time.perf_counter()
    builder, stats, fresh = datasets.prepare(name, data_dir=data_dir)
    dt = time.perf_counter() - t0
    built[name] = builder
    kept = sum(stats["kept"].values())
    timing = f"{dt:.1f}" if fresh else "(reused)"
    print(f"| {name} | {stats['pieces_read']} | {kept} | {timing} | "
          f"{stats['pieces_read'] / dt:.0f} |" if fresh else
          f"| {name} | {stats['pieces_read']} | {kept} | {timing} | - |")

  print("\n| data set | converter | NoteSequences | windows | windows/s (1 core) |")
  print("|---|---|---|---|---|")
  for name, builder in built.items():
    src = builder.as_data_source(split="train")
    seqs = [NoteSequence.FromString(src[i]["note_sequence"])
            for i in range(min(args.sequences, len(src)))]
    for cname in builder.CONVERTERS:
      conv = converters.get_converter(cname)
      t0 = time.perf_counter()
      n = sum(len(conv.to_labels(ns)) for ns in seqs)
      dt = time.perf_counter() - t0
      print(f"| {name} | {cname} | {len(seqs)} | {n} | {n / dt:.0f} |")

  print(f"\n| data set | converter | augmentation | windows/s to batches of {args.batch_size} |")
  print("|---|---|---|---|")
  for name, builder in built.items():
    for cname in builder.CONVERTERS:
      conv = converters.get_converter(cname)
      w = data.load_windows(name, "train", cname, data_dir=data_dir)
      for label, kw in (("none", {}), ("transpose ±5", {"transpose_range": (-5, 5)}),
                        ("transpose ±5, ≤5 windows/piece",
                         {"transpose_range": (-5, 5), "max_windows_per_piece": 5})):
        if conv.kind == "drums" and kw:
          continue
        try:
          it = iter(data.train_dataset(w, conv, batch_size=args.batch_size, seed=0, **kw))
        except data.DataError as e:
          print(f"| {name} | {cname} | {label} | ({e}) |")
          continue
        next(it)
        t0 = time.perf_counter()
        n = sum(len(next(it)["labels"]) for _ in range(args.batches))
        print(f"| {name} | {cname} | {label} | {n / (time.perf_counter() - t0):.0f} |")


if __name__ == "__main__":
  main()
