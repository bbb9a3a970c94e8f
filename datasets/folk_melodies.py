"""folk_melodies: the 4/4-type tunes among the ~11,500 folk tunes bundled in the music21 wheel
(3,464 of 11,582); the embedded default data set.

Sources: music21's `corpus/` folders essenFolksong, oneills1850 and ryansMammoth (ABC), read from
the installed wheel at prepare time and never copied into this repository (some carry a
non-commercial clause). Each tune (`X:` block, with its file's header) goes through Debian's
`abc2midi -silent -NGUI -NGRA` (no chord accompaniment, no grace notes, repeats expanded, 120 qpm),
as the Magenta reference fixtures were made; note_seq then parses the MIDI. Splits are by tune.
Tunes whose every meter has bars of other than 4 quarter notes are turned down first
(`check_meter`): no converter can window them.
"""

from __future__ import annotations

import importlib.util
import os
import re

from mvae_jax.datasets._base import NoteSequenceBuilder, Piece
from mvae_jax.music import io as music_io
from mvae_jax.music.io import MusicFileError

COLLECTIONS = ("essenFolksong", "oneills1850", "ryansMammoth")


def music21_corpus_dir() -> str:
  spec = importlib.util.find_spec("music21")  # found, not imported (the import is heavy)
  if spec is None or not spec.submodule_search_locations:
    raise MusicFileError("folk_melodies reads the tunes bundled in the music21 wheel, which is not "
                         "installed: pip install 'mvae-jax[folk]'")
  return os.path.join(list(spec.submodule_search_locations)[0], "corpus")


def _bar_quarters(meter: str) -> float | None:
  """Quarter notes per bar of a numeric ABC meter ('6/8' -> 3.0); None for any other form
  ('C', 'C|', 'none', ...)."""
  m = re.fullmatch(r"(\d+)\s*/\s*(\d+)", meter)
  return 4 * int(m.group(1)) / int(m.group(2)) if m and int(m.group(2)) else None


def check_meter(payload) -> None:
  """Rejects ("not 4/4") a tune whose every meter is numeric with bars of other than 4 quarter
  notes (2/4, 3/4, 6/8, ...), before conversion: every converter here needs 16-step bars, so
  such a tune gives no window, and converting them was 70% of the build's time. Tunes with no
  meter (abc2midi's 4/4), 'C', 'C|' or any other form are converted."""
  name, text = payload
  meters = music_io.abc_meters(text)
  if meters and all(_bar_quarters(m) not in (None, 4.0) for m in meters):
    raise MusicFileError(f"{name}: meter {', '.join(dict.fromkeys(meters))} has no bar of 4 "
                         "quarter notes, which every converter needs", reason="not 4/4")


def load_abc_tune(payload, limits=None) -> "music_io.NoteSequence":
  """payload (name, ABC text of one tune) -> NoteSequence, via abc2midi."""
  name, text = payload
  midis = music_io.abc_tunes_to_midi(text)
  if len(midis) != 1:
    raise MusicFileError(f"{name}: abc2midi could not convert this tune")
  return music_io.midi_bytes_to_note_sequence(next(iter(midis.values())), name, limits)


def list_tunes(corpus_dir: str, collections=COLLECTIONS) -> list[Piece]:
  pieces = []
  for coll in collections:
    folder = os.path.join(corpus_dir, coll)
    if not os.path.isdir(folder):
      raise MusicFileError(f"{folder}: music21 corpus folder missing; reinstall music21 "
                           "(pip install --force-reinstall music21)")
    for fname in sorted(os.listdir(folder)):
      if not fname.endswith(".abc"):
        continue
      with open(os.path.join(folder, fname), encoding="utf-8", errors="replace") as f:
        text = f.read()
      seen = set()
      for x, tune in music_io.split_abc_tunes(text):
        pid = f"{coll}/{fname}#X{x}"
        k = 1
        while pid in seen:  # duplicated X numbers in one file
          k += 1
          pid = f"{coll}/{fname}#X{x}.{k}"
        seen.add(pid)
        pieces.append(Piece(id=pid, split_key=pid, source=f"music21 corpus/{pid}",
                            load=load_abc_tune, payload=(f"music21 corpus/{pid}", tune),
                            file=os.path.join(folder, fname), precheck=check_meter))
  return pieces


class FolkMelodies(NoteSequenceBuilder):
  """Folk tunes from the music21 corpus (ABC -> abc2midi -> NoteSequence)."""

  DESCRIPTION = __doc__
  CONVERTERS = ("mel_2bar", "mel_16bar")

  def input_files(self):
    corpus = music21_corpus_dir()
    return sorted(os.path.join(corpus, c, f) for c in COLLECTIONS
                  if os.path.isdir(os.path.join(corpus, c))
                  for f in os.listdir(os.path.join(corpus, c)) if f.endswith(".abc"))

  def input_root(self):
    return music21_corpus_dir()

  def _pieces(self):
    if not music_io.abc2midi_available():
      raise MusicFileError("folk_melodies: abc2midi is not installed; install Debian's abcmidi "
                           "(apt-get install -y abcmidi), then rerun mvae prepare folk_melodies")
    return list_tunes(music21_corpus_dir())
