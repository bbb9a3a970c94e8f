"""The five musical attributes of the MusicVAE paper's attribute-vector experiment, on labels.

All are computed on a melody label stream `[T]` (90 classes: 0 no event, 1 note-off, k >= 2
note-on of MIDI pitch 21 + k - 2) at 4 steps per quarter; for a trio, on its melody stream.
A note here is a note-on event.

* c_diatonic: share of notes whose pitch class is in C major (C D E F G A B); 0 with no notes.
* note_density: notes per step (onsets / T).
* avg_interval: mean absolute interval in semitones between consecutive notes; 0 below 2 notes.
* syncopation_16th: share of notes starting on an odd 16th step (off the 8th-note grid).
* syncopation_8th: share of notes starting on the off-beat 8th (step ≡ 2 mod 4).
"""

from __future__ import annotations

import numpy as np

NAMES = ("c_diatonic", "note_density", "avg_interval", "syncopation_16th", "syncopation_8th")
C_MAJOR = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1], bool)
FIRST_PITCH = 21


def melody_notes(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """One melody stream `[T]` (or `[T, S]`: stream 0) -> (onset steps, MIDI pitches) `[n]` each."""
  labels = np.asarray(labels)
  if labels.ndim == 2:
    labels = labels[:, 0]
  steps = np.flatnonzero(labels >= 2)
  return steps, labels[steps] - 2 + FIRST_PITCH


def mean_abs_interval(pitches: np.ndarray) -> float:
  """Mean absolute interval in semitones between consecutive notes; 0 below 2 notes."""
  return float(np.abs(np.diff(pitches)).mean()) if len(pitches) > 1 else 0.0


def attributes(labels: np.ndarray) -> np.ndarray:
  """One melody stream `[T]` (or `[T, S]`: stream 0 is used) -> the 5 attributes `[5]`."""
  steps, pitches = melody_notes(labels)
  labels = np.asarray(labels)
  n = len(steps)
  if n == 0:
    return np.array([0.0, 0.0, 0.0, 0.0, 0.0])
  return np.array([
      C_MAJOR[pitches % 12].mean(),
      n / len(labels),
      mean_abs_interval(pitches),
      (steps % 2 == 1).mean(),
      (steps % 4 == 2).mean(),
  ])


def batch_attributes(labels: np.ndarray) -> np.ndarray:
  """`[N, T(, S)]` -> `[N, 5]`."""
  return np.stack([attributes(l) for l in labels]) if len(labels) else np.zeros((0, 5))


def attribute_vectors(mu: np.ndarray, attrs: np.ndarray, quantile: float = 0.25) -> np.ndarray:
  """For each attribute: mean μ of the top quartile minus mean μ of the bottom quartile.

  mu `[N, Z]`, attrs `[N, 5]` -> `[5, Z]`. Ties are broken by order (a stable sort).
  """
  k = max(1, int(round(len(mu) * quantile)))
  vecs = []
  for j in range(attrs.shape[1]):
    order = np.argsort(attrs[:, j], kind="stable")
    vecs.append(mu[order[-k:]].mean(0) - mu[order[:k]].mean(0))
  return np.stack(vecs)


def relative_change(before: np.ndarray, after: np.ndarray) -> np.ndarray:
  """Mean relative change per attribute: Σ(after − before) / Σ|before| over examples `[N, 5]`;
  NaN for an attribute that is 0 in every `before` (no relative change is defined; a floor on
  the denominator turned such columns into changes of 1e9)."""
  den = np.abs(before).sum(0)
  with np.errstate(divide="ignore", invalid="ignore"):
    return np.where(den > 0, (after - before).sum(0) / np.where(den > 0, den, 1.0), np.nan)
