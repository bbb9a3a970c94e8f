"""The grain pipeline: determinism, exact resume, host shards, fresh augmentation, fail-fast."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import FIXTURE_MIDI
from mvae_jax import data
from mvae_jax.music import augment, converters


@pytest.fixture(scope="module")
def mel(fixture_dataset, data_dir):
  conv = converters.get_converter("mel_2bar")
  w = data.load_windows("midi_dir", "train", "mel_2bar", data_dir=data_dir, midi_dir=FIXTURE_MIDI)
  return conv, w


def _take(it, n):
  return [next(it) for _ in range(n)]


def test_batches_have_fixed_shapes_and_valid_labels(mel):
  conv, w = mel
  it = iter(data.train_dataset(w, conv, batch_size=32, seed=0, transpose_range=(-5, 5)))
  for b in _take(it, 5):
    assert b["labels"].shape == (32, 32, 1) and b["labels"].dtype == np.int32
    assert (b["lengths"] == 32).all() and (b["mask"] == 1).all()
    assert b["labels"].min() >= 0 and b["labels"].max() < 90
  x = conv.labels_to_inputs(b["labels"])
  assert x.shape == (32, 32, 90) and np.allclose(x.sum(-1), 1)


def test_deterministic_for_a_seed_and_different_across_seeds(mel):
  conv, w = mel
  mk = lambda s: iter(data.train_dataset(w, conv, batch_size=16, seed=s,  # noqa: E731
                                         transpose_range=(-5, 5), max_windows_per_piece=5))
  a, b, c = _take(mk(1), 4), _take(mk(1), 4), _take(mk(2), 4)
  assert all(np.array_equal(x["labels"], y["labels"]) for x, y in zip(a, b))
  assert not all(np.array_equal(x["labels"], y["labels"]) for x, y in zip(a, c))


def test_iterator_state_restores_exactly(mel):
  conv, w = mel
  it = iter(data.train_dataset(w, conv, batch_size=16, seed=3, transpose_range=(-5, 5)))
  _take(it, 7)
  state = it.get_state()
  want = _take(it, 5)
  it2 = iter(data.train_dataset(w, conv, batch_size=16, seed=3, transpose_range=(-5, 5)))
  it2.set_state(state)
  got = _take(it2, 5)
  assert all(np.array_equal(x["labels"], y["labels"]) for x, y in zip(want, got))


def test_host_shards_are_disjoint_and_cover(mel):
  conv, w = mel
  n = len(w)
  seen = []
  for p in range(4):
    it = iter(data.train_dataset(w, conv, batch_size=1, seed=0, process_index=p, process_count=4))
    shard = {next(it)["labels"].tobytes() for _ in range(n // 4)}
    seen.append(shard)
  assert sum(len(s) for s in seen) >= 0.9 * len({x.tobytes() for x in w.labels.astype(np.int32)})
  for i in range(4):
    for j in range(i + 1, 4):
      assert not (seen[i] & seen[j]) or len(seen[i] & seen[j]) < 3  # duplicates across pieces


def test_transposition_is_fresh_every_epoch_and_in_range(mel):
  """Magenta freezes augmentation after epoch 1; ours draws anew: same window, other shifts."""
  conv, w = mel
  small = data.WindowSet(w.labels[:8], w.piece[:8], w.ids, "small")
  it = iter(data.train_dataset(small, conv, batch_size=8, seed=0, transpose_range=(-5, 5)))
  epochs = [next(it)["labels"] for _ in range(6)]
  base = {x.astype(np.int32).tobytes(): x for x in small.labels}
  per_window_shifts = {}
  for e in epochs:
    for x in e:
      notes = x[:, 0] >= 2
      for k, orig in base.items():
        o = orig.astype(np.int32)
        if ((o[:, 0] >= 2) == notes).all() and (o[~notes, 0] == x[~notes, 0]).all():
          d = set((x[notes, 0] - o[notes, 0]).tolist())
          if len(d) == 1:
            per_window_shifts.setdefault(k, set()).add(d.pop())
  assert per_window_shifts and max(len(s) for s in per_window_shifts.values()) >= 3
  assert all(-5 <= s <= 5 for shifts in per_window_shifts.values() for s in shifts)


def test_transpose_keeps_drums_and_range():
  rng = np.random.default_rng(0)
  trio = converters.get_converter("trio_16bar")
  labels = np.stack([rng.integers(0, 90, 256), rng.integers(0, 90, 256),
                     rng.integers(0, 512, 256)], -1)
  labels[0, 0] = 89  # highest pitch: no upward shift allowed
  for _ in range(50):
    out, shift = augment.random_transpose(labels, rng, trio.pitched_streams, trio.output_depths,
                                          -5, 5)
    assert shift <= 0 and out[:, :2].max() <= 89
    np.testing.assert_array_equal(out[:, 2], labels[:, 2])
    assert (out[:, :2][labels[:, :2] < 2] == labels[:, :2][labels[:, :2] < 2]).all()


def test_batch_that_cannot_be_filled_fails_at_once(mel):
  conv, w = mel
  with pytest.raises(data.DataError) as e:
    data.train_dataset(w, conv, batch_size=512, seed=0, max_windows_per_piece=5)
  msg = str(e.value)
  assert "\n" not in msg and "501 windows" in msg and "batch of 512" in msg and "batch_size" in msg


def test_unprepared_data_set_names_the_fix(tmp_path):
  with pytest.raises(data.DataError) as e:
    data.load_windows("folk_melodies", "train", "mel_2bar", data_dir=str(tmp_path))
  assert "mvae prepare folk_melodies" in str(e.value)


def test_uncached_converter_settings_are_windowed_through_grain(mel, data_dir):
  conv4 = converters.get_converter("mel_2bar", slice_bars=4)
  w4 = data.load_windows("midi_dir", "train", "mel_2bar", converter=conv4, data_dir=data_dir,
                         midi_dir=FIXTURE_MIDI)
  assert w4.labels.shape[1:] == (64, 1) and len(w4) > 100


def test_eval_batches_pad_with_mask(mel):
  conv, w = mel
  batches = list(data.eval_batches(w, 64))
  assert sum(b["mask"].sum() for b in batches) == len(w)
  assert all(b["labels"].shape == (64, 32, 1) for b in batches)
