"""The shared TFDS builder: pieces of music -> serialized NoteSequence protos in array_record.

Each corpus lists its pieces (`_pieces`, cheap, no parsing) and says how to load one
(`load_piece(payload, limits)`, a module-level function so worker processes can run it). The
base class builds in two passes. First every piece is parsed, checked and windowed in worker
processes with a time limit and a memory cap (`_workers.map_limited`, `Limits`); each piece is
kept or rejected with a reason (`rejected.tsv` beside the data, counted in the statistics), and
kept pieces are staged on disk per split. Then TFDS writes the splits that received pieces; an
empty split is a warning, a build with no usable piece one error line with the reason counts.
Splits are by a hash of the piece's source, so windows of one piece never straddle splits; the
windows of the corpus's converters are cached beside the data (reused by the input pipeline),
with `extraction_stats.json` and the inputs' fingerprint (`inputs.json`). No TensorFlow is
needed to build or read it.
"""

from __future__ import annotations

import abc
import collections
import csv
import dataclasses
import functools
import hashlib
import itertools
import json
import os
import pickle
import shutil
import tempfile
from typing import Callable, Iterable

import numpy as np
import tensorflow_datasets as tfds
import tqdm
from array_record.python.array_record_module import ArrayRecordReader, ArrayRecordWriter

from mvae_jax.datasets import _workers
from mvae_jax.music import converters as conv_lib
from mvae_jax.music._note_seq import NoteSequence
from mvae_jax.music.errors import MusicFileError
from mvae_jax.music.limits import Limits

SPLITS = ("train", "validation", "test")
# Percent of pieces per split, by hash of the piece's source.
SPLIT_PERCENT = {"train": 90, "validation": 5, "test": 5}
STATS_FILE = "extraction_stats.json"
REJECTED_FILE = "rejected.tsv"
INPUTS_FILE = "inputs.json"
WINDOWS_DIR = "windows"
# Windows per ArrayRecord chunk, and the reader's options: random reads from a cache of 423,700
# trio windows ran at 341/s with one window a chunk (grain's default) and 7,488/s with 64 and an
# in-memory chunk index (2 CPU cores; bench/data_throughput.py --scale shows the effect).
WINDOWS_PER_CHUNK = 64
READER_OPTIONS = "readahead_buffer_size:0,index_storage_option:in_memory"


@dataclasses.dataclass(frozen=True)
class Piece:
  """One piece of music: `id` is unique and stable; `split_key` (the source file) picks its split;
  `load(payload, limits)` -> NoteSequence, raising MusicFileError with a one-line reason;
  `file`: the file it is read from (its size, mtime and content go into the inputs'
  fingerprint);
  `precheck(payload)`: optional, cheap and safe, raises MusicFileError for a piece not worth
  loading (run in the build's own process, before any worker is asked to load it)."""

  id: str
  split_key: str
  source: str
  load: Callable[[object, Limits], NoteSequence]
  payload: object
  file: str = ""
  precheck: Callable[[object], None] | None = None


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


def _rejected(piece: Piece, reason: str, detail: str) -> dict:
  return {"id": piece.id, "source": piece.source, "split": split_of(piece.split_key),
          "rejected": reason, "detail": detail}


def process_piece(piece: Piece, converter_names: tuple[str, ...], limits: Limits) -> dict:
  """Worker: load, check, serialize and window one piece. Never raises for bad music."""
  try:
    if piece.precheck is not None:
      piece.precheck(piece.payload)
    ns = piece.load(piece.payload, limits)
  except MusicFileError as e:
    return _rejected(piece, e.reason, str(e))
  except MemoryError:
    raise  # counted as "memory limit" by the pool
  except Exception as e:  # noqa: BLE001  (a corpus file that defeats every reader)
    return _rejected(piece, "unparseable", f"{piece.source}: {type(e).__name__}: {e}")
  if not ns.notes:
    return _rejected(piece, "no notes", f"{piece.source}: the file has no notes")
  out = {"id": piece.id, "source": piece.source, "split": split_of(piece.split_key)}
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


def _prechecked(piece: Piece) -> dict | None:
  """The rejection of a piece its precheck turns down, else None."""
  if piece.precheck is None:
    return None
  try:
    piece.precheck(piece.payload)
  except MusicFileError as e:
    return _rejected(piece, e.reason, str(e))
  return None


def _to_example(res: dict) -> tuple[str, dict]:
  """A kept piece's (key, TFDS example)."""
  return res["id"], {"id": res["id"], "source": res["source"],
                     "note_sequence": res["note_sequence"], "num_notes": res["num_notes"]}


def _pool_failure(piece: Piece, reason: str, detail: str) -> dict:
  return _rejected(piece, reason, f"{piece.source}: {detail}")


def _digest(path: str) -> str:
  h = hashlib.sha256()
  try:
    with open(path, "rb") as f:
      for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
  except OSError:
    return ""
  return h.hexdigest()


def _stat(path: str) -> tuple[int, int]:
  try:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns
  except OSError:
    return -1, -1


def _root(files: list[str]) -> str:
  return os.path.commonpath([os.path.dirname(f) for f in files]) if files else ""


def _sealed(root: str, entries: list) -> dict:
  entries = sorted(entries)
  digest = hashlib.sha256(json.dumps(entries).encode()).hexdigest()
  return {"sha256": digest, "root": root, "files": entries}


def fingerprint(files: Iterable[str], root: str | None = None) -> dict:
  """The inputs' fingerprint: every file's path relative to `root` (default: their common
  folder), size, mtime in ns and content sha256, sorted; the root and a sha256 of it all."""
  return fingerprint_change({}, files, root)[1]  # every file new: each one read


def fingerprint_change(old: dict, files: Iterable[str],
                       root: str | None = None) -> tuple[str, dict]:
  """('' when `files` are as fingerprinted in `old`, else e.g. 'files added 3, removed 1,
  changed 2'; their fingerprint now). Files are matched by their path below `root` (default:
  their common folder), so a corpus installed elsewhere is the same corpus; one whose mtime
  moved counts as changed only if its content did (a reinstall rewrites every file as it was).
  Only such files are read."""
  files = sorted(set(files))
  root = _root(files) if root is None else root
  now = {os.path.relpath(f, root): f for f in files}
  old_root = old.get("root", _root([e[0] for e in old.get("files", [])]))  # before: absolute
  was = {os.path.relpath(e[0], old_root) if os.path.isabs(e[0]) else e[0]: e[1:]
         for e in old.get("files", [])}
  entries, changed = [], 0
  for rel, path in now.items():
    size, mtime = _stat(path)
    old_size, old_mtime, *old_digest = was.get(rel, (None, None))
    same = (size, mtime) == (old_size, old_mtime)
    digest = old_digest[0] if same and old_digest else _digest(path)
    changed += rel in was and not same and (size != old_size or [digest] != old_digest)
    entries.append([rel, size, mtime, digest])
  added, removed = len(now.keys() - was.keys()), len(was.keys() - now.keys())
  what = (f"files added {added}, removed {removed}, changed {changed}"
          if added or removed or changed else "")
  return what, _sealed(root, entries)


class NoteSequenceBuilder(tfds.core.GeneratorBasedBuilder):
  """Base TFDS builder of NoteSequence protos; subclasses define `_pieces` and `CONVERTERS`."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}
  CONVERTERS: tuple[str, ...] = ()
  DESCRIPTION = ""

  def __init__(self, *args, workers: int | None = None, limits: Limits | None = None,
               beam_options=None, **kwargs):
    self._workers = workers
    self._limits = limits or Limits()
    self._beam_options = beam_options  # Beam PipelineOptions: build through Apache Beam
    self._stats = None
    self._windows = None
    self._rejected_rows = None
    self._staging = None
    super().__init__(*args, **kwargs)

  # --- to define in subclasses ------------------------------------------------------------

  @abc.abstractmethod
  def _pieces(self) -> list[Piece]:
    """Every piece of the corpus, listed without parsing."""

  def input_files(self) -> list[str]:
    """The files the data set is built from (their fingerprint tells when it is stale)."""
    return sorted({p.file for p in self._pieces() if p.file})

  def input_root(self) -> str | None:
    """The folder the input files' paths are recorded below (None: their common folder)."""
    return None

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

  def _what(self) -> str:
    return self.name

  def _new_stats(self, pieces_read: int) -> dict:
    return {
        "dataset": self.name, "pieces_read": pieces_read,
        "rejected": collections.Counter(), "rejected_examples": {},
        "kept": collections.Counter(),
        "windows": {c: collections.Counter() for c in self.CONVERTERS},
        "no_windows": {c: collections.Counter() for c in self.CONVERTERS},
        "empty_splits": [],
        "limits": dataclasses.asdict(self._limits),
    }

  def _split_generators(self, dl_manager):
    pieces = self._pieces()
    if not pieces:
      raise MusicFileError(f"{self._what()}: no pieces found to build the data set from")
    self._stats = self._new_stats(len(pieces))
    self._windows = {s: {c: [] for c in self.CONVERTERS} for s in SPLITS}
    self._rejected_rows = []
    self._staging = tempfile.mkdtemp(prefix=f"{self.name}-staging-", dir=self._data_dir_root)
    if self._beam_options is not None:
      return self._beam_split_generators(pieces)
    self._stage(pieces)
    kept = [s for s in SPLITS if self._stats["kept"][s]]
    return self._kept_splits(kept, len(pieces), self._generate_examples)

  def _beam_split_generators(self, pieces: list[Piece]) -> dict:
    """Beam: stage every piece (first pipeline), then one TFDS transform per non-empty split."""
    from mvae_jax.datasets import _beam  # noqa: PLC0415  (the `beam` extra)
    fn = functools.partial(process_piece, converter_names=(), limits=self._limits)
    _beam.stage(pieces, fn, _pool_failure, self._limits, self._beam_options, self._staging,
                SPLITS, split_of)
    kept = [s for s in SPLITS if any(
        f.startswith(f"kept-{s}") and os.path.getsize(os.path.join(self._staging, f))
        for f in os.listdir(self._staging))]
    self._read_beam_rejections()
    return self._kept_splits(kept, len(pieces), lambda s: _beam.ReadStaged(
        os.path.join(self._staging, f"kept-{s}*"), _to_example))

  def _kept_splits(self, kept: list[str], pieces_read: int, generator) -> dict:
    """{split: generator} for the splits that received pieces; none: one line with the counts."""
    if not kept:
      counts = ", ".join(f"{k} {v}" for k, v in sorted(
          collections.Counter(r[1] for r in self._rejected_rows).items()))
      example = min(self._rejected_rows)[2] if self._rejected_rows else ""
      raise MusicFileError(f"{self._what()}: no usable file among {pieces_read} ({counts}); "
                           f"e.g. {example}")
    # TFDS cannot write an empty split: a small corpus may have no validation or test pieces.
    self._stats["empty_splits"] = [s for s in SPLITS if s not in kept]
    return {s: generator(s) for s in kept}

  def _stage(self, pieces: list[Piece]) -> None:
    """First pass: every piece through the limited workers; kept ones pickled per split."""
    fn = functools.partial(process_piece, converter_names=tuple(self.CONVERTERS),
                           limits=self._limits)
    workers = self._workers or min(os.cpu_count() or 1, 8)
    prechecked = [_prechecked(p) for p in pieces]  # here: a worker task costs ~0.3 ms
    results = itertools.chain(
        (r for r in prechecked if r is not None),
        _workers.map_limited(fn, [dataclasses.replace(p, precheck=None)  # passed: not twice
                                  for p, r in zip(pieces, prechecked) if r is None],
                             _pool_failure, workers=workers, time_limit=self._limits.time_limit,
                             memory_limit_mb=self._limits.memory_limit_mb))
    files = {s: open(self._staged(s), "wb") for s in SPLITS}
    try:
      for res in tqdm.tqdm(results, total=len(pieces), desc=self.name, unit=" pieces",
                           leave=False, disable=None):
        self._count(res)
        if "rejected" not in res:
          pickle.dump(_to_example(res), files[res["split"]])
    finally:
      for f in files.values():
        f.close()

  def _staged(self, split: str) -> str:
    return os.path.join(self._staging, f"{split}.pickle")

  def _count(self, res: dict) -> None:
    if "rejected" in res:
      self._rejected_rows.append((res["source"], res["rejected"], res["detail"]))
      return
    split = res["split"]
    self._stats["kept"][split] += 1
    for c in self.CONVERTERS:
      labels = res["windows"][c]
      self._stats["windows"][c][split] += len(labels)
      if len(labels):
        self._windows[split][c].append((res["id"], labels))
      else:
        self._stats["no_windows"][c][_category(res["reasons"][c])] += 1

  def _generate_examples(self, split: str) -> Iterable:
    with open(self._staged(split), "rb") as f:
      while True:
        try:
          yield pickle.load(f)
        except EOFError:
          return

  def download_and_prepare(self, *args, **kwargs):
    """Builds (if not built yet) the array_record data, the window caches and the statistics."""
    kwargs.setdefault("file_format", "array_record")
    if self._beam_options is not None:
      kwargs["download_config"] = tfds.download.DownloadConfig(beam_options=self._beam_options)
    built = self.is_prepared()
    try:
      super().download_and_prepare(*args, **kwargs)
      if not built and self._stats is not None:
        if self._beam_options is not None:
          self._collect_beam_results()
        self._write_side_files()
    finally:
      if self._staging:
        shutil.rmtree(self._staging, ignore_errors=True)

  def _read_beam_rejections(self) -> None:
    for path in sorted(os.listdir(self._staging)):
      if path.startswith("rejected"):
        with open(os.path.join(self._staging, path), newline="") as f:
          self._rejected_rows.extend(tuple(r) for r in csv.reader(f, delimiter="\t"))

  def _collect_beam_results(self) -> None:
    """After a Beam build: kept counts and windows, read back from the written data."""
    for split in self.info.splits:
      for example in self.as_data_source(split=split):
        ns = NoteSequence.FromString(example["note_sequence"])
        res = {"id": ns.id, "split": split, "windows": {}, "reasons": {}}
        for name in self.CONVERTERS:
          ext = conv_lib.get_converter(name).extract(ns)
          res["windows"][name] = ext.labels.astype(np.int16)
          res["reasons"][name] = ext.reason
        self._count(res)

  def _write_side_files(self) -> None:
    rows = sorted(self._rejected_rows)
    for _, reason, detail in rows:
      self._stats["rejected"][reason] += 1
      self._stats["rejected_examples"].setdefault(reason, detail)
    for split in SPLITS:
      for c in self.CONVERTERS:
        self.save_windows(c, split, self._windows[split][c])
    with open(os.path.join(self.data_dir, REJECTED_FILE), "w", newline="") as f:
      w = csv.writer(f, delimiter="\t", lineterminator="\n")
      w.writerow(("path", "reason", "detail"))
      w.writerows(rows)
    with open(os.path.join(self.data_dir, INPUTS_FILE), "w") as f:
      json.dump(fingerprint(self.input_files(), self.input_root()), f)
    with open(os.path.join(self.data_dir, STATS_FILE), "w") as f:
      json.dump(self._stats, f, indent=1, sort_keys=True)

  def is_prepared(self) -> bool:
    return os.path.exists(os.path.join(self.data_dir, "dataset_info.json"))

  def stale(self) -> str:
    """'' when the inputs are as they were at prepare time, else what changed (one phrase)."""
    path = os.path.join(self.data_dir, INPUTS_FILE)
    if not os.path.exists(path):
      return ""
    with open(path) as f:
      old = json.load(f)
    try:
      what, now = fingerprint_change(old, self.input_files(), self.input_root())
    except MusicFileError as e:  # the folder is gone
      return str(e)
    if not what and now["sha256"] != old.get("sha256"):  # same contents, new mtimes or place:
      try:  # recorded, so that they are not read again at every start (best effort)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
          json.dump(now, f)
        os.replace(tmp, path)
      except OSError:
        pass
    return what

  def rejected_file(self) -> str:
    return os.path.join(self.data_dir, REJECTED_FILE)

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
  """Saves windows `[N, T, S]` int16, sorted by piece id: one ArrayRecord record per window
  (`records_path`), and an index .npz (returned) with `piece` `[N]` (index into `ids`), `ids`
  and `shape` (T, S). The index is written last: its presence means the cache is complete."""
  per_piece = sorted(per_piece, key=lambda x: x[0])
  conv = converter or conv_lib.get_converter(name)
  path = windows_path(wdir, name, split, converter)
  records = records_path(path)
  writer = ArrayRecordWriter(records + ".tmp", f"group_size:{WINDOWS_PER_CHUNK}")
  for _, w in per_piece:
    for window in w.astype(np.int16):
      writer.write(window.tobytes())
  writer.close()
  os.replace(records + ".tmp", records)
  piece = np.concatenate([np.full(len(w), k, np.int32) for k, (_, w) in enumerate(per_piece)]
                         ) if per_piece else np.zeros((0,), np.int32)
  tmp = path + ".tmp.npz"
  np.savez(tmp, piece=piece, ids=np.asarray([i for i, _ in per_piece], dtype=str),
           shape=np.asarray((conv.window_steps, conv.num_streams)))
  os.replace(tmp, path)
  return path


def records_path(index_path: str) -> str:
  return index_path[:-len(".npz")] + ".array_record"


class WindowRecords:
  """The windows `[N, T, S]` int16 of a cache, read from its ArrayRecord file on demand (random
  access; chunks of WINDOWS_PER_CHUNK windows, the chunk index held in memory): memory does not
  grow with the corpus. Indexing with an int gives `[T, S]`; with a slice or an index array, a
  stacked `[n, T, S]` array. Picklable (the reader reopens), so grain can use it in workers."""

  def __init__(self, path: str, shape: tuple[int, int]):
    self.path, self._step_shape = path, tuple(int(x) for x in shape)
    self._reader = None
    self._len = self._open().num_records()

  def _open(self) -> ArrayRecordReader:
    if self._reader is None:
      self._reader = ArrayRecordReader(self.path, READER_OPTIONS)
    return self._reader

  def __getstate__(self):
    return {**self.__dict__, "_reader": None}

  def __len__(self) -> int:
    return self._len

  @property
  def shape(self) -> tuple[int, int, int]:
    return (len(self),) + self._step_shape

  dtype = np.dtype(np.int16)
  ndim = 3

  def _one(self, i: int) -> np.ndarray:
    return np.frombuffer(self._open().read([int(i)])[0], np.int16).reshape(self._step_shape)

  def __getitem__(self, index):
    if isinstance(index, tuple):  # e.g. labels[:512, :, 0]: windows first, then within them
      return self[index[0]][(slice(None),) * (not np.isscalar(index[0])) + index[1:]]
    if isinstance(index, (int, np.integer)):
      return self._one(index if index >= 0 else len(self) + index)
    idx = np.arange(len(self))[index]
    return np.stack([self._one(i) for i in idx]) if len(idx) else np.zeros(
        (0,) + self._step_shape, np.int16)

  def __iter__(self):
    return (self._one(i) for i in range(len(self)))

  def __array__(self, dtype=None, copy=None):
    out = self[:]
    return out if dtype is None else out.astype(dtype)

  def astype(self, dtype) -> np.ndarray:
    return np.asarray(self).astype(dtype)


def read_windows(path: str):
  """A cache's (labels, piece `[N]`, ids): labels are `WindowRecords` (an array for caches written
  before the ArrayRecord format)."""
  with np.load(path) as z:
    if "labels" in z:
      return z["labels"], z["piece"], z["ids"]
    return WindowRecords(records_path(path), tuple(z["shape"])), z["piece"], z["ids"]


def format_stats(stats: dict) -> str:
  """Human-readable extraction statistics."""
  kept = ", ".join(f"{s} {stats['kept'].get(s, 0)}" for s in SPLITS)
  lines = [f"data set {stats['dataset']}: {stats['pieces_read']} pieces read, "
           f"{sum(stats['kept'].values())} kept ({kept})"]
  if stats["rejected"]:
    lines.append("  rejected: " + ", ".join(f"{k} {v}" for k, v in sorted(stats["rejected"].items())))
    for k, v in sorted(stats["rejected_examples"].items()):
      lines.append(f"    e.g. {v}")
  for split in stats.get("empty_splits", []):
    lines.append(f"  warning: split {split} is empty (no kept piece fell in it); training or "
                 f"evaluating on it fails until the folder has more music")
  for c, counts in stats["windows"].items():
    per = ", ".join(f"{s} {counts.get(s, 0)}" for s in SPLITS)
    none = stats["no_windows"].get(c, {})
    why = ("; pieces without windows: " + ", ".join(f"{k} {v}" for k, v in sorted(none.items()))
           ) if none else ""
    lines.append(f"  {c}: windows {per}{why}")
  return "\n".join(lines)
