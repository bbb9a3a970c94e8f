"""The bench's metrics on hand-made sequences with known answers."""

import numpy as np
import pytest

from mvae_jax.bench import interpolation, reconstruction
from mvae_jax.bench.report import paper_finding
from mvae_jax.music import converters

T = 32


def _melody(notes):
  """[T, 1] labels: each (step, pitch) a note-on, holds elsewhere."""
  x = np.zeros((T, 1), np.int32)
  for step, pitch in notes:
    x[step, 0] = pitch - 21 + 2
  return x


A = _melody([(0, 60), (4, 62), (8, 64), (12, 65), (16, 67), (20, 69), (24, 71), (28, 72)])
B = _melody([(0, 72), (8, 67), (16, 64), (24, 60)])


def test_hamming_known_answers():
  assert interpolation.hamming(A, A) == 0.0
  d = interpolation.hamming(B, A)
  assert d == np.mean(np.any(A != B, axis=-1))
  assert d == 8 / T  # A has a note every 4 steps, B every 8 at other pitches: 8 steps differ
  # every stream must match: a trio step with one wrong stream is wrong
  x = np.zeros((T, 3), np.int32)
  y = x.copy()
  y[3, 2] = 5
  assert interpolation.hamming(y, x) == 1 / T


def test_data_interpolation_endpoints_and_rate():
  rng = np.random.default_rng(0)
  assert np.array_equal(interpolation.data_interpolation(A, B, 0.0, rng), A)
  assert np.array_equal(interpolation.data_interpolation(A, B, 1.0, rng), B)
  big_a, big_b = np.zeros((10000, 1), np.int32), np.ones((10000, 1), np.int32)
  mix = interpolation.data_interpolation(big_a, big_b, 0.3, rng)
  assert abs(mix.mean() - 0.3) < 0.02


def test_latent_path_endpoints_and_slerp_norm():
  a, b = np.array([1.0, 0.0]), np.array([0.0, 2.0])
  path = interpolation.latent_path(a, b, np.linspace(0, 1, 11))
  np.testing.assert_allclose(path[0], a, atol=1e-12)
  np.testing.assert_allclose(path[-1], b, atol=1e-12)
  lin = interpolation.latent_path(a, b, [0.5], "linear")
  np.testing.assert_allclose(lin[0], [0.5, 1.0])
  # slerp between orthogonal vectors keeps away from the origin (linear passes near it)
  assert np.linalg.norm(path[5]) > np.linalg.norm(lin[0])


def _scale_and_walk(n, rng, steps=64):
  """n C-major scales (up and down, 2 steps per note) and n random walks of the same length."""
  c_major = [60, 62, 64, 65, 67, 69, 71, 72, 74, 72, 71, 69, 67, 65, 64, 62]
  scale = np.zeros((steps, 1), np.int32)
  for i in range(steps // 2):
    scale[2 * i, 0] = c_major[i % 16] - 21 + 2
  walks = []
  for _ in range(n):
    w = np.zeros((steps, 1), np.int32)
    w[::2, 0] = rng.integers(40, 90, steps // 2)
    walks.append(w)
  return np.stack([scale] * n), np.stack(walks)


def test_lm_prefers_a_scale_to_a_random_walk():
  rng = np.random.default_rng(0)
  scales, walks = _scale_and_walk(20, rng)
  # trained on scales transposed a little and on nothing random
  train = np.concatenate([scales + k for k in range(-3, 4)])
  lm = interpolation.NgramLM(5, train, interpolation.alphabet_of(
      converters.get_converter("mel_16bar")))
  scale_cost = lm.cost(scales[0])
  walk_costs = lm.costs(walks)
  assert np.isfinite(walk_costs).all()  # unseen tokens get a finite cost (the alphabet)
  assert scale_cost < 1.0 < walk_costs.min(), (scale_cost, walk_costs.min())


def test_normalised_cost():
  costs = np.array([[2.0, 3.0, 4.0], [1.0, 1.0, 1.0]])
  out = interpolation.normalised(costs, np.array([2.0, 1.0]), np.array([4.0, 1.0]))
  np.testing.assert_allclose(out["mean_over_endpoints"], [(2 / 3 + 1) / 2, (1 + 1) / 2,
                                                          (4 / 3 + 1) / 2])
  np.testing.assert_allclose(out["spec_median"], [0.0, 0.5, 1.0])  # pair 2: 0/0 is dropped


def test_pick_pairs_different_pieces():
  pieces = np.repeat(np.arange(10), 3)
  idx = interpolation.pick_pairs(30, pieces, 8, np.random.default_rng(0))
  assert idx.shape == (8, 2)
  assert all(pieces[a] != pieces[b] for a, b in idx)


def test_step_accuracy_and_interval():
  labels = np.stack([A, B])
  pred = labels.copy()
  pred[1, :8] = 1  # 8 of 32 steps of window 1 wrong (step 0 is a note, 1..7 holds)
  np.testing.assert_allclose(reconstruction.step_accuracy(pred, labels), [1.0, 24 / 32])
  ci = reconstruction.mean_ci([0.5] * 10)
  assert ci["mean"] == ci["lo"] == ci["hi"] == 0.5
  ci = reconstruction.mean_ci([0.0, 1.0] * 50)
  assert ci["lo"] < 0.5 < ci["hi"] and abs(ci["hi"] - ci["lo"] - 2 * 1.96 * 0.5025 / 10) < 1e-3


def _row(tf, sampled, n=100, noise=0.02, seed=0):
  rng = np.random.default_rng(seed)
  t = np.clip(tf + noise * rng.standard_normal(n), 0, 1)
  sa = np.clip(sampled + noise * rng.standard_normal(n), 0, 1)
  m = reconstruction.mean_ci
  return {"reconstruction": {"sampled_accuracy": m(sa), "gap": m(t - sa),
                             "per_window": {"teacher_forced": t.tolist(), "sampled": sa.tolist()},
                             "baselines": {"majority_class": {"overall": 0.3}}}}


def test_paper_finding_judge():
  holds = {"flat": {"decoder": "flat", **_row(0.9, 0.5)},
           "hierdec": {"decoder": "hierarchical", **_row(0.9, 0.85, seed=1)}}
  lines = paper_finding(holds)
  assert len(lines) == 2 and all("**holds, clearly**" in l for l in lines), lines
  fails = {"flat": {"decoder": "flat", **_row(0.9, 0.85)},
           "hierdec": {"decoder": "hierarchical", **_row(0.9, 0.5, seed=1)}}
  assert all("**does not hold**" in l for l in paper_finding(fails))
  noise = {"flat": {"decoder": "flat", **_row(0.9, 0.7, noise=0.3)},
           "hierdec": {"decoder": "hierarchical", **_row(0.9, 0.701, noise=0.3, seed=1)}}
  assert "within noise" in paper_finding(noise)[0] or "does not hold" in paper_finding(noise)[0]
  assert "clearly" not in paper_finding(noise)[0]


def test_paired_difference():
  a = {"per_window": {"teacher_forced": [1.0, 1.0, 1.0], "sampled": [0.5, 0.6, 0.7]}}
  b = {"per_window": {"teacher_forced": [1.0, 1.0, 1.0], "sampled": [0.4, 0.5, 0.6]}}
  d = reconstruction.paired_difference(a, b, "sampled")
  assert abs(d["mean"] - 0.1) < 1e-12 and abs(d["hi"] - d["lo"]) < 1e-9  # same shift everywhere
  g = reconstruction.paired_difference(a, b, "gap")
  assert abs(g["mean"] + 0.1) < 1e-12


def test_zero_gap_of_a_majority_class_decoder_is_not_judged():
  row = _row(0.55, 0.55, noise=0.0)
  row["reconstruction"]["baselines"]["majority_class"]["overall"] = 0.55
  lines = paper_finding({"flat": {"decoder": "flat", **_row(0.6, 0.56)},
                         "hierdec": {"decoder": "hierarchical", **row}})
  assert "**not judged**" in lines[1] and "holds" not in lines[1]


def test_relative_change_undefined_without_the_attribute():
  from mvae_jax.music.attributes import relative_change
  before = np.array([[0.5, 0.0, 1.0, 0.0, 0.0], [0.5, 0.0, 3.0, 0.0, 0.0]])
  after = np.array([[1.0, 0.2, 2.0, 0.0, 0.0], [0.5, 0.0, 3.0, 0.0, 0.0]])
  out = relative_change(before, after)
  np.testing.assert_allclose(out[[0, 2]], [0.5, 0.25])
  assert np.isnan(out[[1, 3, 4]]).all()
