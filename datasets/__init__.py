"""TFDS builders over serialized note-seq NoteSequence protos (array_record, no TensorFlow).

Installed as `mvae_jax.datasets`. `get_builder(name, ...)` gives a builder; `prepare(...)` builds
one (or reuses it) and returns its extraction statistics.
"""

from __future__ import annotations

import os
import shutil

from mvae_jax.datasets._base import (SPLITS, NoteSequenceBuilder, WindowRecords,  # noqa: F401
                                     format_stats, read_windows)
from mvae_jax.datasets.folk_melodies import FolkMelodies
from mvae_jax.datasets.game_midi import GameMidi
from mvae_jax.datasets.midi_dir import MidiDir, MidiDirConfig
from mvae_jax.datasets.mma_grooves import MmaGrooves
from mvae_jax.music.io import MusicFileError
from mvae_jax.music.limits import Limits

BUILDERS = {
    "folk_melodies": FolkMelodies,
    "game_midi": GameMidi,
    "mma_grooves": MmaGrooves,
    "midi_dir": MidiDir,
}
DEFAULT_DATA_DIR = "~/mvae_data"


def default_data_dir() -> str:
  return os.path.expanduser(os.environ.get("MVAE_DATA_DIR", DEFAULT_DATA_DIR))


def prepare_command(name: str, midi_dir: str | None = None, data_dir: str | None = None) -> str:
  """The command line that prepares a data set (for error messages)."""
  cmd = f"mvae prepare {name}"
  if midi_dir:
    cmd += f" --midi_dir {midi_dir}"
  if data_dir:
    cmd += f" --data_dir {data_dir}"
  return cmd


def get_builder(name: str, data_dir: str | None = None, midi_dir: str | None = None,
                workers: int | None = None, limits: Limits | None = None,
                beam_options=None) -> NoteSequenceBuilder:
  """The TFDS builder of data set `name` (`midi_dir` needs the folder)."""
  if name not in BUILDERS:
    raise ValueError(f"unknown data set {name!r}: choose one of {', '.join(BUILDERS)}")
  data_dir = os.path.expanduser(data_dir) if data_dir else default_data_dir()
  kwargs = {"data_dir": data_dir, "file_format": "array_record", "workers": workers,
            "limits": limits, "beam_options": beam_options}
  if name == "midi_dir":
    if not midi_dir:
      raise ValueError("data set midi_dir needs --midi_dir DIR (a folder of .mid/.midi files)")
    kwargs["config"] = MidiDirConfig(midi_dir=midi_dir)
  elif midi_dir:
    raise ValueError(f"--midi_dir applies to the midi_dir data set only, not {name}")
  return BUILDERS[name](**kwargs)


def prepare(name: str, data_dir: str | None = None, midi_dir: str | None = None,
            workers: int | None = None, limits: Limits | None = None,
            rebuild: bool = False, beam_options=None) -> tuple[NoteSequenceBuilder, dict, bool]:
  """Builds data set `name` unless it is already prepared -> (builder, stats, built_now).

  A prepared data set whose inputs changed since (files added, removed or modified) is reused
  with `stats["stale"]` saying what changed, or rebuilt from scratch when `rebuild`.
  With `beam_options` (Beam PipelineOptions) it builds through Apache Beam.
  """
  builder = get_builder(name, data_dir, midi_dir, workers, limits, beam_options)
  if builder.is_prepared() and rebuild:
    shutil.rmtree(builder.data_dir)
    builder = get_builder(name, data_dir, midi_dir, workers, limits, beam_options)
  if builder.is_prepared():
    stats = builder.stats()
    stale = builder.stale()
    if stale:
      stats["stale"] = stale
    return builder, stats, False
  builder.download_and_prepare()
  return builder, builder.stats(), True


__all__ = ["BUILDERS", "SPLITS", "get_builder", "prepare", "prepare_command", "format_stats",
           "default_data_dir", "NoteSequenceBuilder", "MusicFileError", "Limits", "read_windows",
           "WindowRecords"]
