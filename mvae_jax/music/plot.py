"""Piano-roll pictures of NoteSequences (PNG, matplotlib's Agg backend, no display needed)."""

from __future__ import annotations

from typing import Sequence

from mvae_jax.music._note_seq import NoteSequence

COLORS = {"melody": "#1f6fb4", "bass": "#d2691e", "drums": "#2e8b57"}


def _role(note) -> str:
  if note.is_drum:
    return "drums"
  return "bass" if 32 <= note.program <= 39 else "melody"


def pianoroll_png(seqs: Sequence[NoteSequence], path: str, titles: Sequence[str] | None = None,
                  strip: bool = False, seconds: float | None = None) -> str:
  """One panel per sequence, or (`strip`) all side by side on one time axis, A to B."""
  import matplotlib  # noqa: PLC0415
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # noqa: PLC0415

  span = seconds or max([ns.total_time for ns in seqs] + [1e-3])
  rows = 1 if strip else len(seqs)
  fig, axes = plt.subplots(rows, 1, figsize=(max(8, 2.2 * len(seqs)) if strip else 10,
                                             2.4 * rows), squeeze=False)
  for i, ns in enumerate(seqs):
    ax = axes[0 if strip else i][0]
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
    elif titles:
      ax.set_title(titles[i], fontsize=9, loc="left")
  for row in axes:
    ax = row[0]
    pitches = [n.pitch for ns in seqs for n in ns.notes] or [60]
    ax.set_ylim(min(pitches) - 2, max(pitches) + 2)
    ax.set_xlim(0, span * (len(seqs) if strip else 1))
    ax.set_ylabel("MIDI pitch")
  axes[-1][0].set_xlabel("seconds")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path
