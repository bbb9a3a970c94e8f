"""MusicVAE's data encodings: NoteSequence <-> windows of integer labels and one-hot arrays.

Every converter speaks in *labels*: int arrays `[N, T, S]` with `T` steps per window and `S`
streams (1 for melody and drums, 3 for the trio: melody, bass, drums). One-hot arrays are derived
from labels (`labels_to_outputs`, `labels_to_inputs`), so the input pipeline moves small integer
arrays and expands them on the device.

Extraction follows Magenta's `music_vae/data.py` converters (commit 526d3eb1) step for step, and
`tests/music/test_magenta_parity.py` checks every window against Magenta's own output:
  * the NoteSequence is split at tempo and time-signature changes, each piece quantized at
    `steps_per_quarter`; pieces whose bars are not `steps_per_bar` steps long (not 4/4 or 2/2) give
    nothing;
  * melodies: notes outside the valid programs or pitch range are dropped, then per instrument a
    monophonic melody is read (the highest pitch wins at a shared onset, a later onset ends a
    sounding note), starting on a bar line and ending after `gap_bars` of silence;
  * drums: all drum notes are merged and reduced to 9 classes; a track ends after `gap_bars` of
    silence;
  * windows of `slice_bars` bars slide by one bar over each melody/track, duplicates are dropped
    (per piece, first occurrence kept: Magenta's order is CPython's set order, ours is stable);
  * trio: every (melody, bass, drums) instrument triple covering a whole window, with 2 bars of gap
    tolerated, gives a window; trio windows are not deduplicated.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import numpy as np

from mvae_jax.music._note_seq import (NoteSequence, constants, drums_lib, melodies_lib,
                                      sequences_lib)

MEL_PROGRAMS = tuple(range(0, 32))
BASS_PROGRAMS = tuple(range(32, 40))
ELECTRIC_BASS_PROGRAM = 33
PIANO_MIN_PITCH = 21
PIANO_MAX_PITCH = 108
OUTPUT_VELOCITY = 80
OUTPUT_QPM = 120.0
MAX_INSTRUMENT = 127

# The 9 reduced drum classes: each class is written back as its first pitch.
DRUM_PITCH_CLASSES = (
    (36, 35),  # kick
    (38, 27, 28, 31, 32, 33, 34, 37, 39, 40, 56, 65, 66, 75, 85),  # snare
    (42, 44, 54, 68, 69, 70, 71, 73, 78, 80, 22),  # closed hi-hat
    (46, 67, 72, 74, 79, 81, 26),  # open hi-hat
    (45, 29, 41, 43, 61, 64, 84),  # low tom
    (48, 47, 60, 63, 77, 86, 87),  # mid tom
    (50, 30, 62, 76, 83),  # high tom
    (49, 52, 55, 57, 58),  # crash
    (51, 53, 59, 82),  # ride
)
DRUM_CLASS_OF_PITCH = {p: c for c, pitches in enumerate(DRUM_PITCH_CLASSES) for p in pitches}
NUM_DRUM_CLASSES = len(DRUM_PITCH_CLASSES)

MELODY_NO_EVENT = 0  # label: no event (a note is held or a rest continues)
MELODY_NOTE_OFF = 1  # label: the sounding note ends
_QUANTIZE_ERRORS = (
    sequences_lib.BadTimeSignatureError,
    sequences_lib.MultipleTimeSignatureError,
    sequences_lib.MultipleTempoError,
    sequences_lib.NegativeTimeError,
    melodies_lib.events_lib.NonIntegerStepsPerBarError,
)


class Windows(NamedTuple):
  """Windows of one NoteSequence as Magenta's `to_tensors` gives them.

  inputs: float32 `[N, T, input_depth]` (encoder input), outputs: float32 `[N, T, output_depth]`
  (decoder targets, one-hot), lengths: int32 `[N]` (all equal to T).
  """

  inputs: np.ndarray
  outputs: np.ndarray
  lengths: np.ndarray


class Extraction(NamedTuple):
  """labels `[N, T, S]` int32, and why there are none when N == 0 (else '').

  A reason reads 'category: detail' (categories: not 4/4, cannot quantize, no notes, too short,
  missing instrument).
  """

  labels: np.ndarray
  reason: str


def _most_telling(reasons: list[str]) -> str:
  """Why a sequence gave no window: an empty time-split part says less than any other part."""
  telling = [r for r in reasons if not r.startswith("no notes")] or reasons
  return telling[0] if telling else "no notes: the sequence is empty"


def _one_hot(labels: np.ndarray, depth: int, xp=np):
  return (labels[..., None] == xp.arange(depth)).astype(xp.float32)


def _melody_event_to_label(event: int, min_pitch: int) -> int:
  if event < 0:  # note_seq: -2 no event, -1 note-off
    return event + 2
  return event - min_pitch + 2


def _drum_event_to_label(event: frozenset) -> int:
  return sum(1 << c for c in event)


def _quantize(ns: NoteSequence, steps_per_quarter: int, steps_per_bar: int):
  """Quantized copy of `ns`, or (None, reason) when its bars are not `steps_per_bar` steps."""
  try:
    qns = sequences_lib.quantize_note_sequence(ns, steps_per_quarter)
    spb = sequences_lib.steps_per_bar_in_quantized_sequence(qns)
  except _QUANTIZE_ERRORS as e:
    return None, f"cannot quantize: {type(e).__name__}"
  if spb != steps_per_bar:
    ts = ns.time_signatures[0] if ns.time_signatures else None
    sig = f"{ts.numerator}/{ts.denominator}" if ts else "?"
    return None, f"not 4/4: time signature {sig} ({spb:g} steps per bar)"
  return qns, ""


def _slice(event_list, window_steps: int, steps_per_bar: int) -> list[tuple]:
  """Windows sliding by one bar. Slicing the note_seq object (not a list) matters: a Melody
  slice turns leading note-offs into no-events, as in Magenta."""
  return [tuple(event_list[i - window_steps:i])
          for i in range(window_steps, len(event_list) + 1, steps_per_bar)]


def _dedupe(windows: list[tuple]) -> list[tuple]:
  return list(dict.fromkeys(windows))


def _extract_melodies(qns: NoteSequence, steps_per_bar: int, gap_bars: float,
                      max_steps_truncate: int | None) -> list:
  """Magenta's `extract_melodies(min_bars=1, min_unique_pitches=1, pad_end=True)` over all notes."""
  melodies = []
  for instrument in sorted({n.instrument for n in qns.notes}):
    search_start = 0
    while True:
      mel = melodies_lib.Melody()
      mel.from_quantized_sequence(qns, search_start_step=search_start, instrument=instrument,
                                  gap_bars=gap_bars, ignore_polyphonic_notes=True, pad_end=True)
      search_start = mel.end_step + (-mel.end_step) % steps_per_bar
      if not mel:
        break
      if len(mel) < steps_per_bar:
        continue
      if max_steps_truncate is not None and len(mel) > max_steps_truncate:
        mel.set_length(max_steps_truncate - max_steps_truncate % steps_per_bar)
      if not any(e >= 0 for e in mel):
        continue
      melodies.append(mel)
  return melodies


def _extract_drum_tracks(qns: NoteSequence, steps_per_bar: int, gap_bars: float,
                         max_steps_truncate: int | None) -> list:
  """Magenta's `extract_drum_tracks(min_bars=1, pad_end=True)` over the (class-mapped) drums."""
  tracks = []
  search_start = 0
  while True:
    track = drums_lib.DrumTrack()
    track.from_quantized_sequence(qns, search_start_step=search_start, gap_bars=gap_bars,
                                  pad_end=True)
    search_start = track.end_step + (-track.end_step) % steps_per_bar
    if not track:
      break
    if len(track) < steps_per_bar:
      continue
    if max_steps_truncate is not None and len(track) > max_steps_truncate:
      track.set_length(max_steps_truncate - max_steps_truncate % steps_per_bar)
    tracks.append(track)
  return tracks


def _pad_to_total(event_list, total_steps: int):
  """Magenta's `pad_to_total_time`: left-pad to step 0, then pad/truncate to `total_steps`."""
  event_list.set_length(len(event_list) + event_list.start_step, from_left=True)
  event_list.set_length(total_steps)
  return event_list


def _keep_notes(ns: NoteSequence, keep) -> NoteSequence:
  out = NoteSequence()
  out.CopyFrom(ns)
  del out.notes[:]
  out.notes.extend(n for n in ns.notes if keep(n))
  return out


def _melody_note_filter(valid_programs, min_pitch: int, max_pitch: int):
  def keep(note):
    if valid_programs is not None and note.program not in valid_programs:
      return False
    return min_pitch <= note.pitch <= max_pitch
  return keep


def _map_drums(qns: NoteSequence) -> NoteSequence:
  """Keeps drum notes of known pitches, with the pitch replaced by its class (0..8)."""
  out = _keep_notes(qns, lambda n: n.is_drum and n.pitch in DRUM_CLASS_OF_PITCH)
  for n in out.notes:
    n.pitch = DRUM_CLASS_OF_PITCH[n.pitch]
  return out


@dataclasses.dataclass(frozen=True)
class Converter:
  """Shared settings and the NoteSequence-level driver; subclasses encode one piece.

  slice_bars: window length in bars; gap_bars: silence that ends a melody/track;
  max_bars: melodies/tracks are truncated to this many bars before slicing (None: not at all);
  defaults are those of Magenta's converter classes (its configs pass max_bars=100, as
  `CONVERTERS` below does);
  max_windows: keep at most this many windows per NoteSequence (the first ones; training
  subsamples per epoch in the input pipeline instead); dedupe: drop duplicate windows per piece.
  """

  slice_bars: int = 2
  steps_per_quarter: int = 4
  quarters_per_bar: int = 4
  gap_bars: float = 1.0
  max_bars: int | None = None
  max_windows: int | None = None
  presplit_on_time_changes: bool = True
  dedupe: bool = True

  output_depths: tuple[int, ...] = ()  # per stream, set by subclasses
  input_depth: int = 0
  kind: str = ""
  pitched_streams: tuple[int, ...] = ()  # streams of melody labels (transposable)

  @property
  def steps_per_bar(self) -> int:
    return self.steps_per_quarter * self.quarters_per_bar

  @property
  def window_steps(self) -> int:
    return self.steps_per_bar * self.slice_bars

  @property
  def num_streams(self) -> int:
    return len(self.output_depths)

  @property
  def output_depth(self) -> int:
    return sum(self.output_depths)

  @property
  def _max_steps_truncate(self) -> int | None:
    return self.steps_per_bar * self.max_bars if self.max_bars else None

  # --- NoteSequence -> windows -------------------------------------------------------------

  def extract(self, ns: NoteSequence) -> Extraction:
    """All windows of `ns` as labels `[N, T, S]`, and the reason when there are none."""
    pieces = (sequences_lib.split_note_sequence_on_time_changes(ns)
              if self.presplit_on_time_changes else [ns])
    windows, reasons = [], []
    for piece in pieces:
      qns, reason = _quantize(piece, self.steps_per_quarter, self.steps_per_bar)
      if qns is None:
        reasons.append(reason)
        continue
      piece_windows, reason = self._piece_windows(piece, qns)
      if not piece_windows:
        reasons.append(reason)
      windows.extend(piece_windows)
    if self.max_windows is not None:
      windows = windows[:self.max_windows]
    if not windows:
      reason = _most_telling(reasons)
      return Extraction(np.zeros((0, self.window_steps, self.num_streams), np.int32), reason)
    return Extraction(np.asarray(windows, np.int32).reshape(
        len(windows), self.window_steps, self.num_streams), "")

  def to_labels(self, ns: NoteSequence) -> np.ndarray:
    """Labels `[N, T, S]` int32 of every window of `ns`."""
    return self.extract(ns).labels

  def to_arrays(self, ns: NoteSequence) -> Windows:
    """Magenta's `to_tensors`: one-hot inputs and outputs of every window of `ns`."""
    labels = self.to_labels(ns)
    return Windows(self.labels_to_inputs(labels), self.labels_to_outputs(labels),
                   np.full((len(labels),), self.window_steps, np.int32))

  # --- labels <-> arrays --------------------------------------------------------------------

  def labels_to_outputs(self, labels, xp=np):
    """Decoder targets: `[..., T, S]` int -> `[..., T, output_depth]` float32 one-hot per stream."""
    parts = [_one_hot(labels[..., s], d, xp) for s, d in enumerate(self.output_depths)]
    return parts[0] if len(parts) == 1 else xp.concatenate(parts, axis=-1)

  def labels_to_inputs(self, labels, xp=np):
    """Encoder/decoder inputs: `[..., T, S]` int -> `[..., T, input_depth]` float32."""
    return self.labels_to_outputs(labels, xp)

  def as_labels(self, x) -> np.ndarray:
    """Accepts labels `[T]`/`[T, S]` or one-hot/probabilities `[T, output_depth]`; gives `[T, S]`."""
    x = np.asarray(x)
    if x.ndim == 2 and x.shape[-1] == self.output_depth and (
        self.output_depth != self.num_streams or x.dtype.kind == "f"):
      bounds = np.cumsum((0,) + self.output_depths)
      return np.stack([np.argmax(x[:, a:b], axis=-1) for a, b in zip(bounds[:-1], bounds[1:])],
                      axis=-1).astype(np.int32)
    if x.ndim == 1:
      x = x[:, None]
    if x.ndim != 2 or x.shape[-1] != self.num_streams:
      raise ValueError(f"{self.kind} converter: expected labels [T] or [T, {self.num_streams}] "
                       f"or one-hot [T, {self.output_depth}], got shape {x.shape}")
    return x.astype(np.int32)

  def canonical(self, labels) -> np.ndarray:
    """The labels a NoteSequence can represent (see `encode_window`); identity for most windows."""
    return np.asarray(labels, np.int32)

  # --- subclass hooks -----------------------------------------------------------------------

  def _piece_windows(self, piece: NoteSequence, qns: NoteSequence) -> tuple[list, str]:
    raise NotImplementedError

  def to_sequence(self, x) -> NoteSequence:
    """One window (labels or one-hot) -> NoteSequence at 120 qpm, velocity 80."""
    raise NotImplementedError

  def encode_window(self, ns: NoteSequence) -> np.ndarray:
    """A NoteSequence that starts at time 0 (such as `to_sequence`'s) -> labels `[T, S]`.

    Unlike `extract`, nothing is searched for: steps 0..T-1 are encoded as they are, so
    `encode_window(to_sequence(w)) == canonical(w)` for every window `w`.
    """
    raise NotImplementedError


# --- melody --------------------------------------------------------------------------------------


def _melody_labels_to_events(labels: np.ndarray, min_pitch: int) -> list[int]:
  return [int(l) - 2 if l < 2 else int(l) - 2 + min_pitch for l in labels]


def _melody_to_sequence(labels: np.ndarray, min_pitch: int, steps_per_bar: int,
                        steps_per_quarter: int) -> NoteSequence:
  mel = melodies_lib.Melody(events=_melody_labels_to_events(labels, min_pitch),
                            steps_per_bar=steps_per_bar, steps_per_quarter=steps_per_quarter)
  return mel.to_sequence(velocity=OUTPUT_VELOCITY, qpm=OUTPUT_QPM)


def _melody_window_labels(ns: NoteSequence, keep, min_pitch: int, steps_per_quarter: int,
                          window_steps: int) -> np.ndarray:
  """Steps 0..T-1 of the monophonic line of the notes `keep` selects (all merged)."""
  notes = _keep_notes(ns, lambda n: not n.is_drum and keep(n))
  for n in notes.notes:
    n.instrument = 0
  qns = sequences_lib.quantize_note_sequence(notes, steps_per_quarter)
  mel = melodies_lib.Melody()
  mel.from_quantized_sequence(qns, instrument=0, gap_bars=math.inf, ignore_polyphonic_notes=True)
  if not mel:
    return np.zeros((window_steps,), np.int32)
  _pad_to_total(mel, window_steps)
  return np.asarray([_melody_event_to_label(e, min_pitch) for e in mel], np.int32)


def _melody_canonical(labels: np.ndarray) -> np.ndarray:
  """A note-off with no sounding note (e.g. at a window's first step) is a no-event."""
  out = labels.copy()
  sounding = False
  for t, l in enumerate(labels):
    if l == MELODY_NOTE_OFF:
      if not sounding:
        out[t] = MELODY_NO_EVENT
      sounding = False
    elif l >= 2:
      sounding = True
  return out


@dataclasses.dataclass(frozen=True)
class MelodyConverter(Converter):
  """90 classes: 0 no event, 1 note-off, 2..89 note-on of MIDI pitch 21..108.

  valid_programs: programs melodies are read from (None: all non-drum programs).
  """

  valid_programs: tuple[int, ...] | None = None
  min_pitch: int = PIANO_MIN_PITCH
  max_pitch: int = PIANO_MAX_PITCH
  output_depths: tuple[int, ...] = (90,)
  input_depth: int = 90
  kind: str = "melody"
  pitched_streams: tuple[int, ...] = (0,)

  def _piece_windows(self, piece, qns):
    qns = _keep_notes(qns, _melody_note_filter(self.valid_programs, self.min_pitch,
                                               self.max_pitch))
    if not any(not n.is_drum for n in qns.notes):
      return [], "no notes: no melodic notes in the valid programs and pitch range"
    melodies = _extract_melodies(qns, self.steps_per_bar, self.gap_bars or math.inf,
                                 self._max_steps_truncate)
    windows = []
    for mel in melodies:
      windows.extend(_slice(mel, self.window_steps, self.steps_per_bar))
    if self.dedupe:
      windows = _dedupe(windows)
    windows = [[_melody_event_to_label(e, self.min_pitch) for e in w] for w in windows]
    return windows, "" if windows else f"too short: no melody of {self.slice_bars} bars"

  def to_sequence(self, x):
    labels = self.as_labels(x)[:, 0]
    return _melody_to_sequence(labels, self.min_pitch, self.steps_per_bar,
                               self.steps_per_quarter)

  def encode_window(self, ns):
    keep = _melody_note_filter(None, self.min_pitch, self.max_pitch)
    return _melody_window_labels(ns, keep, self.min_pitch, self.steps_per_quarter,
                                 self.window_steps)[:, None]

  def canonical(self, labels):
    labels = np.asarray(labels, np.int32)
    return _melody_canonical(labels.reshape(-1)).reshape(labels.shape)


# --- drums ---------------------------------------------------------------------------------------


def _drum_labels_to_inputs(labels, xp=np):
  """Labels `[...]` (bitmask of classes) -> `[..., 10]`: 9-hot roll plus a 'nothing hit' bit."""
  bits = (labels[..., None] >> xp.arange(NUM_DRUM_CLASSES)) & 1
  return xp.concatenate([bits, (labels == 0)[..., None]], axis=-1).astype(xp.float32)


def _drums_to_sequence(labels: np.ndarray, steps_per_bar: int,
                       steps_per_quarter: int) -> NoteSequence:
  events = [frozenset(DRUM_PITCH_CLASSES[c][0] for c in range(NUM_DRUM_CLASSES) if (l >> c) & 1)
            for l in labels]
  track = drums_lib.DrumTrack(events=events, steps_per_bar=steps_per_bar,
                              steps_per_quarter=steps_per_quarter)
  return track.to_sequence(velocity=OUTPUT_VELOCITY, qpm=OUTPUT_QPM)


def _drum_window_labels(ns: NoteSequence, steps_per_quarter: int,
                        window_steps: int) -> np.ndarray:
  qns = _map_drums(sequences_lib.quantize_note_sequence(ns, steps_per_quarter))
  track = drums_lib.DrumTrack()
  track.from_quantized_sequence(qns, gap_bars=math.inf)
  if not track:
    return np.zeros((window_steps,), np.int32)
  _pad_to_total(track, window_steps)
  return np.asarray([_drum_event_to_label(e) for e in track], np.int32)


@dataclasses.dataclass(frozen=True)
class DrumsConverter(Converter):
  """Output: one of 512 classes (bitmask over 9 drum classes); input: 9-hot roll + 'nothing' bit."""

  output_depths: tuple[int, ...] = (1 << NUM_DRUM_CLASSES,)
  input_depth: int = NUM_DRUM_CLASSES + 1
  kind: str = "drums"

  def _piece_windows(self, piece, qns):
    qns = _map_drums(qns)
    if not qns.notes:
      return [], "no notes: no drum notes"
    tracks = _extract_drum_tracks(qns, self.steps_per_bar, self.gap_bars or math.inf,
                                  self._max_steps_truncate)
    windows = []
    for track in tracks:
      windows.extend(_slice(track, self.window_steps, self.steps_per_bar))
    if self.dedupe:
      windows = _dedupe(windows)
    windows = [[_drum_event_to_label(e) for e in w] for w in windows]
    return windows, "" if windows else f"too short: no drum track of {self.slice_bars} bars"

  def labels_to_inputs(self, labels, xp=np):
    return _drum_labels_to_inputs(labels[..., 0], xp)

  def to_sequence(self, x):
    return _drums_to_sequence(self.as_labels(x)[:, 0], self.steps_per_bar,
                              self.steps_per_quarter)

  def encode_window(self, ns):
    return _drum_window_labels(ns, self.steps_per_quarter, self.window_steps)[:, None]


# --- trio ----------------------------------------------------------------------------------------

_UNK, _MEL, _BASS, _DRUMS, _INVALID = range(5)


@dataclasses.dataclass(frozen=True)
class TrioConverter(Converter):
  """692 = melody 90 | bass 90 | drums 512; streams (melody, bass, drums).

  An instrument is melody if its program is 0-31, bass if 32-39, drums if is_drum; every
  (melody, bass, drums) triple whose coverage (dilated by `gap_bars`) spans a window gives one.
  """

  slice_bars: int = 16
  gap_bars: float = 2
  max_bars: int | None = 1024
  dedupe: bool = False
  output_depths: tuple[int, ...] = (90, 90, 1 << NUM_DRUM_CLASSES)
  input_depth: int = 90 + 90 + (1 << NUM_DRUM_CLASSES)
  kind: str = "trio"
  pitched_streams: tuple[int, ...] = (0, 1)

  def _instrument_labels(self, piece: NoteSequence, instrument: int,
                         is_drums: bool) -> np.ndarray | None:
    """One instrument of the piece, encoded over the whole piece (Magenta's padded sub-converters)."""
    ns = _keep_notes(piece, lambda n: n.instrument == instrument)
    if is_drums:
      qns = sequences_lib.quantize_note_sequence(ns, self.steps_per_quarter)
      events = _extract_drum_tracks(_map_drums(qns), self.steps_per_bar, math.inf, None)
      to_label = _drum_event_to_label
    else:
      ns = _keep_notes(ns, _melody_note_filter(None, PIANO_MIN_PITCH, PIANO_MAX_PITCH))
      qns = sequences_lib.quantize_note_sequence(ns, self.steps_per_quarter)
      events = _extract_melodies(qns, self.steps_per_bar, math.inf, None)
      to_label = lambda e: _melody_event_to_label(e, PIANO_MIN_PITCH)  # noqa: E731
    if not events:
      return None
    padded = _pad_to_total(events[0], qns.total_quantized_steps)
    return np.asarray([to_label(e) for e in padded], np.int32)

  def _piece_windows(self, piece, qns):
    spb = self.steps_per_bar
    total_bars = min(int(np.ceil(qns.total_quantized_steps / spb)), self.max_bars)
    gap = int(self.gap_bars)
    program_type = {**{p: _MEL for p in MEL_PROGRAMS}, **{p: _BASS for p in BASS_PROGRAMS}}
    instrument_type = np.zeros(MAX_INSTRUMENT + 1, np.uint8)
    coverage = np.zeros((total_bars, MAX_INSTRUMENT + 1), bool)
    for note in qns.notes:
      i = note.instrument
      if i > MAX_INSTRUMENT:
        continue
      inferred = _DRUMS if note.is_drum else program_type.get(note.program, _INVALID)
      if not instrument_type[i]:
        instrument_type[i] = inferred
      elif instrument_type[i] != inferred:
        instrument_type[i] = _INVALID
      start_bar = note.quantized_start_step // spb
      end_bar = int(np.ceil(note.quantized_end_step / spb))
      if start_bar < total_bars:
        coverage[start_bar:min(end_bar, total_bars), i] = True
    by_type = {t: [i for i in range(MAX_INSTRUMENT + 1) if instrument_type[i] == t]
               for t in (_MEL, _BASS, _DRUMS)}
    missing = [name for t, name in ((_MEL, "melody"), (_BASS, "bass"), (_DRUMS, "drums"))
               if not by_type[t]]
    if missing:
      return [], "missing instrument: no " + "/".join(missing)

    piece = NoteSequence.FromString(piece.SerializeToString())
    qpm = piece.tempos[0].qpm if piece.tempos else constants.DEFAULT_QUARTERS_PER_MINUTE
    piece.total_time = total_bars * spb * 60 / qpm / self.steps_per_quarter
    encoded = {}
    for t in (_MEL, _BASS, _DRUMS):
      for i in by_type[t]:
        labels = self._instrument_labels(piece, i, t == _DRUMS)
        if labels is None:
          coverage[:, i] = False
        else:
          encoded[i] = labels

    dilated = coverage.copy()
    for j in range(total_bars):
      dilated[j] = np.any(coverage[max(0, j - gap):min(total_bars, j + gap) + 1], axis=0)
    windows = []
    for grp in ((m, b, d) for m in by_type[_MEL] for b in by_type[_BASS] for d in by_type[_DRUMS]):
      if not all(i in encoded for i in grp):
        continue
      grp_coverage = np.all(dilated[:, grp], axis=1)
      grp_coverage[:gap] = np.any(dilated[:gap, grp])
      grp_coverage[-gap:] = np.any(dilated[-gap:, grp])
      for j in range(total_bars - self.slice_bars + 1):
        if np.all(grp_coverage[j:j + self.slice_bars]):
          a, b = j * spb, (j + self.slice_bars) * spb
          windows.append(np.stack([encoded[i][a:b] for i in grp], axis=-1))
    return windows, "" if windows else (
        f"too short: no {self.slice_bars}-bar span with all three instruments")

  def to_sequence(self, x):
    labels = self.as_labels(x)
    ns = _melody_to_sequence(labels[:, 0], PIANO_MIN_PITCH, self.steps_per_bar,
                             self.steps_per_quarter)
    bass = _melody_to_sequence(labels[:, 1], PIANO_MIN_PITCH, self.steps_per_bar,
                               self.steps_per_quarter)
    drums = _drums_to_sequence(labels[:, 2], self.steps_per_bar, self.steps_per_quarter)
    for n in bass.notes:
      n.instrument, n.program = 1, ELECTRIC_BASS_PROGRAM
    for n in drums.notes:
      n.instrument = 9
    ns.notes.extend(bass.notes)
    ns.notes.extend(drums.notes)
    ns.total_time = max(ns.total_time, bass.total_time, drums.total_time)
    return ns

  def labels_to_inputs(self, labels, xp=np):
    return self.labels_to_outputs(labels, xp)

  def encode_window(self, ns):
    def window(programs):
      return _melody_window_labels(ns, lambda n: n.program in programs, PIANO_MIN_PITCH,
                                   self.steps_per_quarter, self.window_steps)
    return np.stack([window(MEL_PROGRAMS), window(BASS_PROGRAMS),
                     _drum_window_labels(ns, self.steps_per_quarter, self.window_steps)], -1)

  def canonical(self, labels):
    labels = np.asarray(labels, np.int32).copy()
    labels[:, 0] = _melody_canonical(labels[:, 0])
    labels[:, 1] = _melody_canonical(labels[:, 1])
    return labels


# --- the named converters of the reference configurations ----------------------------------------

CONVERTERS = {
    "mel_2bar": lambda: MelodyConverter(slice_bars=2, max_bars=100, valid_programs=MEL_PROGRAMS),
    "mel_16bar": lambda: MelodyConverter(slice_bars=16, max_bars=100, valid_programs=None),
    "drums_2bar": lambda: DrumsConverter(slice_bars=2, max_bars=100),
    "drums_16bar": lambda: DrumsConverter(slice_bars=16, max_bars=100),
    "trio_16bar": lambda: TrioConverter(slice_bars=16, gap_bars=2),
}


def get_converter(name: str, **overrides) -> Converter:
  """A converter by its Magenta-config name (`mel_2bar`, ..., `trio_16bar`), with overrides."""
  if name not in CONVERTERS:
    raise ValueError(f"unknown converter {name!r}: choose one of {', '.join(CONVERTERS)}")
  conv = CONVERTERS[name]()
  return dataclasses.replace(conv, **overrides) if overrides else conv
