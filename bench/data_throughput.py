"""Data pipeline figures: time to prepare each data set, windows/s from NoteSequence to windows
(converter extraction) and from windows to batches (grain: shuffle, transposition, batching).

  python bench/data_throughput.py [--datasets folk_melodies,game_midi] [--batch_size 512]
  python bench/data_throughput.py --scale 1,10,100 --datasets game_midi --scale_converter trio_16bar

--scale replicates the prepared train windows of the first data set k times (the pieces copied
under new ids, as if the corpus had k times the files) and, in a fresh process per size, streams
batches through the training pipeline (grain: shard, shuffle, transposition ±5, batch) from the
ArrayRecord window cache, printing examples/s and the process's peak RSS; the `in memory` rows
load every window into an array first (what each host did before).

Prepares into a fresh temporary folder (so preparation is timed from scratch) unless --data_dir
names one that already holds the data sets. Prints one table per measure.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import numpy as np


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--datasets", default="folk_melodies,game_midi")
  ap.add_argument("--data_dir", default=None)
  ap.add_argument("--batch_size", type=int, default=512)
  ap.add_argument("--batches", type=int, default=20)
  ap.add_argument("--sequences", type=int, default=300, help="NoteSequences timed per converter")
  ap.add_argument("--scale", default="", help="corpus sizes, e.g. 1,10,100 (see above)")
  ap.add_argument("--scale_converter", default="trio_16bar")
  ap.add_argument("--measure", default="", help=argparse.SUPPRESS)  # child: INDEX_PATH,MODE
  args = ap.parse_args()
  if args.measure:
    return measure(args)

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
  if args.scale:
    return scale(args, data_dir)

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


def scale(args, data_dir: str) -> None:
  """Replicated corpora at each size; one measuring child process per size and mode."""
  import subprocess  # noqa: PLC0415
  import sys  # noqa: PLC0415

  from mvae_jax import datasets  # noqa: PLC0415
  from mvae_jax.datasets import _base  # noqa: PLC0415

  name, cname = args.datasets.split(",")[0], args.scale_converter
  builder, _, _ = datasets.prepare(name, data_dir=data_dir)
  from mvae_jax import data  # noqa: PLC0415
  data.load_windows(name, "train", cname, data_dir=data_dir)  # make sure the cache exists
  labels, piece, ids = datasets.read_windows(builder.windows_file(cname, "train"))
  base = [(str(pid), np.asarray(labels[np.flatnonzero(piece == j)])) for j, pid in enumerate(ids)]
  out = tempfile.mkdtemp(prefix="mvae_scale_", dir=data_dir)
  print(f"\n{name} {cname} train windows replicated; batches of {args.batch_size}, "
        f"transposition ±5; {args.batches} batches timed after one warm-up batch\n")
  print("| corpus | windows | cache on disk (MB) | reading | examples/s | peak RSS (MiB) |")
  print("|---|---|---|---|---|---|")
  for k in (int(x) for x in args.scale.split(",")):
    wdir = os.path.join(out, f"x{k}")
    os.makedirs(wdir)
    per_piece = [(f"{r:04d}/{pid}", w) for r in range(k) for pid, w in base]
    path = _base.write_windows(wdir, cname, "train", per_piece)
    mb = sum(os.path.getsize(os.path.join(wdir, f)) for f in os.listdir(wdir)) / 2**20
    n = sum(len(w) for _, w in per_piece)
    for mode in ("stream", "memory"):
      child = subprocess.run(
          [sys.executable, __file__, "--measure", f"{path},{mode},{cname}", "--batch_size",
           str(args.batch_size), "--batches", str(args.batches)],
          capture_output=True, text=True, check=True)
      eps, rss = child.stdout.split()[-2:]
      label = "ArrayRecord, on demand" if mode == "stream" else "in memory"
      print(f"| {k}x | {n} | {mb:.0f} | {label} | {float(eps):.0f} | {float(rss):.0f} |")


def measure(args) -> None:
  """Child: examples/s and peak RSS of the training pipeline over one window cache."""
  import resource  # noqa: PLC0415

  from mvae_jax import data, datasets  # noqa: PLC0415
  from mvae_jax.music import converters  # noqa: PLC0415

  path, mode, cname = args.measure.split(",")
  labels, piece, ids = datasets.read_windows(path)
  if mode == "memory":
    labels = np.asarray(labels)
  w = data.WindowSet(labels, piece, ids, "scaled")
  conv = converters.get_converter(cname)
  it = iter(data.train_dataset(w, conv, batch_size=args.batch_size, seed=0,
                               transpose_range=(-5, 5)))
  next(it)
  t0 = time.perf_counter()
  n = sum(len(next(it)["labels"]) for _ in range(args.batches))
  eps = n / (time.perf_counter() - t0)
  print(eps, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


if __name__ == "__main__":
  main()
