"""`mvae prepare --beam`: a DirectRunner build through TFDS's Apache Beam support yields the same
examples, rejections and windows as the local build (the `beam` extra)."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from conftest import FIXTURE_MIDI
from mvae_jax import datasets
from mvae_jax.datasets import _base

beam = pytest.importorskip("apache_beam", reason="the beam extra: pip install -e '.[beam]'")


def _examples(builder) -> dict:
  out = {}
  for split in builder.info.splits:
    for ex in builder.as_data_source(split=split):
      out[ex["id"]] = (split, ex["source"], ex["note_sequence"], int(ex["num_notes"]))
  return out


def test_direct_runner_build_equals_the_local_build(tmp_path):
  from mvae_jax.datasets import _beam
  folder = tmp_path / "midi"
  shutil.copytree(os.path.join(FIXTURE_MIDI, "freedoom"), folder)
  shutil.copy(os.path.join(FIXTURE_MIDI, "folk", "folk_ryan_McDonaldsReel.mid"), folder)
  (folder / "empty.mid").write_bytes(b"")
  (folder / "cut.mid").write_bytes((folder / "fd1_D_E1M1.mid").read_bytes()[:300])
  local, local_stats, _ = datasets.prepare("midi_dir", data_dir=str(tmp_path / "local"),
                                           midi_dir=str(folder))
  options = _beam.pipeline_options("runner=DirectRunner,direct_num_workers=1")
  beamed, beam_stats, built = datasets.prepare("midi_dir", data_dir=str(tmp_path / "beam"),
                                               midi_dir=str(folder), beam_options=options)
  assert built
  ours, theirs = _examples(local), _examples(beamed)
  assert len(ours) == 9 and ours == theirs
  with open(local.rejected_file()) as a, open(beamed.rejected_file()) as b:
    assert a.read() == b.read()
  assert local_stats == beam_stats
  for c in local.CONVERTERS:
    for split in local.info.splits:
      a = _base.read_windows(local.windows_file(c, split))  # (labels, piece, ids)
      b = _base.read_windows(beamed.windows_file(c, split))
      np.testing.assert_array_equal(np.asarray(a[0][:]), np.asarray(b[0][:]))
      for x, y in zip(a[1:], b[1:]):
        np.testing.assert_array_equal(x, y)
