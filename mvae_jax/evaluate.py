"""Reconstruction metrics on labels, and the trivial baselines they are read against.

Pure NumPy over label arrays `[N, T, S]` (N windows, T steps, S streams), so they apply to any
converter. A step counts as right when every stream is right. An *onset* step is one whose target
starts something: a melody/bass note-on (label >= 2) or any drum hit (label > 0); "hold" and
"rest" steps are what a model that learned nothing predicts, so onset accuracy is the figure
that shows it learned the music.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

# The first label that starts something, per stream kind: melody 0 hold, 1 rest, >= 2 note-on;
# drums 0 nothing hit, > 0 some hit.
ONSET_FROM = {"melody": 2, "drums": 1}


def stream_kinds(converter) -> tuple[str, ...]:
  """Stream kinds of a converter: ('melody',), ('drums',) or ('melody', 'melody', 'drums')."""
  return {"melody": ("melody",), "drums": ("drums",),
          "trio": ("melody", "melody", "drums")}[converter.kind]


def onset_mask(labels: np.ndarray, kinds: Sequence[str]) -> np.ndarray:
  """`[N, T, S]` -> `[N, T]` bool: steps where some stream's target starts a note or hit."""
  labels = np.asarray(labels)
  return np.any(np.stack([labels[..., s] >= ONSET_FROM[k] for s, k in enumerate(kinds)], -1),
                axis=-1)


def accuracies(predicted: np.ndarray, labels: np.ndarray, kinds: Sequence[str]) -> dict:
  """Share of steps right: `overall`, and on `onset` steps (`[N, T, S]` each)."""
  hit = np.all(np.asarray(predicted) == np.asarray(labels), axis=-1)
  on = onset_mask(labels, kinds)
  return {"overall": float(hit.mean()), "onset": float(hit[on].mean()) if on.any() else 0.0}


def majority_prediction(train_labels: np.ndarray, shape: tuple) -> np.ndarray:
  """The most frequent training label of each stream, at every step: `shape` `[N, T, S]`."""
  s = train_labels.shape[-1]
  flat = np.asarray(train_labels).reshape(-1, s)
  modes = [np.bincount(flat[:, k]).argmax() for k in range(s)]
  return np.broadcast_to(np.array(modes, np.int32), shape).copy()


def repeat_previous_prediction(labels: np.ndarray, first: np.ndarray) -> np.ndarray:
  """Each step predicted as the previous step's target; step 0 as `first` `[S]`."""
  labels = np.asarray(labels)
  out = np.empty_like(labels)
  out[:, 0] = first
  out[:, 1:] = labels[:, :-1]
  return out


def reconstruction_report(predicted: np.ndarray, labels: np.ndarray, train_labels: np.ndarray,
                          kinds: Sequence[str]) -> dict:
  """Model accuracies beside the two trivial baselines on the same windows."""
  majority = majority_prediction(train_labels, labels.shape)
  return {
      "model": accuracies(predicted, labels, kinds),
      "majority_class": accuracies(majority, labels, kinds),
      "repeat_previous": accuracies(repeat_previous_prediction(labels, majority[0, 0]), labels,
                                    kinds),
      "windows": int(len(labels)),
      "onset_steps": int(onset_mask(labels, kinds).sum()),
  }


__all__ = ["accuracies", "onset_mask", "majority_prediction", "repeat_previous_prediction",
           "reconstruction_report", "stream_kinds"]
