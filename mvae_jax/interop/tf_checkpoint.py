"""TensorFlow's checkpoint format (V2 "tensor bundle"), read and written without TensorFlow.

A checkpoint `PREFIX` is
* `PREFIX.index`: a LevelDB-style sorted table (uncompressed blocks, each with a masked CRC-32C
  trailer; a footer with the index block's handle and magic 0xdb4775248b80fb57). Key "" holds a
  `BundleHeaderProto` (num_shards, endianness, version); every other key is a variable name whose
  value is a `BundleEntryProto` (dtype, shape, shard_id, offset, size, masked CRC-32C of the bytes).
* `PREFIX.data-0000K-of-0000N`: the shards, raw little-endian C-order tensor bytes.
* `checkpoint` (in the folder): a text proto naming the latest prefix.

Only what Magenta's checkpoints use is supported: numeric dense tensors (no strings, no partitioned
variables). Every length, offset and checksum is checked on read: a truncated or corrupted shard is
one `CheckpointError` line naming the file and the variable.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
import struct
import tarfile
import tempfile

import numpy as np

from mvae_jax.interop._crc32c import crc32c, mask, unmask

_MAGIC = 0xDB4775248B80FB57
_FOOTER = 48
_BLOCK_SIZE = 262144  # TensorFlow's table::Options defaults
_RESTART_INTERVAL = 16

# tensorflow/core/framework/types.proto
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8,
          9: np.int64, 10: np.bool_, 17: np.uint16, 19: np.float16, 22: np.uint32, 23: np.uint64}
_DTYPE_CODES = {np.dtype(v): k for k, v in DTYPES.items()}


class CheckpointError(ValueError):
  """A checkpoint that cannot be read; str() is one line naming the file and what is wrong."""


@dataclasses.dataclass(frozen=True)
class Entry:
  name: str
  dtype: np.dtype | None  # None: a dtype this reader does not support (e.g. strings)
  shape: tuple[int, ...]
  shard_id: int
  offset: int
  size: int
  crc32c: int  # unmasked


# --- protobuf wire format (only varints, fixed32 and length-delimited fields) ----------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
  result = shift = 0
  while True:
    if pos >= len(buf):
      raise IndexError("truncated varint")
    b = buf[pos]
    pos += 1
    result |= (b & 0x7F) << shift
    if not b & 0x80:
      return result, pos
    shift += 7


def _fields(buf: bytes):
  """(field number, wire type, value) of a serialized message; value is int or bytes."""
  pos = 0
  while pos < len(buf):
    key, pos = _varint(buf, pos)
    num, wt = key >> 3, key & 7
    if wt == 0:
      val, pos = _varint(buf, pos)
    elif wt == 1:
      val, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
    elif wt == 2:
      n, pos = _varint(buf, pos)
      val, pos = buf[pos:pos + n], pos + n
    elif wt == 5:
      val, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
    else:
      raise ValueError(f"wire type {wt}")
    yield num, wt, val


def _enc_varint(v: int) -> bytes:
  out = bytearray()
  while True:
    b = v & 0x7F
    v >>= 7
    if v:
      out.append(b | 0x80)
    else:
      out.append(b)
      return bytes(out)


def _enc_field(num: int, wt: int, val) -> bytes:
  key = _enc_varint((num << 3) | wt)
  if wt == 0:
    return key + _enc_varint(val)
  if wt == 5:
    return key + struct.pack("<I", val)
  return key + _enc_varint(len(val)) + val


def _parse_entry(name: str, buf: bytes) -> Entry:
  dtype_code, shape, shard, offset, size, crc = 0, [], 0, 0, 0, 0
  for num, _, val in _fields(buf):
    if num == 1:
      dtype_code = val
    elif num == 2:
      for n2, _, dim in _fields(val):
        if n2 == 2:
          shape.append(next(v for n3, _, v in _fields(dim) if n3 == 1) if dim else 0)
    elif num == 3:
      shard = val
    elif num == 4:
      offset = val
    elif num == 5:
      size = val
    elif num == 6:
      crc = val
    elif num == 7:
      raise CheckpointError(f"variable {name}: partitioned (sliced) variables are not supported")
  # An unsupported dtype (e.g. the string object graph of TF2 checkpoints) fails when read.
  dtype = np.dtype(DTYPES[dtype_code]) if dtype_code in DTYPES else None
  return Entry(name, dtype, tuple(shape), shard, offset, size, unmask(crc))


def _encode_entry(e: Entry) -> bytes:
  shape = b"".join(_enc_field(2, 2, _enc_field(1, 0, d) if d else b"") for d in e.shape)
  out = _enc_field(1, 0, _DTYPE_CODES[np.dtype(e.dtype)]) + _enc_field(2, 2, shape)
  if e.shard_id:
    out += _enc_field(3, 0, e.shard_id)
  if e.offset:
    out += _enc_field(4, 0, e.offset)
  if e.size:
    out += _enc_field(5, 0, e.size)
  return out + _enc_field(6, 5, mask(e.crc32c))


def _encode_header(num_shards: int) -> bytes:
  # num_shards, endianness LITTLE (0, omitted), version {producer: 1}
  return _enc_field(1, 0, num_shards) + _enc_field(3, 2, _enc_field(1, 0, 1))


# --- the sorted table ------------------------------------------------------------------------


def _read_block(data: bytes, offset: int, size: int, path: str) -> bytes:
  if offset + size + 5 > len(data):
    raise CheckpointError(f"{path}: truncated (a block ends past the end of the file)")
  block = data[offset:offset + size]
  ctype = data[offset + size]
  stored = struct.unpack_from("<I", data, offset + size + 1)[0]
  if unmask(stored) != crc32c(data[offset:offset + size + 1]):
    raise CheckpointError(f"{path}: corrupted (block checksum mismatch at byte {offset})")
  if ctype != 0:
    raise CheckpointError(f"{path}: compressed table blocks (type {ctype}) are not supported")
  return block


def _block_entries(block: bytes):
  n_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
  end = len(block) - 4 - 4 * n_restarts
  pos, key = 0, b""
  while pos < end:
    shared, pos = _varint(block, pos)
    non_shared, pos = _varint(block, pos)
    vlen, pos = _varint(block, pos)
    key = key[:shared] + block[pos:pos + non_shared]
    pos += non_shared
    yield key, block[pos:pos + vlen]
    pos += vlen


def _read_table(path: str) -> list[tuple[bytes, bytes]]:
  with open(path, "rb") as f:
    data = f.read()
  if len(data) < _FOOTER or struct.unpack_from("<Q", data, len(data) - 8)[0] != _MAGIC:
    raise CheckpointError(f"{path}: not a TensorFlow checkpoint index (no table footer; "
                          "truncated or another file)")
  footer = data[len(data) - _FOOTER:]
  _, p = _varint(footer, 0)
  _, p = _varint(footer, p)  # metaindex handle (unused)
  idx_off, p = _varint(footer, p)
  idx_size, p = _varint(footer, p)
  out = []
  for _, handle in _block_entries(_read_block(data, idx_off, idx_size, path)):
    off, q = _varint(handle, 0)
    size, _ = _varint(handle, q)
    out.extend(_block_entries(_read_block(data, off, size, path)))
  return out


def _shortest_separator(start: bytes, limit: bytes) -> bytes:
  """LevelDB's BytewiseComparator::FindShortestSeparator."""
  n = min(len(start), len(limit))
  i = 0
  while i < n and start[i] == limit[i]:
    i += 1
  if i < n:
    b = start[i]
    if b < 0xFF and b + 1 < limit[i]:
      return start[:i] + bytes([b + 1])
  return start


def _short_successor(key: bytes) -> bytes:
  for i, b in enumerate(key):
    if b != 0xFF:
      return key[:i] + bytes([b + 1])
  return key


class _BlockBuilder:
  def __init__(self, interval: int):
    self.interval, self.buf, self.restarts, self.counter, self.last = interval, bytearray(), [0], 0, b""

  def add(self, key: bytes, value: bytes) -> None:
    shared = 0
    if self.counter < self.interval:
      n = min(len(self.last), len(key))
      while shared < n and self.last[shared] == key[shared]:
        shared += 1
    else:
      self.restarts.append(len(self.buf))
      self.counter = 0
    self.buf += _enc_varint(shared) + _enc_varint(len(key) - shared) + _enc_varint(len(value))
    self.buf += key[shared:] + value
    self.last, self.counter = key, self.counter + 1

  def size(self) -> int:
    return len(self.buf) + 4 * len(self.restarts) + 4

  def finish(self) -> bytes:
    return bytes(self.buf) + b"".join(struct.pack("<I", r) for r in self.restarts) + struct.pack(
        "<I", len(self.restarts))

  def empty(self) -> bool:
    return not self.buf


def _write_table(items: list[tuple[bytes, bytes]]) -> bytes:
  """A table as TensorFlow's TableBuilder writes it (same block size and restart interval)."""
  out = bytearray()

  def emit(block: bytes) -> bytes:
    handle = _enc_varint(len(out)) + _enc_varint(len(block))
    trailer = b"\x00"
    out.extend(block + trailer + struct.pack("<I", mask(crc32c(block + trailer))))
    return handle

  index = _BlockBuilder(1)
  data = _BlockBuilder(_RESTART_INTERVAL)
  pending = None  # handle of the last flushed data block, awaiting its separator key
  last = b""
  for key, value in items:
    if pending is not None:
      index.add(_shortest_separator(last, key), pending)
      pending = None
    data.add(key, value)
    last = key
    if data.size() >= _BLOCK_SIZE:
      pending = emit(data.finish())
      data = _BlockBuilder(_RESTART_INTERVAL)
  if not data.empty():
    pending = emit(data.finish())
  if pending is not None:
    index.add(_short_successor(last), pending)
  meta_handle = emit(_BlockBuilder(_RESTART_INTERVAL).finish())
  index_handle = emit(index.finish())
  footer = meta_handle + index_handle
  footer += b"\x00" * (40 - len(footer)) + struct.pack("<Q", _MAGIC)
  return bytes(out + footer)


# --- checkpoints -----------------------------------------------------------------------------


def _latest_in_dir(folder: str) -> str:
  ckpt_file = os.path.join(folder, "checkpoint")
  if os.path.exists(ckpt_file):
    with open(ckpt_file) as f:
      m = re.search(r'^model_checkpoint_path:\s*"(.*)"', f.read(), re.M)
    if m:
      prefix = m.group(1)
      prefix = prefix if os.path.isabs(prefix) else os.path.join(folder, prefix)
      if os.path.exists(prefix + ".index"):
        return prefix
      # a moved folder: the recorded path is stale, fall back to the index files present
      local = os.path.join(folder, os.path.basename(prefix))
      if os.path.exists(local + ".index"):
        return local
  indexes = sorted(glob.glob(os.path.join(folder, "*.index")),
                   key=lambda p: [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", p)])
  if not indexes:
    raise CheckpointError(f"{folder}: no TensorFlow checkpoint here (no *.index file)")
  return indexes[-1][:-len(".index")]


def resolve(path: str, scratch: str | None = None) -> str:
  """The checkpoint prefix of `path`: a prefix, its `.index` or `.data-*` file, a folder (the
  latest checkpoint in it), or a `.tar`/`.tar.gz` of one (extracted under `scratch`)."""
  p = os.path.expanduser(path)
  if os.path.isdir(p):
    return _latest_in_dir(p)
  if os.path.isfile(p) and tarfile.is_tarfile(p):
    scratch = scratch or tempfile.mkdtemp(prefix="mvae_ckpt_")
    try:
      with tarfile.open(p) as tar:
        members = [m for m in tar.getmembers() if m.isfile() and re.search(
            r"\.(index|data-\d+-of-\d+)$|(^|/)checkpoint$", m.name)]
        if not any(m.name.endswith(".index") for m in members):
          raise CheckpointError(f"{path}: the archive holds no TensorFlow checkpoint (*.index)")
        for m in members:  # plain files under scratch only (no absolute paths, no '..')
          if os.path.isabs(m.name) or ".." in m.name.split("/"):
            raise CheckpointError(f"{path}: unsafe member path {m.name!r} in the archive")
        tar.extractall(scratch, members=members)
    except (tarfile.TarError, OSError, EOFError) as e:
      raise CheckpointError(f"{path}: cannot read the archive ({e})") from None
    found = sorted(glob.glob(os.path.join(scratch, "**", "*.index"), recursive=True))
    return _latest_in_dir(os.path.dirname(found[-1]))
  m = re.match(r"(.*)\.(index|data-\d{5}-of-\d{5})$", p)
  if m:
    p = m.group(1)
  if os.path.exists(p + ".index"):
    return p
  if not os.path.exists(os.path.dirname(p) or "."):
    raise CheckpointError(f"{path}: no such file or folder")
  raise CheckpointError(f"{path}: no such checkpoint ({os.path.basename(p)}.index missing)")


class Reader:
  """The variables of a checkpoint: `entries` (name -> Entry), `read(name)`, `read_all()`."""

  def __init__(self, path: str, scratch: str | None = None):
    self.prefix = resolve(path, scratch)
    self.index_path = self.prefix + ".index"
    items = _read_table(self.index_path)
    self.num_shards = 1
    self.entries: dict[str, Entry] = {}
    for key, value in items:
      if key == b"":
        for num, _, val in _fields(value):
          if num == 1:
            self.num_shards = val
          if num == 2 and val != 0:
            raise CheckpointError(f"{self.index_path}: big-endian checkpoints are not supported")
        continue
      name = key.decode("utf-8")
      self.entries[name] = _parse_entry(name, value)
    self._shards: dict[int, np.ndarray] = {}

  def shard_path(self, k: int) -> str:
    return f"{self.prefix}.data-{k:05d}-of-{self.num_shards:05d}"

  def _shard(self, k: int) -> np.ndarray:
    if k not in self._shards:
      path = self.shard_path(k)
      if not os.path.exists(path):
        raise CheckpointError(f"{path}: missing (the checkpoint has {self.num_shards} data "
                              "shard(s); copy all of them)")
      self._shards[k] = np.memmap(path, np.uint8, mode="r") if os.path.getsize(path) else \
          np.zeros(0, np.uint8)
    return self._shards[k]

  def shapes(self) -> dict[str, tuple[int, ...]]:
    return {n: e.shape for n, e in self.entries.items()}

  def read(self, name: str, verify: bool = True) -> np.ndarray:
    e = self.entries[name]
    if e.dtype is None:
      raise CheckpointError(f"{self.index_path}: variable {name} has a dtype this reader does not "
                            "support (only numeric tensors)")
    shard = self._shard(e.shard_id)
    want = int(np.prod(e.shape, dtype=np.int64)) * e.dtype.itemsize
    if e.size != want:
      raise CheckpointError(f"{self.index_path}: variable {name} has {e.size} bytes for shape "
                            f"{list(e.shape)} {e.dtype.name} (needs {want})")
    if e.offset + e.size > len(shard):
      raise CheckpointError(f"{self.shard_path(e.shard_id)}: truncated ({len(shard)} bytes; "
                            f"variable {name} ends at byte {e.offset + e.size})")
    raw = shard[e.offset:e.offset + e.size]
    if verify and crc32c(raw) != e.crc32c:
      raise CheckpointError(f"{self.shard_path(e.shard_id)}: corrupted (checksum of variable "
                            f"{name} does not match the index)")
    return np.frombuffer(raw.tobytes(), e.dtype.newbyteorder("<")).astype(e.dtype).reshape(
        e.shape)

  def read_all(self, names=None, verify: bool = True) -> dict[str, np.ndarray]:
    return {n: self.read(n, verify) for n in (names if names is not None else self.entries)}


def write(prefix: str, tensors: dict[str, np.ndarray], checkpoint_file: bool = True) -> list[str]:
  """Writes `tensors` as checkpoint `prefix` (one shard, keys sorted as TensorFlow sorts them);
  returns the files written. Files appear under temporary names and are renamed at the end."""
  names = sorted(tensors, key=lambda n: n.encode("utf-8"))
  entries, chunks, offset = [], [], 0
  for name in names:
    a = np.asarray(tensors[name])
    if a.dtype not in _DTYPE_CODES:
      raise CheckpointError(f"variable {name}: dtype {a.dtype} cannot be written")
    raw = np.ascontiguousarray(a, a.dtype.newbyteorder("<")).tobytes()
    entries.append(Entry(name, a.dtype, tuple(a.shape), 0, offset, len(raw), crc32c(raw)))
    chunks.append(raw)
    offset += len(raw)
  items = [(b"", _encode_header(1))] + [(e.name.encode("utf-8"), _encode_entry(e))
                                        for e in entries]
  os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
  files = {prefix + ".data-00000-of-00001": b"".join(chunks), prefix + ".index": _write_table(items)}
  if checkpoint_file:
    base = os.path.basename(prefix)
    files[os.path.join(os.path.dirname(os.path.abspath(prefix)), "checkpoint")] = (
        f'model_checkpoint_path: "{base}"\nall_model_checkpoint_paths: "{base}"\n').encode()
  for path, content in files.items():
    with open(path + ".tmp", "wb") as f:
      f.write(content)
  for path in files:
    os.replace(path + ".tmp", path)
  return list(files)


__all__ = ["Reader", "Entry", "CheckpointError", "resolve", "write"]
