"""Cheap checks that keep one file from exhausting a build, before note_seq expands it.

note_seq (through pretty_midi) allocates arrays as long as a file's last tick and walks every
track, so a 50-byte MIDI file that holds one note for 2^28 ticks, or claims 16,000 tracks, costs
gigabytes or minutes. `check_midi_bytes` reads the header and track chunks directly (no parser, one
pass over the bytes) and rejects a file whose size in ticks, quarter notes, tracks or notes, or
whose tempo, is beyond `Limits`; `check_sequence` applies the same caps to a parsed NoteSequence
(whatever reader produced it). Each rejection is a `MusicFileError` whose `reason` is the
category counted in the build's statistics.
"""

from __future__ import annotations

import dataclasses
import struct

from mvae_jax.music.errors import MusicFileError


@dataclasses.dataclass(frozen=True)
class Limits:
  """Per-file caps of a data set build (defaults documented in the README and `mvae prepare -h`).

  max_quarters: length in quarter notes (16,384: 4,096 bars of 4/4, 2 h 16 min at 120 qpm);
  max_ticks: length in MIDI ticks (2^25: pretty_midi keeps a float64 per tick, 256 MiB);
  max_tracks: MIDI track chunks (1,024); max_notes: notes (500,000);
  max_qpm: fastest tempo accepted (2,000 quarters per minute); a tempo of 0 is always rejected;
  time_limit: seconds one file may take to parse and window (60);
  memory_limit_mb: address space of one worker process, in MiB (4,096).
  0 turns a limit off.
  """

  max_quarters: int = 16384
  max_ticks: int = 1 << 25
  max_tracks: int = 1024
  max_notes: int = 500_000
  max_qpm: float = 2000.0
  time_limit: float = 60.0
  memory_limit_mb: int = 4096


@dataclasses.dataclass
class MidiSummary:
  """What one pass over the bytes tells: ticks per quarter (0: SMPTE time), claimed and found
  track chunks, the last tick of any track, note-ons, and tempo events (tick, µs per quarter)."""

  ticks_per_quarter: int = 0
  claimed_tracks: int = 0
  tracks: int = 0
  max_tick: int = 0
  notes: int = 0
  tempos: list = dataclasses.field(default_factory=list)


def _vlq(data: bytes, pos: int, end: int) -> tuple[int, int]:
  value = 0
  for _ in range(4):
    if pos >= end:
      raise IndexError
    b = data[pos]
    pos += 1
    value = (value << 7) | (b & 0x7F)
    if b < 0x80:
      return value, pos
  return value, pos


def _scan_track(data: bytes, pos: int, end: int, s: MidiSummary) -> None:
  """Adds one track chunk's events to `s`; stops quietly where the track is damaged."""
  tick, status = 0, 0
  try:
    while pos < end:
      delta, pos = _vlq(data, pos, end)
      tick += delta
      b = data[pos]
      if b >= 0x80:
        pos += 1
        if b < 0xF0:
          status = b
      elif not status:
        break  # a data byte with no running status: the parser will decide
      else:
        b = status
      if b == 0xFF:
        kind = data[pos]
        length, pos = _vlq(data, pos + 1, end)
        if kind == 0x51 and length == 3 and pos + 3 <= end:
          s.tempos.append((tick, int.from_bytes(data[pos:pos + 3], "big")))
        pos += length
      elif b in (0xF0, 0xF7):
        length, pos = _vlq(data, pos, end)
        pos += length
      elif b >= 0xF0:
        break
      else:
        size = 1 if 0xC0 <= b < 0xE0 else 2
        if b >> 4 == 0x9 and size == 2 and pos + 1 < end and data[pos + 1]:
          s.notes += 1
        pos += size
  except IndexError:
    pass
  s.max_tick = max(s.max_tick, tick)


def scan_midi(data: bytes) -> MidiSummary:
  """One pass over a standard MIDI file's chunks (header fields, tempi, note-ons, last tick)."""
  s = MidiSummary()
  if len(data) < 14 or not data.startswith(b"MThd"):
    return s
  hlen = struct.unpack_from(">I", data, 4)[0]
  _, s.claimed_tracks, division = struct.unpack_from(">HHH", data, 8)
  s.ticks_per_quarter = 0 if division & 0x8000 else division
  pos = 8 + hlen
  while pos + 8 <= len(data):
    kind, length = data[pos:pos + 4], struct.unpack_from(">I", data, pos + 4)[0]
    start, end = pos + 8, min(pos + 8 + length, len(data))
    if kind == b"MTrk":
      s.tracks += 1
      _scan_track(data, start, end, s)
    pos = start + length
  return s


def _quarters(max_tick: int, ticks_per_quarter: int) -> float:
  return max_tick / ticks_per_quarter if ticks_per_quarter else 0.0


def check_midi_bytes(data: bytes, name: str, limits: Limits) -> MidiSummary:
  """Rejects (MusicFileError with a reason) a MIDI file too big to expand; else its summary."""
  s = scan_midi(data)
  tracks = max(s.tracks, s.claimed_tracks)
  if limits.max_tracks and tracks > limits.max_tracks:
    raise MusicFileError(f"{name}: {tracks} tracks (header claims {s.claimed_tracks}), over the "
                         f"limit of {limits.max_tracks} (--max_tracks)", reason="too many tracks")
  if limits.max_ticks and s.max_tick > limits.max_ticks:
    raise MusicFileError(f"{name}: lasts {s.max_tick} ticks, over the limit of {limits.max_ticks} "
                         "(--max_ticks)", reason="too long")
  quarters = _quarters(s.max_tick, s.ticks_per_quarter)
  if limits.max_quarters and quarters > limits.max_quarters:
    raise MusicFileError(f"{name}: lasts {quarters:.0f} quarter notes ({s.max_tick} ticks at "
                         f"{s.ticks_per_quarter} per quarter), over the limit of "
                         f"{limits.max_quarters} (--max_quarters)", reason="too long")
  if limits.max_notes and s.notes > limits.max_notes:
    raise MusicFileError(f"{name}: {s.notes} notes, over the limit of {limits.max_notes} "
                         "(--max_notes)", reason="too many notes")
  for tick, usec in s.tempos:
    _check_qpm(60e6 / usec if usec else 0.0, f"{name}: tempo event at tick {tick}", limits)
  return s


def _check_qpm(qpm: float, where: str, limits: Limits) -> None:
  if not qpm > 0:
    raise MusicFileError(f"{where}: tempo of 0 (no time passes); fix the tempo or remove the "
                         "file", reason="bad tempo")
  if limits.max_qpm and qpm > limits.max_qpm:
    raise MusicFileError(f"{where}: tempo {qpm:.0f} quarters per minute, over the limit of "
                         f"{limits.max_qpm:g} (--max_qpm)", reason="bad tempo")


def sequence_quarters(ns) -> float:
  """A NoteSequence's length in quarter notes, through its tempo map (120 qpm when it has none)."""
  tempos = sorted((t.time, t.qpm) for t in ns.tempos if t.time < ns.total_time) or [(0.0, 120.0)]
  if tempos[0][0] > 0:
    tempos.insert(0, (0.0, 120.0))
  bounds = [t for t, _ in tempos[1:]] + [ns.total_time]
  return sum((b - a) * qpm / 60 for (a, qpm), b in zip(tempos, bounds))


def check_sequence(ns, name: str, limits: Limits) -> None:
  """The same caps on a parsed NoteSequence (any reader, any source format)."""
  for t in ns.tempos:
    _check_qpm(t.qpm, f"{name}: tempo at {t.time:.2f}s", limits)
  if limits.max_notes and len(ns.notes) > limits.max_notes:
    raise MusicFileError(f"{name}: {len(ns.notes)} notes, over the limit of {limits.max_notes} "
                         "(--max_notes)", reason="too many notes")
  quarters = sequence_quarters(ns)
  if limits.max_quarters and quarters > limits.max_quarters:
    raise MusicFileError(f"{name}: lasts {quarters:.0f} quarter notes, over the limit of "
                         f"{limits.max_quarters} (--max_quarters)", reason="too long")
