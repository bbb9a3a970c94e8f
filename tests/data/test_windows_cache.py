"""The window cache: ArrayRecord records read on demand give back exactly the windows written."""

from __future__ import annotations

import pickle

import numpy as np

from mvae_jax import datasets
from mvae_jax.datasets import _base


def test_window_records_read_back_exactly(tmp_path):
  rng = np.random.default_rng(0)
  per_piece = [(f"p{k}", rng.integers(0, 512, size=(n, 256, 3)).astype(np.int16))
               for k, n in ((2, 70), (0, 1), (1, 100))]
  path = _base.write_windows(str(tmp_path), "trio_16bar", "train", per_piece)
  labels, piece, ids = datasets.read_windows(path)
  assert isinstance(labels, datasets.WindowRecords)
  expected = np.concatenate([w for _, w in sorted(per_piece)])  # sorted by piece id
  assert len(labels) == 171 and labels.shape == (171, 256, 3)
  assert list(ids) == ["p0", "p1", "p2"] and np.array_equal(np.bincount(piece), [1, 100, 70])
  np.testing.assert_array_equal(np.asarray(labels), expected)
  np.testing.assert_array_equal(labels[-1], expected[-1])
  pick = rng.permutation(171)[:40]
  np.testing.assert_array_equal(labels[pick], expected[pick])
  np.testing.assert_array_equal(labels[5:9], expected[5:9])
  np.testing.assert_array_equal(labels[:50, :, 0], expected[:50, :, 0])
  np.testing.assert_array_equal(labels[7, 3], expected[7, 3])
  again = pickle.loads(pickle.dumps(labels))  # as grain's worker processes get it
  np.testing.assert_array_equal(again[100], expected[100])
