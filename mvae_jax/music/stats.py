"""Is it music? Four statistics of a melody window, and where a sample falls against real ones.

On a melody label stream `[T]` (or `[T, S]`: stream 0) at `steps_per_bar` steps per bar; a note is
a note-on event (see `attributes`):

* key_fit: share of notes inside the best-fitting major (= relative natural minor) scale; 0 with
  no notes.
* notes_per_bar: note-ons per bar.
* pitch_range: highest minus lowest pitch, semitones; 0 below 2 notes.
* mean_abs_interval: mean absolute interval between consecutive notes, semitones; 0 below 2 notes.

`outside(stats, reference)` flags windows that fall outside the reference windows' 5th-95th
percentile on any statistic: real windows themselves are flagged at some rate, which
`outside_rate` of held-out windows measures and the demo reports beside the samples'.
"""

from __future__ import annotations

import numpy as np

from mvae_jax.music.attributes import mean_abs_interval, melody_notes

NAMES = ("key_fit", "notes_per_bar", "pitch_range", "mean_abs_interval")
MAJOR = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1], bool)
# [12 keys, 12 pitch classes]: row k is the major scale on pitch class k.
SCALES = np.stack([np.roll(MAJOR, k) for k in range(12)])


def key_fit(pitches: np.ndarray) -> float:
  """Largest share of `pitches` inside one of the 12 major/natural-minor scales."""
  if len(pitches) == 0:
    return 0.0
  return float(SCALES[:, np.asarray(pitches) % 12].mean(axis=1).max())


def window_stats(labels: np.ndarray, steps_per_bar: int = 16) -> np.ndarray:
  """One window `[T]` or `[T, S]` -> the statistics `[4]` in the order of NAMES."""
  _, pitches = melody_notes(labels)
  bars = np.asarray(labels).shape[0] / steps_per_bar
  return np.array([key_fit(pitches), len(pitches) / bars,
                   float(np.ptp(pitches)) if len(pitches) > 1 else 0.0,
                   mean_abs_interval(pitches)])


def batch_stats(labels: np.ndarray, steps_per_bar: int = 16) -> np.ndarray:
  """`[N, T(, S)]` -> `[N, 4]`."""
  return np.stack([window_stats(l, steps_per_bar) for l in labels]).reshape(-1, len(NAMES))


def percentiles(stats: np.ndarray, q=(5, 50, 95)) -> dict:
  """{name: {p5, p50, p95}} of `[N, 4]` statistics."""
  return {n: {f"p{p}": round(float(np.percentile(stats[:, j], p)), 3) for p in q}
          for j, n in enumerate(NAMES)}


def outside(stats: np.ndarray, reference: np.ndarray, lo: float = 5, hi: float = 95) -> np.ndarray:
  """`[N]` bool: outside the reference's [lo, hi] percentile range on any statistic."""
  low, high = np.percentile(reference, lo, axis=0), np.percentile(reference, hi, axis=0)
  return np.any((stats < low) | (stats > high), axis=1)


__all__ = ["NAMES", "key_fit", "window_stats", "batch_stats", "percentiles", "outside"]
