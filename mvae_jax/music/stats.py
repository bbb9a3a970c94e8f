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

from mvae_jax.music.attributes import FIRST_PITCH

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
  labels = np.asarray(labels)
  return batch_stats(labels[None], steps_per_bar)[0]


def batch_stats(labels: np.ndarray, steps_per_bar: int = 16) -> np.ndarray:
  """`[N, T(, S)]` -> `[N, 4]`, vectorized over windows (the demo's 36,702 training windows
  in well under a second, against 4.4 s window by window)."""
  labels = np.asarray(labels)
  if labels.ndim == 3:
    labels = labels[..., 0]
  n_win, t = labels.shape
  onset = labels >= 2
  pitch = labels.astype(np.int64) - 2 + FIRST_PITCH
  n = onset.sum(axis=1)
  has = n > 0
  # key fit: note counts per pitch class [N, 12] against the 12 scales
  pc_counts = np.zeros((n_win, 12))
  rows, cols = np.nonzero(onset)
  np.add.at(pc_counts, (rows, pitch[rows, cols] % 12), 1.0)
  fit = np.where(has, (pc_counts @ SCALES.T.astype(float)).max(axis=1) / np.maximum(n, 1), 0.0)
  big = np.iinfo(np.int64).max
  hi = np.where(onset, pitch, -big).max(axis=1)
  lo = np.where(onset, pitch, big).min(axis=1)
  rng = np.where(n > 1, hi - lo, 0).astype(float)
  # intervals between consecutive notes: each onset against the last onset before it
  last = np.maximum.accumulate(np.where(onset, np.arange(t), -1), axis=1)
  prev = np.concatenate([np.full((n_win, 1), -1), last[:, :-1]], axis=1)
  step = onset & (prev >= 0)
  jumps = np.abs(pitch - np.take_along_axis(pitch, np.maximum(prev, 0), axis=1))
  interval = np.where(n > 1, (jumps * step).sum(axis=1) / np.maximum(n - 1, 1), 0.0)
  return np.stack([fit, n / (t / steps_per_bar), rng, interval], axis=1)


def percentiles(stats: np.ndarray, q=(5, 50, 95)) -> dict:
  """{name: {p5, p50, p95}} of `[N, 4]` statistics."""
  return {n: {f"p{p}": round(float(np.percentile(stats[:, j], p)), 3) for p in q}
          for j, n in enumerate(NAMES)}


def outside(stats: np.ndarray, reference: np.ndarray, lo: float = 5, hi: float = 95) -> np.ndarray:
  """`[N]` bool: outside the reference's [lo, hi] percentile range on any statistic."""
  low, high = np.percentile(reference, lo, axis=0), np.percentile(reference, hi, axis=0)
  return np.any((stats < low) | (stats > high), axis=1)


__all__ = ["NAMES", "key_fit", "window_stats", "batch_stats", "percentiles", "outside"]
