"""Piano-roll pictures of NoteSequences (PNG, matplotlib's Agg backend, no display needed)."""

from __future__ import annotations

from typing import Sequence

from mvae_jax.music._note_seq import NoteSequence

COLORS = {"melody": "#1f6fb4", "bass": "#d2691e", "drums": "#2e8b57"}


def _role(note) -> str:
  if note.is_drum:
    return "drums"
  return "bass" if 32 <= note.program <= 39 else "melody"


def _pyplot():
  import matplotlib  # noqa: PLC0415
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # noqa: PLC0415
  return plt


def _draw(ax, seqs: Sequence[NoteSequence], span: float, titles: Sequence[str] | None,
          strip: bool) -> None:
  """Notes of `seqs` on one axis: side by side (`strip`) or overlaid at offset 0."""
  plt = _pyplot()
  for i, ns in enumerate(seqs):
    offset = i * span if strip else 0.0
    for n in ns.notes:
      ax.add_patch(plt.Rectangle((offset + n.start_time, n.pitch - 0.4),
                                 max(n.end_time - n.start_time, 0.02), 0.8,
                                 color=COLORS[_role(n)], lw=0))
    if strip:
      ax.axvline(offset, color="#999999", lw=0.8)
      if titles:
        ax.text(offset + 0.02 * span, 1.0, titles[i], transform=ax.get_xaxis_transform(),
                va="bottom", fontsize=8)
  pitches = [n.pitch for ns in seqs for n in ns.notes] or [60]
  ax.set_ylim(min(pitches) - 2, max(pitches) + 2)
  ax.set_xlim(0, span * (len(seqs) if strip else 1))
  ax.set_ylabel("MIDI pitch")


def pianoroll_png(seqs: Sequence[NoteSequence], path: str, titles: Sequence[str] | None = None,
                  strip: bool = False, seconds: float | None = None) -> str:
  """One panel per sequence, or (`strip`) all side by side on one time axis, A to B."""
  return strips_png([(None, seqs, titles)] if strip else
                    [(t, [ns], None) for ns, t in zip(seqs, titles or [None] * len(seqs))],
                    path, seconds)


def strips_png(rows: Sequence[tuple], path: str, seconds: float | None = None) -> str:
  """One row per (row title, sequences, per-sequence titles): the sequences side by side."""
  plt = _pyplot()
  seqs_all = [ns for _, seqs, _ in rows for ns in seqs]
  span = seconds or max([ns.total_time for ns in seqs_all] + [1e-3])
  width = max(8, 2.2 * max(len(seqs) for _, seqs, _ in rows))
  fig, axes = plt.subplots(len(rows), 1, figsize=(width, 2.4 * len(rows)), squeeze=False)
  for (title, seqs, titles), row in zip(rows, axes):
    _draw(row[0], seqs, span, titles, strip=len(seqs) > 1 or bool(titles))
    if title:
      row[0].set_title(title, fontsize=9, loc="left", pad=14 if titles else 4)
  axes[-1][0].set_xlabel("seconds")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path
