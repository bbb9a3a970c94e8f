"""mma_grooves: the hand-written 4/4 accompaniment grooves of Debian's `mma`, rendered to MIDI.

Every `DefGroove` of the library files under /usr/share/mma/lib whose `Time` is 4 is played for
16 bars of a fixed chord progression at 120 qpm. One `mma` run renders all grooves of a library
file in sequence (so the whole library takes about a minute); the MIDI is then cut into one
NoteSequence per groove. Drum patterns, bass lines (programs 32-39) and chord/arpeggio parts give
drum, melody and trio windows. Splits are by library file, so variations of one groove stay
together.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile

from mvae_jax.datasets._base import NoteSequenceBuilder, Piece
from mvae_jax.music import io as music_io
from mvae_jax.music._note_seq import sequences_lib
from mvae_jax.music.io import MusicFileError
from mvae_jax.music.limits import check_sequence

MMA_LIB = "/usr/share/mma/lib"
BARS = 16
QPM = 120.0
PROGRESSION = ("C", "Am", "F", "G7", "C", "Am", "Dm7", "G7",
               "F", "G", "Em", "Am", "Dm7", "G7", "C", "C")
SECONDS_PER_GROOVE = BARS * 4 * 60.0 / QPM

_DEF = re.compile(r"^\s*defgroove\s+(\S+)", re.IGNORECASE)
_TIME = re.compile(r"^\s*time\s+(\d+)", re.IGNORECASE)


def list_grooves(lib_file: str) -> list[str]:
  """Names of the grooves a library file defines while `Time` is 4, in file order."""
  grooves, time = [], 4
  with open(lib_file, encoding="latin-1") as f:
    for line in f:
      if m := _TIME.match(line):
        time = int(m.group(1))
      elif (m := _DEF.match(line)) and time == 4 and m.group(1).lower() not in (
          g.lower() for g in grooves):
        grooves.append(m.group(1))
  return grooves


def _song(use: str, grooves: list[str]) -> str:
  lines = [f"Tempo {QPM:g}", f"Use {use}"]
  bar = 1
  for g in grooves:
    lines += [f"Groove {g}", f"Tempo {QPM:g}"]
    for chord in PROGRESSION:
      lines.append(f"{bar} {chord}")
      bar += 1
  return "\n".join(lines) + "\n"


@functools.lru_cache(maxsize=4)
def render_library_file(lib_file: str) -> tuple:
  """All 4/4 grooves of one library file -> tuple of (groove, NoteSequence or error text)."""
  grooves = list_grooves(lib_file)
  use = os.path.splitext(os.path.relpath(lib_file, MMA_LIB))[0]
  with tempfile.TemporaryDirectory() as tmp:
    src = os.path.join(tmp, "song.mma")
    with open(src, "w") as f:
      f.write(_song(use, grooves))
    run = subprocess.run(["mma", src], cwd=tmp, capture_output=True, text=True, timeout=600)
    out = os.path.join(tmp, "song.mid")
    if not os.path.exists(out):
      err = (run.stdout + run.stderr).strip().splitlines()
      return tuple((g, f"mma failed: {err[-1] if err else 'no output'}") for g in grooves)
    with open(out, "rb") as f:
      whole = music_io.midi_bytes_to_note_sequence(f.read(), lib_file)
  result = []
  for k, g in enumerate(grooves):
    piece = sequences_lib.extract_subsequence(whole, k * SECONDS_PER_GROOVE,
                                              (k + 1) * SECONDS_PER_GROOVE)
    piece.total_time = SECONDS_PER_GROOVE  # the groove's 16 bars, trailing rests included
    result.append((g, piece))
  return tuple(result)


def load_groove(payload, limits=None):
  lib_file, k = payload
  name, ns = render_library_file(lib_file)[k]
  if isinstance(ns, str):
    raise MusicFileError(f"{lib_file}:{name}: {ns}")
  if limits is not None:
    check_sequence(ns, f"{lib_file}:{name}", limits)
  return ns


class MmaGrooves(NoteSequenceBuilder):
  """Debian mma's 4/4 groove library rendered to NoteSequences."""

  DESCRIPTION = __doc__
  CONVERTERS = ("mel_2bar", "mel_16bar", "drums_2bar", "drums_16bar", "trio_16bar")

  def input_files(self):
    return sorted(os.path.join(d, f) for d, _, files in os.walk(MMA_LIB) for f in files
                  if f.endswith(".mma"))

  def input_root(self):
    return MMA_LIB

  def _pieces(self):
    if not shutil.which("mma") or not os.path.isdir(MMA_LIB):
      raise MusicFileError("mma_grooves: Debian's mma is not installed; apt-get install -y mma, "
                           "then rerun mvae prepare mma_grooves")
    pieces = []
    for d, _, files in sorted(os.walk(MMA_LIB)):
      for fname in sorted(files):
        if not fname.endswith(".mma"):
          continue
        path = os.path.join(d, fname)
        rel = os.path.relpath(path, MMA_LIB)
        for k, g in enumerate(list_grooves(path)):
          pieces.append(Piece(f"{rel}#{g}", rel, f"mma {rel} groove {g}", load_groove, (path, k),
                              file=path))
    return pieces
