"""The grain input pipeline: TFDS NoteSequences -> converter windows -> augmentation -> batches.

Two stages:
1. `load_windows`: every window of a split for a converter, as int16 labels `[N, T, S]` with the
   piece each came from. Read from the cache `mvae prepare` wrote beside the data: one ArrayRecord
   record per window, read on demand by index as grain asks for them (random access), so a
   host holds only the window index (`piece`, 4 bytes a window), not the windows; for converter
   settings it did not cache, a grain pipeline over the TFDS array_record data source parses the
   NoteSequences and runs the converter once, then the result is cached the same way.
2. `train_dataset`: a grain `MapDataset` over those windows: this host's shard
   (`process_index::process_count`), shuffled and repeated with per-epoch reshuffles, then per
   example and per epoch (grain derives each RNG from seed, index and epoch) an optional cap on
   windows per piece (each window of a piece with n windows is kept with probability max_k/n) and
   a fresh transposition; then fixed-shape batches. Everything is a function of the seed, so the
   iterator state (`get_state`/`set_state`) checkpoints and restores exactly.

A batch is a dict of NumPy arrays: `labels` int32 `[B, T, S]`, `lengths` int32 `[B]`, `mask`
float32 `[B]` (0 for eval padding).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys

import grain
import numpy as np

from mvae_jax import datasets as ds_lib
from mvae_jax.music import augment
from mvae_jax.music import converters as conv_lib
from mvae_jax.music._note_seq import NoteSequence


class DataError(ValueError):
  """A data set that cannot feed training; str() is one line with the counts and the fix."""


@dataclasses.dataclass(frozen=True)
class WindowSet:
  """labels `[N, T, S]` int16 (an array, or `datasets.WindowRecords` read from disk on demand),
  piece `[N]` int32 indexing `ids` (piece ids)."""

  labels: np.ndarray
  piece: np.ndarray
  ids: np.ndarray
  name: str = ""

  def __len__(self) -> int:
    return len(self.labels)

  @property
  def num_pieces(self) -> int:
    return len(np.unique(self.piece))


@functools.lru_cache(maxsize=None)
def _warn_if_stale(builder_dir: str, stale: str, command: str) -> None:
  """Once per data set and process: stale data is never used silently."""
  print(f"mvae: warning: data set {builder_dir} was prepared from files that have changed since "
        f"({stale}); training uses the old files. Rebuild it: `{command} --rebuild`",
        file=sys.stderr)


def _builder_or_error(dataset: str, data_dir: str | None, midi_dir: str | None):
  builder = ds_lib.get_builder(dataset, data_dir=data_dir, midi_dir=midi_dir)
  if not builder.is_prepared() and midi_dir and not os.path.isdir(os.path.expanduser(midi_dir)):
    raise DataError(f"--config.data.midi_dir {midi_dir}: no such folder (and data set {dataset} "
                    f"is not prepared for it in {builder.data_dir}); set it to a folder of MIDI "
                    "files")
  if not builder.is_prepared():
    raise DataError(f"data set {dataset} is not prepared in {builder.data_dir}: run "
                    f"`{ds_lib.prepare_command(dataset, midi_dir, data_dir)}` first")
  stale = builder.stale()
  if stale:
    _warn_if_stale(str(builder.data_dir), stale, ds_lib.prepare_command(dataset, midi_dir,
                                                                        data_dir))
  return builder


def _missing_split(dataset: str, split: str, builder) -> DataError:
  stats = builder.stats()
  kept = ", ".join(f"{s} {stats.get('kept', {}).get(s, 0)}" for s in ds_lib.SPLITS)
  return DataError(f"data set {dataset} has no {split} split: none of its kept pieces fell in it "
                   f"(pieces kept: {kept}; rejected: {sum(stats.get('rejected', {}).values())}, "
                   f"see {builder.rejected_file()}); add music to the folder and prepare it "
                   "again with --rebuild, or use another split (--config.data.eval_split=train)")


def _parse_and_window(converter: conv_lib.Converter):
  def fn(example):
    ns = NoteSequence.FromString(example["note_sequence"])
    return str(example["id"], "utf-8") if isinstance(example["id"], bytes) else example["id"], \
        converter.to_labels(ns).astype(np.int16)
  return fn


def load_windows(dataset: str, split: str, converter_name: str,
                 converter: conv_lib.Converter | None = None, data_dir: str | None = None,
                 midi_dir: str | None = None) -> WindowSet:
  """Every window of `split` of a prepared data set for a converter (cached on disk)."""
  builder = _builder_or_error(dataset, data_dir, midi_dir)
  if converter is None:
    converter = conv_lib.get_converter(converter_name)
  if split not in builder.info.splits:
    raise _missing_split(dataset, split, builder)
  path = builder.windows_file(converter_name, split, converter)
  if not os.path.exists(path):
    source = builder.as_data_source(split=split)
    windowed = grain.MapDataset.source(source).map(_parse_and_window(converter))
    per_piece = [(pid, w) for pid, w in windowed if len(w)]
    builder.save_windows(converter_name, split, per_piece, converter)
  labels, piece, ids = ds_lib.read_windows(path)
  return WindowSet(labels, piece, ids, name=f"{dataset}/{split}")


@dataclasses.dataclass(frozen=True)
class _Augment:
  """grain RandomMap: cap on windows per piece, then transposition, per example and epoch."""

  converter: conv_lib.Converter
  transpose_range: tuple[int, int]
  keep_prob: np.ndarray | None  # [N] probability of keeping each window this epoch

  def __call__(self, index_and_labels, rng: np.random.Generator):
    index, labels = index_and_labels
    if self.keep_prob is not None and rng.random() >= self.keep_prob[index]:
      return None
    labels, _ = augment.random_transpose(
        labels.astype(np.int32), rng, self.converter.pitched_streams,
        self.converter.output_depths, *self.transpose_range)
    return labels


def _stack(items: list[np.ndarray]) -> dict:
  labels = np.stack(items).astype(np.int32)
  b, t = labels.shape[:2]
  return {"labels": labels, "lengths": np.full((b,), t, np.int32),
          "mask": np.ones((b,), np.float32)}


def check_can_fill(windows: WindowSet, batch_size: int, process_count: int, what: str,
                   max_windows_per_piece: int | None = None) -> None:
  """Fails at once (Magenta hangs here) when a host's shard cannot fill one batch."""
  per_host = len(windows) // max(process_count, 1)
  usable = per_host
  if max_windows_per_piece:
    counts = np.bincount(windows.piece) if len(windows) else np.zeros(0, int)
    usable = int(np.minimum(counts, max_windows_per_piece).sum()) // max(process_count, 1)
  if usable < batch_size:
    raise DataError(
        f"{what}: {len(windows)} windows from {windows.num_pieces} pieces ({usable} per host per "
        f"epoch over {process_count} host(s)) cannot fill one batch of {batch_size}; lower "
        "--config.train.batch_size, add music to the data set, or use shorter windows")


def train_dataset(windows: WindowSet, converter: conv_lib.Converter, *, batch_size: int,
                  seed: int, transpose_range: tuple[int, int] = (0, 0),
                  max_windows_per_piece: int | None = None, process_index: int = 0,
                  process_count: int = 1) -> grain.IterDataset:
  """Endless shuffled, augmented batches of this host's shard. `batch_size` is per host."""
  check_can_fill(windows, batch_size, process_count, f"data set {windows.name or '?'} "
                 f"({converter.kind}, {converter.slice_bars} bars)", max_windows_per_piece)
  keep_prob = None
  if max_windows_per_piece:
    counts = np.bincount(windows.piece)[windows.piece]
    keep_prob = np.minimum(1.0, max_windows_per_piece / counts)
  labels = windows.labels
  ds = grain.MapDataset.range(len(windows))
  ds = ds[process_index::process_count]
  ds = ds.map(lambda i: (i, labels[i]))
  ds = ds.seed(seed).shuffle().repeat()
  ds = ds.random_map(_Augment(converter, tuple(transpose_range), keep_prob))
  ds = ds.filter(lambda x: x is not None)
  # Per-example work is a few microseconds of NumPy: read in this thread (grain's thread-pool
  # prefetch costs more than it saves here; use `.mp_prefetch` on top for multi-process reading).
  read = grain.ReadOptions(num_threads=0, prefetch_buffer_size=0)
  return ds.to_iter_dataset(read).batch(batch_size, drop_remainder=True, batch_fn=_stack)


def eval_batches(windows: WindowSet, batch_size: int, process_index: int = 0,
                 process_count: int = 1):
  """Every window of this host's shard once, in order, in batches padded with `mask` 0."""
  idx = np.arange(len(windows))[process_index::process_count]
  for start in range(0, len(idx), batch_size):
    chunk = idx[start:start + batch_size]
    batch = _stack([windows.labels[i] for i in chunk])
    pad = batch_size - len(chunk)
    if pad:
      batch = {k: np.concatenate([v, np.zeros((pad,) + v.shape[1:], v.dtype)])
               for k, v in batch.items()}
    yield batch
