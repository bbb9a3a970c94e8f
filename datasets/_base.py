"""The shared TFDS builder: pieces of music -> serialized NoteSequence protos in array_record.

Each corpus lists its pieces (`_pieces`, cheap, no parsing) and says how to load one
(`load_piece`, a module-level function so worker processes can run it). The base class parses
pieces in a process pool, rejects those that give no NoteSequence or no notes with a one-line
reason, splits by a hash of the piece's source so windows of one piece never straddle splits,
extracts the windows of the corpus's converters (cached beside the data, reused by the input
pipeline), and writes `extraction_stats.json`. No TensorFlow is needed to build or read it.
"""

from __future__ import annotations

import abc
import collections
import dataclasses
import hashlib
import json
import multiprocessing
import os
from typing import Callable, Iterable, Iterator

import numpy as np
import tensorflow_datasets as tfds
import tqdm

from mvae_jax.music import converters as conv_lib
from mvae_jax.music._note_seq import NoteSequence
from mvae_jax.music.io import MusicFileError

SPLITS = ("train", "validation", "test")
# Percent of pieces per split, by hash of the piece's source.
SPLIT_PERCENT = {"train": 90, "validation": 5, "test": 5}
STATS_FILE = "extraction_stats.json"
WINDOWS_DIR = "windows"


@dataclasses.dataclass(frozen=True)
class Piece:
  """One piece of music: `id` is unique and stable; `split_key` (the source file) picks its split;
  `load(payload)` -> NoteSequence, raising MusicFileError with a one-line reason."""

  id: str
  split_key: str
  source: str
  load: Callable[[object], NoteSequence]
  payload: object


def split_of(split_key: str) -> str:
  """Deterministic split of a source: sha256 of its key, mod 100, against SPLIT_PERCENT."""
  bucket = int(hashlib.sha256(split_key.encode("utf-8")).hexdigest(), 16) % 100
  edge = 0
  for split in SPLITS:
    edge += SPLIT_PERCENT[split]
    if bucket < edge:
      return split
  return SPLITS[-1]


def _category(reason: str) -> str:
  return reason.split(":", 1)[0]


def process_piece(piece: Piece, converter_names: tuple[str, ...]) -> dict:
  """Worker: load, check, serialize and window one piece. Never raises for bad music."""
  out = {"id": piece.id, "source": piece.source, "split": split_of(piece.split_key)}
  try:
    ns = piece.load(piece.payload)
  except MusicFileError as e:
    return {**out, "rejected": "unparseable", "detail": str(e)}
  except Exception as e:  # noqa: BLE001  (a corpus file that defeats every reader)
    return {**out, "rejected": "unparseable", "detail": f"{piece.source}: {type(e).__name__}: {e}"}
  if not ns.notes:
    return {**out, "rejected": "no notes", "detail": f"{piece.source}: the file has no notes"}
  ns.id = piece.id
  out["note_sequence"] = ns.SerializeToString()
  out["num_notes"] = len(ns.notes)
  out["windows"], out["reasons"] = {}, {}
  for name in converter_names:
    ext = conv_lib.get_converter(name).extract(ns)
    out["windows"][name] = ext.labels.astype(np.int16)
    if not len(ext.labels):
      out["reasons"][name] = ext.reason
  return out


def _process_star(args):
  return process_piece(*args)


def parallel_map(fn, items: list, workers: int | None = None) -> Iterator:
  """`map(fn, items)` in order, in a process pool when there is more than one core and item."""
  workers = workers or min(os.cpu_count() or 1, 8)
  if workers <= 1 or len(items) < 8:
    yield from map(fn, items)
    return
  ctx = multiprocessing.get_context("forkserver")
  with ctx.Pool(workers) as pool:
    yield from pool.imap(fn, items, chunksize=max(1, min(64, len(items) // (workers * 8))))


class NoteSequenceBuilder(tfds.core.GeneratorBasedBuilder):
  """Base TFDS builder of NoteSequence protos; subclasses define `_pieces` and `CONVERTERS`."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}
  CONVERTERS: tuple[str, ...] = ()
  DESCRIPTION = ""

  def __init__(self, *args, workers: int | None = None, **kwargs):
    self._workers = workers
    self._stats = None
    self._windows = None
    super().__init__(*args, **kwargs)

  # --- to define in subclasses ------------------------------------------------------------

  @abc.abstractmethod
  def _pieces(self) -> list[Piece]:
    """Every piece of the corpus, listed without parsing."""

  # --- TFDS -------------------------------------------------------------------------------

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=self.DESCRIPTION,
        features=tfds.features.FeaturesDict({
            "id": tfds.features.Text(),
            "source": tfds.features.Text(),
            "note_sequence": tfds.features.Tensor(shape=(), dtype=np.object_),
            "num_notes": tfds.features.Scalar(dtype=np.int32),
        }),
        supervised_keys=None,
    )

  def _split_generators(self, dl_manager):
    pieces = self._pieces()
    if not pieces:
      raise MusicFileError(f"{self.name}: no pieces found to build the data set from")
    self._stats = {
        "dataset": self.name, "pieces_read": len(pieces),
        "rejected": collections.Counter(), "rejected_examples": {},
        "kept": collections.Counter(),
        "windows": {c: collections.Counter() for c in self.CONVERTERS},
        "no_windows": {c: collections.Counter() for c in self.CONVERTERS},
    }
    self._windows = {s: {c: [] for c in self.CONVERTERS} for s in SPLITS}
    by_split = {s: [p for p in pieces if split_of(p.split_key) == s] for s in SPLITS}
    # TFDS cannot write an empty split: a small corpus may have no validation or test pieces.
    return {s: self._generate_examples(by_split[s]) for s in SPLITS if by_split[s]}

  def _generate_examples(self, pieces: list[Piece]) -> Iterable:
    args = [(p, tuple(self.CONVERTERS)) for p in pieces]
    split = split_of(pieces[0].split_key)
    results = parallel_map(_process_star, args, self._workers)
    for res in tqdm.tqdm(results, total=len(args), desc=f"{self.name} {split}", unit=" pieces",
                         leave=False, disable=None):
      if "rejected" in res:
        self._stats["rejected"][res["rejected"]] += 1
        self._stats["rejected_examples"].setdefault(res["rejected"], res["detail"])
        continue
      split = res["split"]
      self._stats["kept"][split] += 1
      for c in self.CONVERTERS:
        labels = res["windows"][c]
        self._stats["windows"][c][split] += len(labels)
        if len(labels):
          self._windows[split][c].append((res["id"], labels))
        else:
          self._stats["no_windows"][c][_category(res["reasons"][c])] += 1
      yield res["id"], {"id": res["id"], "source": res["source"],
                        "note_sequence": res["note_sequence"], "num_notes": res["num_notes"]}

  def download_and_prepare(self, *args, **kwargs):
    """Builds (if not built yet) the array_record data, the window caches and the statistics."""
    kwargs.setdefault("file_format", "array_record")
    built = self.is_prepared()
    super().download_and_prepare(*args, **kwargs)
    if built or self._stats is None:
      return
    for split in SPLITS:
      for c in self.CONVERTERS:
        self.save_windows(c, split, self._windows[split][c])
    with open(os.path.join(self.data_dir, STATS_FILE), "w") as f:
      json.dump(self._stats, f, indent=1, sort_keys=True)

  def is_prepared(self) -> bool:
    return os.path.exists(os.path.join(self.data_dir, "dataset_info.json"))

  def windows_file(self, converter_name: str, split: str,
                   converter: conv_lib.Converter | None = None) -> str:
    """The cache of a split's windows for a converter (`labels`, `piece`, `ids` in an .npz)."""
    return windows_path(os.path.join(self.data_dir, WINDOWS_DIR), converter_name, split,
                        converter)

  def save_windows(self, converter_name: str, split: str,
                   per_piece: list[tuple[str, np.ndarray]],
                   converter: conv_lib.Converter | None = None) -> str:
    """Writes that cache from (piece id, windows `[n, T, S]`) pairs; returns its path."""
    wdir = os.path.join(self.data_dir, WINDOWS_DIR)
    os.makedirs(wdir, exist_ok=True)
    return write_windows(wdir, converter_name, split, per_piece, converter)

  def stats(self) -> dict:
    path = os.path.join(self.data_dir, STATS_FILE)
    if not os.path.exists(path):
      return {}
    with open(path) as f:
      return json.load(f)


# --- window caches -------------------------------------------------------------------------------


def converter_key(name: str, converter: conv_lib.Converter | None = None) -> str:
  """A file-name key for a converter's settings: the name plus a hash of its fields."""
  converter = converter or conv_lib.get_converter(name)
  digest = hashlib.sha256(repr(converter).encode()).hexdigest()[:10]
  return f"{name}-{digest}"


def windows_path(wdir: str, name: str, split: str,
                 converter: conv_lib.Converter | None = None) -> str:
  return os.path.join(wdir, f"{converter_key(name, converter)}.{split}.npz")


def write_windows(wdir: str, name: str, split: str, per_piece: list[tuple[str, np.ndarray]],
                  converter: conv_lib.Converter | None = None) -> str:
  """Saves windows `[N, T, S]` int16 with `piece` `[N]` (index into `ids`), sorted by piece id."""
  per_piece = sorted(per_piece, key=lambda x: x[0])
  conv = converter or conv_lib.get_converter(name)
  shape = (0, conv.window_steps, conv.num_streams)
  labels = (np.concatenate([w for _, w in per_piece]).astype(np.int16) if per_piece
            else np.zeros(shape, np.int16))
  piece = np.concatenate([np.full(len(w), k, np.int32) for k, (_, w) in enumerate(per_piece)]
                         ) if per_piece else np.zeros((0,), np.int32)
  path = windows_path(wdir, name, split, converter)
  tmp = path + ".tmp.npz"
  np.savez(tmp, labels=labels, piece=piece, ids=np.asarray([i for i, _ in per_piece], dtype=str))
  os.replace(tmp, path)
  return path


def format_stats(stats: dict) -> str:
  """Human-readable extraction statistics."""
  kept = ", ".join(f"{s} {stats['kept'].get(s, 0)}" for s in SPLITS)
  lines = [f"data set {stats['dataset']}: {stats['pieces_read']} pieces read, "
           f"{sum(stats['kept'].values())} kept ({kept})"]
  if stats["rejected"]:
    lines.append("  rejected: " + ", ".join(f"{k} {v}" for k, v in sorted(stats["rejected"].items())))
    for k, v in sorted(stats["rejected_examples"].items()):
      lines.append(f"    e.g. {v}")
  for c, counts in stats["windows"].items():
    per = ", ".join(f"{s} {counts.get(s, 0)}" for s in SPLITS)
    none = stats["no_windows"].get(c, {})
    why = ("; pieces without windows: " + ", ".join(f"{k} {v}" for k, v in sorted(none.items()))
           ) if none else ""
    lines.append(f"  {c}: windows {per}{why}")
  return "\n".join(lines)
