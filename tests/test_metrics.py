"""Reconstruction metrics, baselines and music statistics on hand-made windows (known answers)."""

from __future__ import annotations

import numpy as np

from mvae_jax import evaluate
from mvae_jax.music import stats

# 0 hold, 1 rest, k >= 2: note-on of MIDI pitch 19 + k (C4 = 60 -> 41).
C4, D4, E4, F4, G4 = 41, 43, 45, 46, 48


def _window(events: dict, steps: int = 32) -> np.ndarray:
  w = np.zeros((steps, 1), np.int32)
  for t, label in events.items():
    w[t, 0] = label
  return w


def test_accuracies_overall_and_onset():
  target = np.stack([_window({0: C4, 4: D4, 8: 1})])  # 2 onsets, 1 rest, 29 holds
  pred = target.copy()
  pred[0, 4, 0] = E4  # one onset wrong
  acc = evaluate.accuracies(pred, target, ("melody",))
  assert acc["overall"] == 31 / 32
  assert acc["onset"] == 0.5


def test_onset_mask_per_stream_kind():
  labels = np.array([[[0, 0, 0], [1, 1, 0], [2, 0, 0], [0, 5, 0], [0, 0, 3]]])
  assert evaluate.onset_mask(labels, ("melody", "melody", "drums")).tolist() == [
      [False, False, True, True, True]]
  assert evaluate.onset_mask(labels[..., 2:], ("drums",)).tolist() == [
      [False, False, False, False, True]]


def test_baselines():
  train = np.stack([_window({0: C4}), _window({0: D4, 16: 1})])
  target = np.stack([_window({0: E4, 2: 1})])
  majority = evaluate.majority_prediction(train, target.shape)
  assert np.all(majority == 0)  # "hold" fills most steps
  rep = evaluate.repeat_previous_prediction(target, majority[0, 0])
  assert rep[0, 0, 0] == 0 and rep[0, 1, 0] == E4 and rep[0, 3, 0] == 1
  r = evaluate.reconstruction_report(target, target, train, ("melody",))
  assert r["model"] == {"overall": 1.0, "onset": 1.0}
  assert r["majority_class"] == {"overall": 30 / 32, "onset": 0.0}
  # repeat-previous misses steps 0 (E4), 1 (repeats E4), 2 (rest), 3 (repeats the rest)
  assert r["repeat_previous"] == {"overall": 28 / 32, "onset": 0.0}
  assert r["onset_steps"] == 1


def test_music_statistics_known_answers():
  scale = _window({0: C4, 4: D4, 8: E4, 12: F4, 16: G4})  # C major, 5 notes in 2 bars
  s = stats.window_stats(scale)
  assert s.tolist() == [1.0, 2.5, 7.0, 1.75]
  chromatic = _window({0: C4, 4: C4 + 1, 8: C4 + 2})  # C, C#, D: no major scale holds all 3
  assert stats.window_stats(chromatic)[0] == 2 / 3
  silent = _window({})
  assert stats.window_stats(silent).tolist() == [0.0, 0.0, 0.0, 0.0]


def test_batch_statistics_equal_the_definitions_window_by_window():
  from mvae_jax.music.attributes import mean_abs_interval, melody_notes

  def reference(window):  # the module docstring's definitions, one window at a time
    _, p = melody_notes(window)
    return [stats.key_fit(p), len(p) / 2, float(np.ptp(p)) if len(p) > 1 else 0.0,
            mean_abs_interval(p)]

  rng = np.random.default_rng(0)
  # hold/rest-heavy random windows with 0, 1 or many notes, and the known-answer ones above
  labels = np.where(rng.random((500, 32)) < 0.7, rng.integers(0, 2, (500, 32)),
                    rng.integers(2, 90, (500, 32)))
  labels[:3] = 0
  labels[3, 5] = 40  # one note
  got = stats.batch_stats(labels[..., None])
  want = np.array([reference(l) for l in labels])
  np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
  assert not np.allclose(stats.batch_stats(np.roll(labels, 1, axis=0)), want)  # the judge can fail


def test_outside_flags_windows_beyond_the_reference_range():
  rng = np.random.default_rng(0)
  reference = rng.normal(size=(1000, 4))
  inside = np.zeros((1, 4))
  far = np.array([[0.0, 0.0, 10.0, 0.0]])
  assert stats.outside(np.concatenate([inside, far]), reference).tolist() == [False, True]
