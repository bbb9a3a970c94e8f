"""midi_dir: any directory tree of .mid/.midi files a user has (e.g. the Lakh MIDI data set).

`mvae prepare midi_dir --midi_dir DIR` builds one data set per directory (the builder config is
named after the folder and a hash of its absolute path). Splits are by file.
"""

from __future__ import annotations

import hashlib
import os
import re

import tensorflow_datasets as tfds

from mvae_jax.datasets._base import NoteSequenceBuilder, Piece
from mvae_jax.music import io as music_io


def config_name(midi_dir: str) -> str:
  path = os.path.abspath(os.path.expanduser(midi_dir))
  stem = re.sub(r"[^a-z0-9_]+", "_", os.path.basename(path.rstrip("/")).lower()).strip("_")
  return f"{stem or 'root'}_{hashlib.sha256(path.encode()).hexdigest()[:8]}"


class MidiDirConfig(tfds.core.BuilderConfig):
  def __init__(self, *, midi_dir: str, **kwargs):
    super().__init__(name=config_name(midi_dir), description=f"MIDI files under {midi_dir}",
                     **kwargs)
    self.midi_dir = os.path.abspath(os.path.expanduser(midi_dir))


def load_midi_file(path: str, limits=None):
  return music_io.read_midi(path, limits)


def load_unlistable(detail: str, limits=None):
  """A folder `find_midi_files` could not list: rejected with its reason, never skipped."""
  raise music_io.MusicFileError(detail, reason="unreadable")


class MidiDir(NoteSequenceBuilder):
  """A user's folder of MIDI files as NoteSequences."""

  DESCRIPTION = __doc__
  CONVERTERS = ("mel_2bar", "mel_16bar", "drums_2bar", "drums_16bar", "trio_16bar")
  BUILDER_CONFIGS = []

  def input_files(self):
    return music_io.find_midi_files(self.builder_config.midi_dir, [])

  def input_root(self):
    return self.builder_config.midi_dir

  def _what(self) -> str:
    return self.builder_config.midi_dir

  def _pieces(self):
    root = self.builder_config.midi_dir
    errors = []
    pieces = []
    for path in music_io.find_midi_files(root, errors):
      rel = os.path.relpath(path, root)
      pieces.append(Piece(rel, rel, path, load_midi_file, path, file=path))
    for path, detail in errors:
      rel = os.path.relpath(path, root)
      pieces.append(Piece(rel, rel, path, load_unlistable, detail))
    return pieces
