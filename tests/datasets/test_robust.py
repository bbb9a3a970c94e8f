"""No file can stop, hang or exhaust a build; odd and small data sets; stale data (issue #13)."""

from __future__ import annotations

import csv
import glob
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import FIXTURE_MIDI
from malformed_midi import END, dense_file, ev, malformed_files, smf, tempo
from mvae_jax import data, datasets
from mvae_jax.music import converters, io
from mvae_jax.music._note_seq import NoteSequence
from mvae_jax.music.limits import Limits

FOLK = sorted(glob.glob(os.path.join(FIXTURE_MIDI, "folk", "*.mid")))
# One note held for 2^26 quarter notes in 37 bytes: 2^28 steps once quantized.
EXPANDS_TO_YEARS = smf([ev(0, 0x90, 60, 100) + ev(1 << 26, 0x80, 60, 0) + END], tpq=1)


def _bases() -> list[bytes]:
  return [open(p, "rb").read() for p in sorted(glob.glob(os.path.join(FIXTURE_MIDI, "*", "*.mid")))]


def _mvae(*args, timeout=900):
  return subprocess.run([sys.executable, "-m", "mvae_jax", *args], capture_output=True,
                        text=True, timeout=timeout)


def _rejected_rows(builder) -> list[dict]:
  with open(builder.rejected_file(), newline="") as f:
    return list(csv.DictReader(f, delimiter="\t"))


def _fuzz_build(tmp_path, n: int, seed: int):
  folder = tmp_path / "fuzz"
  folder.mkdir()
  files = malformed_files(n, seed, _bases())
  for name, payload in files:
    (folder / name).write_bytes(payload)
  r = _mvae("prepare", "midi_dir", "--midi_dir", str(folder), "--data_dir", str(tmp_path / "d"),
            "--time_limit", "30")
  assert r.returncode == 0, r.stderr[-3000:]
  assert "Traceback" not in r.stderr
  builder = datasets.get_builder("midi_dir", data_dir=str(tmp_path / "d"), midi_dir=str(folder))
  stats = builder.stats()
  rows = _rejected_rows(builder)
  kept = {str(ex["id"], "utf-8") if isinstance(ex["id"], bytes) else ex["id"]
          for s in builder.info.splits for ex in builder.as_data_source(split=s)}
  rejected = {os.path.basename(r["path"]) for r in rows}
  # every file is kept or rejected with a reason, never both, never neither
  assert stats["pieces_read"] == n
  assert kept | rejected == {name for name, _ in files} and not kept & rejected
  assert all(r["reason"] and r["detail"] for r in rows)
  assert sum(stats["rejected"].values()) == len(rows)
  assert sum(stats["kept"].values()) == len(kept)
  return stats


def test_300_malformed_files_never_stop_the_build(tmp_path):
  stats = _fuzz_build(tmp_path, 300, seed=0)
  # the pre-checks catch what would otherwise exhaust a worker
  assert {"too long", "too many tracks", "bad tempo", "unparseable"} <= set(stats["rejected"])


@pytest.mark.slow
def test_1200_malformed_files_never_stop_the_build(tmp_path):
  _fuzz_build(tmp_path, 1200, seed=1)


def test_a_file_past_the_memory_cap_is_rejected_not_the_build(tmp_path):
  folder = tmp_path / "m"
  folder.mkdir()
  for p in FOLK[:3]:
    shutil.copy(p, folder)
  (folder / "years.mid").write_bytes(EXPANDS_TO_YEARS)
  # the cheap pre-check rejects it before parsing ...
  _, stats, _ = datasets.prepare("midi_dir", data_dir=str(tmp_path / "a"), midi_dir=str(folder))
  assert stats["rejected"] == {"too long": 1} and sum(stats["kept"].values()) == 3
  # ... and with the pre-checks off, the worker's memory cap does (the build goes on)
  limits = Limits(max_ticks=0, max_quarters=0, memory_limit_mb=1500)
  builder, stats, _ = datasets.prepare("midi_dir", data_dir=str(tmp_path / "b"),
                                       midi_dir=str(folder), limits=limits)
  assert sum(stats["kept"].values()) == 3
  assert list(stats["rejected"]) in (["memory limit"], ["worker died"]), stats["rejected"]
  assert [r["path"] for r in _rejected_rows(builder)] == [str(folder / "years.mid")]


def test_time_limit_kills_the_worker_and_the_build_goes_on(tmp_path):
  folder = tmp_path / "t"
  folder.mkdir()
  for p in FOLK[:2]:
    shutil.copy(p, folder)
  # about 8 s of work on the fastest machine tried (the 2-core Xeon with AMX), 4x the limit;
  # the default 3,000 notes per track took under 2 s there
  (folder / "dense.mid").write_bytes(dense_file(notes_per_track=12000))
  _, stats, _ = datasets.prepare("midi_dir", data_dir=str(tmp_path / "d"), midi_dir=str(folder),
                                 limits=Limits(time_limit=2))
  assert stats["rejected"] == {"time limit": 1} and sum(stats["kept"].values()) == 2
  assert "dense.mid: ran past the time limit of 2s" in stats["rejected_examples"]["time limit"]


def test_a_folder_with_no_usable_file_is_one_line(tmp_path):
  folder = tmp_path / "bad"
  folder.mkdir()
  (folder / "empty.mid").write_bytes(b"")
  (folder / "years.mid").write_bytes(EXPANDS_TO_YEARS)
  r = _mvae("prepare", "midi_dir", "--midi_dir", str(folder), "--data_dir", str(tmp_path / "d"))
  assert r.returncode == 2, r.stderr[-2000:]
  lines = [l for l in r.stderr.splitlines() if l.startswith("mvae")]
  assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
  assert f"{folder}: no usable file among 2 (too long 1, unparseable 1)" in lines[0]


def test_empty_splits_warn_and_training_names_the_missing_split(tmp_path, capsys):
  folder = tmp_path / "small"
  folder.mkdir()
  shutil.copy(FOLK[0], folder)
  r = _mvae("prepare", "midi_dir", "--midi_dir", str(folder), "--data_dir", str(tmp_path))
  assert r.returncode == 0, r.stderr[-2000:]
  assert "warning: split validation is empty" in r.stdout
  assert "warning: split test is empty" in r.stdout
  with pytest.raises(data.DataError, match="has no validation split"):
    data.load_windows("midi_dir", "validation", "mel_2bar", data_dir=str(tmp_path),
                      midi_dir=str(folder))
  assert len(data.load_windows("midi_dir", "train", "mel_2bar", data_dir=str(tmp_path),
                               midi_dir=str(folder))) > 0


def test_stale_data_is_never_used_silently_and_rebuild_rebuilds(tmp_path, capsys):
  folder = tmp_path / "grow"
  folder.mkdir()
  for p in FOLK[:2]:
    shutil.copy(p, folder)
  args = ("prepare", "midi_dir", "--midi_dir", str(folder), "--data_dir", str(tmp_path / "d"))
  assert _mvae(*args).returncode == 0
  shutil.copy(FOLK[2], folder)
  r = _mvae(*args)
  assert r.returncode == 0 and "already prepared" in r.stdout
  assert "files added 1, removed 0, changed 0" in r.stderr and "--rebuild" in r.stderr
  data.load_windows("midi_dir", "train", "mel_2bar", data_dir=str(tmp_path / "d"),
                    midi_dir=str(folder))
  assert "files added 1" in capsys.readouterr().err  # what training prints
  r = _mvae(*args, "--rebuild")
  assert r.returncode == 0 and "built at" in r.stdout and "3 pieces read" in r.stdout
  assert "warning" not in r.stderr


def test_rewritten_or_moved_inputs_with_the_same_content_are_not_stale(tmp_path):
  """A reinstall rewrites the default corpus with new mtimes, often in another place (a fresh
  clone's virtual environment): the data set prepared from it is not stale. Changed content
  is, even at the same size; a folder emptied of its files changes no other file's name."""
  from mvae_jax.datasets import _base  # noqa: PLC0415
  a, b = tmp_path / "a" / "corpus", tmp_path / "b" / "elsewhere"
  for d in (a / "x", a / "y", b / "x", b / "y"):
    d.mkdir(parents=True)
  for sub, p in zip("xxy", FOLK[:3]):
    shutil.copy(p, a / sub)
    shutil.copy(p, b / sub)  # new mtimes, another folder
    os.utime(b / sub / os.path.basename(p), ns=(1, 1))
  listed = lambda root: sorted(str(p) for p in root.glob("*/*"))  # noqa: E731
  old = _base.fingerprint(listed(a), str(a))
  assert _base.fingerprint_change(old, listed(b), str(b))[0] == ""
  victim = b / "x" / os.path.basename(FOLK[1])
  body = bytearray(victim.read_bytes())
  body[-5] ^= 1
  victim.write_bytes(bytes(body))
  assert _base.fingerprint_change(old, listed(b), str(b))[0] == \
      "files added 0, removed 0, changed 1"
  (b / "y" / os.path.basename(FOLK[2])).unlink()
  assert _base.fingerprint_change(old, listed(b), str(b))[0] == \
      "files added 0, removed 1, changed 1"


def test_a_reinstalled_corpus_is_read_once_then_recorded(tmp_path, monkeypatch):
  """Once its files are found unchanged under new mtimes, the fingerprint records them, so the
  next start reads no file (each data load checks staleness)."""
  folder = tmp_path / "m"
  folder.mkdir()
  for p in FOLK[:2]:
    shutil.copy(p, folder)
  builder, _, _ = datasets.prepare("midi_dir", data_dir=str(tmp_path / "d"),
                                   midi_dir=str(folder))
  for p in folder.iterdir():
    os.utime(p, ns=(5, 5))
  from mvae_jax.datasets import _base  # noqa: PLC0415
  read = []
  monkeypatch.setattr(_base, "_digest", lambda path, real=_base._digest: read.append(path)
                      or real(path))
  assert builder.stale() == "" and len(read) == 2
  assert builder.stale() == "" and len(read) == 2


def test_an_unlistable_folder_is_a_rejection_not_a_silent_skip(tmp_path):
  folder = tmp_path / "deep"
  folder.mkdir()
  shutil.copy(FOLK[0], folder)
  fd = os.open(folder, os.O_RDONLY)
  try:
    for _ in range(18):  # 18 x 250 characters: a path over Linux's 4,096
      os.mkdir("d" * 250, dir_fd=fd)
      nxt = os.open("d" * 250, os.O_RDONLY, dir_fd=fd)
      os.close(fd)
      fd = nxt
    os.close(os.open("lost.mid", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
  finally:
    os.close(fd)
  _, stats, _ = datasets.prepare("midi_dir", data_dir=str(tmp_path / "d"), midi_dir=str(folder))
  assert stats["rejected"] == {"unreadable": 1}
  assert "cannot list this folder" in stats["rejected_examples"]["unreadable"]


def test_zero_tempo_is_rejected_with_its_reason(tmp_path):
  notes = b"".join(ev(0 if i == 0 else 40, 0x90, 60 + i % 12, 90) + ev(200, 0x80, 60 + i % 12, 0)
                   for i in range(506))
  data_ = smf([tempo(0, 0) + notes + END])
  with pytest.raises(io.MusicFileError) as e:
    io.midi_bytes_to_note_sequence(data_, "zero.mid", Limits())
  assert e.value.reason == "bad tempo" and "tempo of 0" in str(e.value)


def test_no_tempo_means_120_qpm_as_in_magenta_and_trio_does_not_crash():
  ns = io.read_midi(os.path.join(FIXTURE_MIDI, "freedoom", "fd1_D_E1M1.mid"))
  trio = converters.get_converter("trio_16bar")
  with_tempo = NoteSequence()
  with_tempo.CopyFrom(ns)
  del with_tempo.tempos[:]
  with_tempo.tempos.add(time=0.0, qpm=120.0)
  scale = ns.tempos[0].qpm / 120.0
  for n in with_tempo.notes:  # the same music in seconds at 120 qpm
    n.start_time, n.end_time = n.start_time * scale, n.end_time * scale
  with_tempo.total_time *= scale
  no_tempo = NoteSequence()
  no_tempo.CopyFrom(with_tempo)
  del no_tempo.tempos[:]
  expected = trio.to_labels(with_tempo)
  assert len(expected) > 0
  np.testing.assert_array_equal(trio.to_labels(no_tempo), expected)


def test_a_short_piece_is_too_short_even_when_its_first_part_is_empty():
  ns = NoteSequence()
  ns.tempos.add(time=0.0, qpm=120.0)
  ns.tempos.add(time=2.0, qpm=100.0)  # a split point: the first part (0-2 s) has no notes
  ns.time_signatures.add(time=0.0, numerator=4, denominator=4)
  for k in range(8):
    ns.notes.add(pitch=60 + k, velocity=80, start_time=2.0 + 0.3 * k, end_time=2.25 + 0.3 * k)
  ns.total_time = 4.5
  ext = converters.get_converter("mel_16bar").extract(ns)
  assert len(ext.labels) == 0 and ext.reason.startswith("too short"), ext.reason
