"""Imports note_seq quietly (its package import pulls in pydub, which warns about ffmpeg)."""

import warnings

with warnings.catch_warnings():
  warnings.simplefilter("ignore")
  import note_seq  # noqa: F401
  from note_seq import constants, drums_lib, melodies_lib, midi_io, music_pb2, sequences_lib  # noqa: F401

NoteSequence = music_pb2.NoteSequence
