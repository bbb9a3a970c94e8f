"""Transposition of windows, on labels: a pure function of the window, the shift and the RNG.

Magenta transposes the NoteSequence before extraction and caches the result after the first
epoch, which freezes the augmentation. We transpose the extracted window's pitched streams
(melody; melody and bass of a trio; drums never), drawing a fresh shift for every example in every
epoch. A shift is only drawn among those that keep every note of the window inside the converter's
pitch range, so a window is never altered beyond the shift (0 is always allowed).
"""

from __future__ import annotations

import numpy as np

FIRST_PITCH_LABEL = 2  # melody labels 0/1 are no-event/note-off; 2.. are pitches


def shift_range(labels: np.ndarray, pitched_streams, depths, lo: int, hi: int) -> tuple[int, int]:
  """The sub-range of [lo, hi] of shifts that keep all pitches of `labels` `[T, S]` in range."""
  for s in pitched_streams:
    notes = labels[:, s][labels[:, s] >= FIRST_PITCH_LABEL]
    if len(notes):
      lo = max(lo, FIRST_PITCH_LABEL - int(notes.min()))
      hi = min(hi, depths[s] - 1 - int(notes.max()))
  return lo, hi


def transpose(labels: np.ndarray, shift: int, pitched_streams) -> np.ndarray:
  """Adds `shift` semitones to the pitch labels of the pitched streams of `labels` `[T, S]`."""
  out = labels.copy()
  for s in pitched_streams:
    col = out[:, s]
    col[col >= FIRST_PITCH_LABEL] += shift
  return out


def random_transpose(labels: np.ndarray, rng: np.random.Generator, pitched_streams, depths,
                     lo: int, hi: int) -> tuple[np.ndarray, int]:
  """A uniformly drawn in-range shift in [lo, hi] applied to `labels` `[T, S]` -> (labels, shift)."""
  if not pitched_streams or (lo == 0 and hi == 0):
    return labels, 0
  lo, hi = shift_range(labels, pitched_streams, depths, lo, hi)
  shift = int(rng.integers(lo, hi + 1))
  return transpose(labels, shift, pitched_streams), shift
