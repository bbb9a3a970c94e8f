"""CRC-32C (Castagnoli), as TensorFlow's checkpoints use it, in NumPy (no C extension needed).

Long buffers are cut into equal chunks whose CRCs are computed side by side (one vectorised table
step per byte position), then chained with the linear map "append L zero bytes", precomputed as
four byte tables. ~100 MB/s on one core; exact for any length.
"""

from __future__ import annotations

import functools

import numpy as np

_POLY = 0x82F63B78  # reflected Castagnoli polynomial


def _make_table() -> np.ndarray:
  t = np.zeros(256, np.uint32)
  for i in range(256):
    c = i
    for _ in range(8):
      c = (c >> 1) ^ _POLY if c & 1 else c >> 1
    t[i] = c
  return t


_TABLE = _make_table()
_TABLE_LIST = [int(x) for x in _TABLE]


def _raw_small(state: int, data: bytes) -> int:
  t = _TABLE_LIST
  for b in data:
    state = t[(state ^ b) & 0xFF] ^ (state >> 8)
  return state


@functools.lru_cache(maxsize=8)
def _zeros_map(length: int) -> np.ndarray:
  """[4, 256] tables of the linear map s -> state after feeding `length` zero bytes from s."""
  basis = (np.uint32(1) << np.arange(32, dtype=np.uint32)).astype(np.uint32)
  s = basis.copy()
  for _ in range(length):
    s = _TABLE[s & 0xFF] ^ (s >> np.uint32(8))
  tables = np.zeros((4, 256), np.uint32)
  for k in range(4):
    for bit in range(8):
      has = (np.arange(256) >> bit) & 1
      tables[k] ^= np.where(has == 1, s[8 * k + bit], np.uint32(0)).astype(np.uint32)
  return tables


def crc32c(data, state: int = 0) -> int:
  """CRC-32C of `data` (bytes-like or a NumPy array's bytes), continuing from `state`."""
  buf = np.frombuffer(memoryview(data).cast("B"), np.uint8)
  s = (~state) & 0xFFFFFFFF
  n = len(buf)
  if n < 4096:
    return (~_raw_small(s, buf.tobytes())) & 0xFFFFFFFF
  chunk = 1 << max(10, min(15, int(np.log2(np.sqrt(n)))))
  m = n // chunk
  blocks = buf[:m * chunk].reshape(m, chunk)
  r = np.zeros(m, np.uint32)
  for j in range(chunk):  # raw CRC (initial state 0) of every chunk at once
    r = _TABLE[(r ^ blocks[:, j]) & 0xFF] ^ (r >> np.uint32(8))
  t0, t1, t2, t3 = (list(map(int, row)) for row in _zeros_map(chunk))
  for ri in r.tolist():  # state' = zeros_map(state) xor raw(chunk)
    s = (t0[s & 0xFF] ^ t1[(s >> 8) & 0xFF] ^ t2[(s >> 16) & 0xFF] ^ t3[s >> 24]) ^ ri
  s = _raw_small(s, buf[m * chunk:].tobytes())
  return (~s) & 0xFFFFFFFF


_MASK_DELTA = 0xA282EAD8


def mask(crc: int) -> int:
  """The masked form TensorFlow stores (LevelDB's crc32c::Mask)."""
  return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def unmask(masked: int) -> int:
  rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
  return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF
