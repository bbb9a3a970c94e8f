"""game_midi: real multi-track General MIDI from two Debian game-music packages.

* `openttd-openmsx`: 31 MIDI files in /usr/share/games/openttd/baseset/openmsx (GPL-2).
* `freedoom`: 67 MIDI music lumps inside freedoom1.wad/freedoom2.wad (BSD-3-Clause). Install
  without the game engine: `apt-get download freedoom && dpkg -x freedoom_*.deb /`.
Used for drums and trios (melody programs 0-31, bass 32-39, drums). Splits are by file/lump.
"""

from __future__ import annotations

import os

from mvae_jax.datasets._base import NoteSequenceBuilder, Piece
from mvae_jax.music import io as music_io
from mvae_jax.music.io import MusicFileError

OPENMSX_DIRS = ("/usr/share/games/openttd/baseset/openmsx",)
DOOM_DIRS = ("/usr/share/games/doom",)
WADS = ("freedoom1.wad", "freedoom2.wad")
INSTALL_HINT = ("apt-get install -y openttd-openmsx && (cd /tmp && apt-get download freedoom && "
                "dpkg -x freedoom_*.deb /)")


def load_midi_file(path: str, limits=None):
  return music_io.read_midi(path, limits)


def load_wad_lump(payload, limits=None):
  wad, lump = payload
  for name, data in music_io.wad_midi_lumps(wad):
    if name == lump:
      return music_io.midi_bytes_to_note_sequence(data, f"{os.path.basename(wad)}:{lump}", limits)
  raise MusicFileError(f"{wad}: lump {lump} not found")


def list_game_midi(openmsx_dirs=OPENMSX_DIRS, doom_dirs=DOOM_DIRS) -> list[Piece]:
  pieces = []
  for d in openmsx_dirs:
    if os.path.isdir(d):
      for path in music_io.find_midi_files(d):
        pid = f"openmsx/{os.path.basename(path)}"
        pieces.append(Piece(pid, pid, path, load_midi_file, path, file=path))
  for d in doom_dirs:
    for wad in WADS:
      path = os.path.join(d, wad)
      if os.path.exists(path):
        for lump, _ in music_io.wad_midi_lumps(path):
          pid = f"{wad[:-4]}/{lump}"
          pieces.append(Piece(pid, pid, f"{path}:{lump}", load_wad_lump, (path, lump), file=path))
  return pieces


class GameMidi(NoteSequenceBuilder):
  """OpenTTD openMSX and Freedoom music as NoteSequences."""

  DESCRIPTION = __doc__
  CONVERTERS = ("mel_2bar", "mel_16bar", "drums_2bar", "drums_16bar", "trio_16bar")

  def _pieces(self):
    pieces = list_game_midi()
    have = {p.id.split("/")[0] for p in pieces}
    missing = [s for s in ("openmsx", "freedoom1", "freedoom2") if s not in have]
    if missing:
      raise MusicFileError(f"game_midi: {', '.join(missing)} not found under "
                           f"{OPENMSX_DIRS[0]} / {DOOM_DIRS[0]}; install them: {INSTALL_HINT}")
    return pieces
