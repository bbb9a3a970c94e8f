"""`mvae`: the command line. Thin: each command parses flags and calls one library function.

  mvae prepare DATASET [--data_dir DIR] [--midi_dir DIR] [--workers N]
"""

from __future__ import annotations

import argparse
import sys
import time


class UserError(Exception):
  """An error the user can fix: printed as one line, exit status 2."""


def _prepare(args) -> int:
  import tensorflow_datasets as tfds  # noqa: PLC0415  (keeps `mvae --help` fast)
  from absl import logging as absl_logging  # noqa: PLC0415

  from mvae_jax import datasets  # noqa: PLC0415

  tfds.disable_progress_bar()  # ours counts pieces; TFDS's counts shuffling internals
  absl_logging.set_verbosity(absl_logging.ERROR)

  t0 = time.time()
  try:
    builder, stats, built = datasets.prepare(args.dataset, data_dir=args.data_dir,
                                             midi_dir=args.midi_dir, workers=args.workers)
  except (ValueError, datasets.MusicFileError) as e:
    raise UserError(str(e)) from None
  verb = "built" if built else "already prepared (reused)"
  print(f"{args.dataset}: {verb} at {builder.data_dir} in {time.time() - t0:.1f}s")
  if stats:
    print(datasets.format_stats(stats))
  return 0


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="mvae", description="MusicVAE in JAX/Flax.")
  sub = parser.add_subparsers(dest="command", required=True)
  p = sub.add_parser("prepare", help="build a data set (TFDS, array_record) and print statistics")
  p.add_argument("dataset", help="folk_melodies | game_midi | mma_grooves | midi_dir")
  p.add_argument("--data_dir", default=None,
                 help="where prepared data sets live (default $MVAE_DATA_DIR or ~/mvae_data)")
  p.add_argument("--midi_dir", default=None, help="for midi_dir: the folder of MIDI files")
  p.add_argument("--workers", type=int, default=None, help="parser processes (default: cores)")
  p.set_defaults(func=_prepare)
  return parser


def main(argv: list[str] | None = None) -> int:
  args = build_parser().parse_args(argv)
  try:
    return args.func(args)
  except UserError as e:
    print(f"mvae {args.command}: error: {e}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
