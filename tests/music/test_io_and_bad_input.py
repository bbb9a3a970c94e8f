"""Bad input gives a one-line reason naming the file, never a library traceback."""

from __future__ import annotations

import os
import shutil

import pytest

from conftest import FIXTURE_MIDI
from mvae_jax.music import converters, io

REAL = os.path.join(FIXTURE_MIDI, "freedoom", "fd1_D_E1M1.mid")


def _one_line(e: Exception, name: str):
  msg = str(e)
  assert "\n" not in msg and name in msg, msg


def test_empty_file(tmp_path):
  p = tmp_path / "empty.mid"
  p.write_bytes(b"")
  with pytest.raises(io.MusicFileError) as e:
    io.read_midi(str(p))
  _one_line(e.value, "empty.mid")
  assert "empty" in str(e.value)


def test_not_midi(tmp_path):
  p = tmp_path / "notes.mid"
  p.write_text("this is not a MIDI file")
  with pytest.raises(io.MusicFileError) as e:
    io.read_midi(str(p))
  _one_line(e.value, "notes.mid")


def test_corrupt_header(tmp_path):
  data = open(REAL, "rb").read()
  p = tmp_path / "corrupt.mid"
  p.write_bytes(data[:14] + b"\xff" * 64)
  with pytest.raises(io.MusicFileError) as e:
    io.read_midi(str(p))
  _one_line(e.value, "corrupt.mid")


def test_truncated_file_is_read_tolerantly_or_rejected_cleanly(tmp_path):
  data = open(REAL, "rb").read()
  p = tmp_path / "truncated.mid"
  p.write_bytes(data[: len(data) // 2])
  try:
    ns = io.read_midi(str(p))
  except io.MusicFileError as e:
    _one_line(e, "truncated.mid")
  else:  # symusic reads what is there
    full = io.read_midi(REAL)
    assert 0 < len(ns.notes) < len(full.notes)


def test_directory_without_midi(tmp_path):
  (tmp_path / "readme.txt").write_text("no music here")
  with pytest.raises(io.MusicFileError) as e:
    io.find_midi_files(str(tmp_path))
  _one_line(e.value, str(tmp_path))
  with pytest.raises(io.MusicFileError):
    io.find_midi_files(str(tmp_path / "missing"))


def test_non_4_4_piece_has_a_reason():
  ns = io.read_midi(os.path.join(FIXTURE_MIDI, "folk", "folk_ryan_LamsonsHornpipe.mid"))  # 2/4
  ext = converters.get_converter("mel_2bar").extract(ns)
  assert len(ext.labels) == 0
  assert ext.reason.startswith("not 4/4") and "2/4" in ext.reason


def test_drum_only_file_given_to_melody_converter():
  ns = io.read_midi(REAL)
  drums = converters._keep_notes(ns, lambda n: n.is_drum)
  ext = converters.get_converter("mel_2bar").extract(drums)
  assert len(ext.labels) == 0 and ext.reason.startswith("no notes")
  ext = converters.get_converter("trio_16bar").extract(drums)
  assert ext.reason.startswith("missing instrument")


def test_wad_lumps_are_midi():
  wad = "/usr/share/games/doom/freedoom2.wad"
  if not os.path.exists(wad):
    pytest.skip("freedoom not installed (see README)")
  lumps = io.wad_midi_lumps(wad)
  assert len(lumps) > 20 and all(d.startswith(b"MThd") for _, d in lumps)
  # the fixture lumps were written byte for byte from this WAD
  data = dict(lumps)
  assert data["D_RUNNIN"] == open(os.path.join(FIXTURE_MIDI, "freedoom", "fd2_D_RUNNIN.mid"),
                                  "rb").read()


def test_abc_tune_conversion_matches_fixture_midi():
  if not shutil.which("abc2midi"):
    pytest.fail("abc2midi missing: apt-get install -y abcmidi")
  abc = open(os.path.join(FIXTURE_MIDI, "folk", "folk_ryan_McDonaldsReel.abc")).read()
  (x, tune), = io.split_abc_tunes(abc)
  midi = io.abc_tunes_to_midi(tune)[x]
  ours = io.midi_bytes_to_note_sequence(midi, "McDonaldsReel")
  ref = io.read_midi(os.path.join(FIXTURE_MIDI, "folk", "folk_ryan_McDonaldsReel.mid"))
  assert [(n.pitch, n.start_time, n.end_time) for n in ours.notes] == \
         [(n.pitch, n.start_time, n.end_time) for n in ref.notes]
