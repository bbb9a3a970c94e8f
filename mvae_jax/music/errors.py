"""The one error type of music input: a file that cannot be turned into a NoteSequence."""

from __future__ import annotations


class MusicFileError(ValueError):
  """str() is one line naming the file; `reason` is the category a build counts it under
  (unparseable, too long, too many tracks, too many notes, bad tempo, ...)."""

  def __init__(self, message: str, reason: str = "unparseable"):
    super().__init__(message)
    self.reason = reason
