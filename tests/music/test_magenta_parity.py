"""Our converters against Magenta's own output on 20 real MIDI files (tests/fixtures/magenta)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from conftest import FIXTURES
from mvae_jax.music import converters, io

CONVERTER_NAMES = ["mel_2bar", "mel_16bar", "drums_2bar", "drums_16bar", "trio_16bar"]


def _files():
  with open(os.path.join(FIXTURES, "converters_index.json")) as f:
    return [(x["stem"], x["midi_file"]) for x in json.load(f)["files"]]


@pytest.fixture(scope="module")
def parsed():
  return {stem: io.read_midi(os.path.join(FIXTURES, path)) for stem, path in _files()}


def _rows(a: np.ndarray) -> list[bytes]:
  return sorted(x.tobytes() for x in a.astype(bool))


@pytest.mark.parametrize("name", CONVERTER_NAMES)
def test_windows_equal_magenta(parsed, name):
  conv = converters.get_converter(name)
  total = 0
  for stem, _ in _files():
    ref = np.load(os.path.join(FIXTURES, "converters", name, f"{stem}.npz"))
    ours = conv.to_arrays(parsed[stem])
    assert ours.inputs.shape == ref["inputs"].shape, stem
    assert ours.outputs.shape == ref["outputs"].shape, stem
    np.testing.assert_array_equal(ours.lengths, ref["lengths"])
    if name.startswith("trio"):  # trio windows are not deduplicated: same order
      np.testing.assert_array_equal(ours.inputs.astype(bool), ref["inputs"], err_msg=stem)
      np.testing.assert_array_equal(ours.outputs.astype(bool), ref["outputs"], err_msg=stem)
    else:  # Magenta's order is CPython set order: compare as multisets
      assert _rows(ours.inputs) == _rows(ref["inputs"]), stem
      assert _rows(ours.outputs) == _rows(ref["outputs"]), stem
    total += len(ours.inputs)
  expected = {"mel_2bar": 501, "mel_16bar": 834, "drums_2bar": 135, "drums_16bar": 195,
              "trio_16bar": 410}
  assert total == expected[name]


def test_midi_parsing_equals_note_seq_reference(parsed):
  for stem, _ in _files():
    ref = np.load(os.path.join(FIXTURES, "notesequences", f"{stem}.npz"))
    ns = parsed[stem]
    for field in ("pitch", "velocity", "start_time", "end_time", "program", "instrument",
                  "is_drum"):
      np.testing.assert_array_equal([getattr(n, field) for n in ns.notes], ref[field],
                                    err_msg=f"{stem}.{field}")
    assert ns.total_time == float(ref["total_time"])


def test_decoding_equals_magenta():
  checked = 0
  for name in CONVERTER_NAMES:
    folder = os.path.join(FIXTURES, "decoded", name)
    for fname in sorted(os.listdir(folder)):
      if not fname.endswith(".json"):
        continue
      stem = fname.split("__")[0]
      with open(os.path.join(folder, fname)) as f:
        ref = json.load(f)
      window = np.load(os.path.join(FIXTURES, "converters", name, f"{stem}.npz"))["outputs"][0]
      ns = converters.get_converter(name).to_sequence(window)
      key = lambda d: (d["start_time"], d["instrument"], d["pitch"])  # noqa: E731
      fields = ("pitch", "start_time", "end_time", "velocity", "program", "instrument", "is_drum")
      ours = sorted(({k: getattr(n, k) for k in fields} for n in ns.notes), key=key)
      theirs = sorted(({k: d[k] for k in fields} for d in ref["notes"]), key=key)
      assert ours == theirs, fname
      assert ns.total_time == ref["total_time"]
      assert [(t.time, t.qpm) for t in ns.tempos] == [(t["time"], t["qpm"]) for t in ref["tempos"]]
      checked += 1
  assert checked == 10
