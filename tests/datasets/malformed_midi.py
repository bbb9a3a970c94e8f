"""A generator of malformed MIDI files, for fuzzing `mvae prepare midi_dir`.

Each kind is a function (rng, real MIDI bytes) -> bytes. Some mutate a real file (byte flips,
truncations, splices); others write small files from scratch with the pathologies seen in the
wild: huge delta times, tiny files that expand to hours, notes with no note-off, zero-length
notes, tempi of 0 / 1 µs / the maximum, odd or broken meters, thousands of tracks (or a header
claiming them), absurd ticks per quarter, sysex and meta events with lying lengths.
"""

from __future__ import annotations

import struct

import numpy as np


def vlq(n: int) -> bytes:
  n = min(int(n), 0x0FFFFFFF)
  out = [n & 0x7F]
  n >>= 7
  while n:
    out.append(0x80 | (n & 0x7F))
    n >>= 7
  return bytes(reversed(out))


def chunk(kind: bytes, body: bytes) -> bytes:
  return kind + struct.pack(">I", len(body)) + body


def smf(tracks: list[bytes], tpq: int = 480, fmt: int = 1, claimed: int | None = None) -> bytes:
  head = struct.pack(">HHH", fmt, len(tracks) if claimed is None else claimed, tpq & 0xFFFF)
  return chunk(b"MThd", head) + b"".join(chunk(b"MTrk", t) for t in tracks)


def ev(delta: int, *data: int) -> bytes:
  return vlq(delta) + bytes(data)


def tempo(delta: int, usec: int) -> bytes:
  return vlq(delta) + b"\xff\x51\x03" + int(usec).to_bytes(3, "big")


def meter(delta: int, num: int, den_pow: int) -> bytes:
  return vlq(delta) + b"\xff\x58\x04" + bytes([num & 0xFF, den_pow & 0xFF, 24, 8])


END = ev(0, 0xFF, 0x2F, 0)


def _notes(rng, n: int, channel: int = 0, step: int = 240, length: int = 200) -> bytes:
  out = b""
  for _ in range(n):
    p = int(rng.integers(30, 90))
    out += ev(step - length if out else 0, 0x90 | channel, p, 90) + ev(length, 0x80 | channel, p, 0)
  return out


def byte_flips(rng, base):
  data = bytearray(base)
  for _ in range(int(rng.integers(1, 12))):
    data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
  return bytes(data)


def truncation(rng, base):
  return base[:int(rng.integers(8, len(base)))]


def splice(rng, base):
  a, b = sorted(rng.integers(14, len(base), size=2))
  return base[:a] + base[b:] + base[a:b]


def huge_delta(rng, base):
  """One note held for up to 2^28 ticks (pretty_midi allocates per tick)."""
  hold = int(rng.integers(1 << 22, 1 << 28))
  return smf([ev(0, 0x90, 60, 100) + ev(hold, 0x80, 60, 0) + END], tpq=int(rng.integers(1, 960)))


def tiny_long(rng, base):
  """A few notes spread over hours: tiny ticks per quarter, huge deltas, three instruments."""
  tracks = [tempo(0, 500000) + END]
  for ch, prog in ((0, 0), (1, 33), (9, 0)):
    tracks.append(ev(0, 0xC0 | ch, prog) + ev(0, 0x90 | ch, 40 + ch, 90)
                  + ev(int(rng.integers(1 << 14, 1 << 21)), 0x80 | ch, 40 + ch, 0) + END)
  return smf(tracks, tpq=int(rng.integers(1, 4)))


def no_note_off(rng, base):
  body = b"".join(ev(int(rng.integers(0, 500)), 0x90 | int(rng.integers(0, 16)),
                     int(rng.integers(0, 128)), 100) for _ in range(int(rng.integers(1, 400))))
  return smf([tempo(0, 500000) + body + END])


def zero_length(rng, base):
  body = b""
  for _ in range(int(rng.integers(1, 300))):
    p = int(rng.integers(21, 109))
    body += ev(int(rng.integers(0, 240)), 0x90, p, 100) + ev(0, 0x80, p, 0)
  return smf([body + END])


def odd_tempo(rng, base):
  usec = int(rng.choice([0, 1, 2, 100, 0xFFFFFF, int(rng.integers(0, 1 << 24))]))
  changes = b"".join(tempo(int(rng.integers(0, 2000)), int(rng.integers(0, 1 << 24)))
                     for _ in range(int(rng.integers(0, 50))))
  return smf([tempo(0, usec) + changes + END, _notes(rng, int(rng.integers(1, 600))) + END])


def odd_meter(rng, base):
  sigs = b"".join(meter(int(rng.integers(0, 4000)), int(rng.integers(0, 256)),
                        int(rng.integers(0, 256))) for _ in range(int(rng.integers(1, 20))))
  return smf([sigs + END, _notes(rng, int(rng.integers(1, 300))) + END])


def many_tracks(rng, base):
  """Thousands of real tracks, or a small file whose header claims 16,000."""
  if rng.random() < 0.5:
    return smf([END] * 4 + [_notes(rng, 1) + END], claimed=int(rng.integers(2000, 65536)))
  n = int(rng.integers(1100, 3000))
  return smf([ev(0, 0xC0 | (i % 16), i % 128) + _notes(rng, 1, channel=i % 16) + END
              for i in range(n)])


def odd_division(rng, base):
  tpq = int(rng.choice([0, 1, 0x7FFF, 0xE728, 0x8000]))  # 0, 1, max, SMPTE, broken SMPTE
  return smf([tempo(0, 500000) + _notes(rng, int(rng.integers(1, 100))) + END], tpq=tpq)


def lying_lengths(rng, base):
  kind = int(rng.choice([0xF0, 0xFF]))
  lie = vlq(int(rng.integers(1 << 20, 1 << 28)))
  bad = ev(0, kind) + (bytes([0x01]) if kind == 0xFF else b"") + lie + b"x" * 8
  return smf([_notes(rng, 20) + bad + _notes(rng, 20) + END])


KINDS = {f.__name__: f for f in (byte_flips, truncation, splice, huge_delta, tiny_long,
                                 no_note_off, zero_length, odd_tempo, odd_meter, many_tracks,
                                 odd_division, lying_lengths)}


def malformed_files(n: int, seed: int, bases: list[bytes]) -> list[tuple[str, bytes]]:
  """n files (name, bytes), cycling through the kinds; mutations start from `bases`."""
  rng = np.random.default_rng(seed)
  names = list(KINDS)
  out = []
  for i in range(n):
    kind = names[i % len(names)]
    base = bases[int(rng.integers(0, len(bases)))]
    out.append((f"{i:04d}_{kind}.mid", KINDS[kind](rng, base)))
  return out


def dense_file(seed: int = 0, notes_per_track: int = 3000) -> bytes:
  """A valid but heavy file (12 tracks of melody, bass and drums, 36,000 notes): seconds to
  parse and window, for testing the per-file time limit."""
  rng = np.random.default_rng(seed)
  tracks = [tempo(0, 500000) + END]
  for k in range(12):
    channel, program = ((0, 0), (1, 33), (9, 0))[k % 3]
    tracks.append(ev(0, 0xC0 | channel, program)
                  + _notes(rng, notes_per_track, channel=channel, step=120, length=100) + END)
  return smf(tracks)
