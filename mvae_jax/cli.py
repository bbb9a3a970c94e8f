"""`mvae`: the command line. Thin: each command parses flags and calls one library function.

  mvae prepare DATASET [--data_dir DIR] [--midi_dir DIR] [--workers N] [--rebuild] [limits]
  mvae train --config NAME_OR_PATH [--config.key=value ...] --workdir DIR
  mvae eval  --config NAME_OR_PATH [--config.key=value ...] --workdir DIR [--step N] [--split S]
  mvae sample --workdir DIR [--num 8] [--temperature 0.5] [--seed 0] [--out DIR]
  mvae attributes compute|apply --workdir DIR [...]
  mvae interpolate --workdir DIR --input_midi_1 A.mid --input_midi_2 B.mid [--num 7] [--out DIR]
  mvae demo [--steps N] [--out mvae_demo] [--workdir mvae_demo/run]
  mvae bench SUITE --workdir OUT [--preset quick|paper] [--config.key=value ...]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time

from mvae_jax import allocator, compile_cache

# commands that compile JAX programs: they use the persistent compilation cache
COMPILES = ("train", "eval", "sample", "interpolate", "attributes", "demo", "import", "export",
            "bench")


class UserError(Exception):
  """An error the user can fix: printed as one line, exit status 2."""


def _prepare(args) -> int:
  import tensorflow_datasets as tfds  # noqa: PLC0415  (keeps `mvae --help` fast)
  from absl import logging as absl_logging  # noqa: PLC0415

  from mvae_jax import datasets  # noqa: PLC0415

  tfds.disable_progress_bar()  # ours counts pieces; TFDS's counts shuffling internals
  absl_logging.set_verbosity(absl_logging.ERROR)

  t0 = time.time()
  limits = datasets.Limits(**{f: getattr(args, f) for f in _LIMIT_FIELDS})
  beam_options = None
  if args.beam or args.beam_pipeline_options:
    try:
      from mvae_jax.datasets import _beam  # noqa: PLC0415
    except ImportError:
      raise UserError("--beam needs Apache Beam: pip install -c constraints.txt -e '.[beam]'"
                      ) from None
    beam_options = _beam.pipeline_options(args.beam_pipeline_options)
  try:
    builder, stats, built = datasets.prepare(args.dataset, data_dir=args.data_dir,
                                             midi_dir=args.midi_dir, workers=args.workers,
                                             limits=limits, rebuild=args.rebuild,
                                             beam_options=beam_options)
  except (ValueError, datasets.MusicFileError) as e:
    raise UserError(str(e)) from None
  verb = "built" if built else "already prepared (reused)"
  print(f"{args.dataset}: {verb} at {builder.data_dir} in {time.time() - t0:.1f}s")
  if stats:
    print(datasets.format_stats(stats))
  if stats.get("rejected"):
    print(f"  every rejected file, with its reason: {builder.rejected_file()}")
  if stats.get("stale"):
    print(f"mvae prepare: warning: the inputs changed since this data set was prepared "
          f"({stats['stale']}); it still holds the old files: add --rebuild to rebuild it",
          file=sys.stderr)
  return 0


_LIMIT_FIELDS = ("time_limit", "memory_limit_mb", "max_quarters", "max_ticks", "max_tracks",
                 "max_notes", "max_qpm")
_LIMIT_HELP = {
    "time_limit": "seconds one file may take to parse and window; past it the worker is killed "
                  "and replaced, the file rejected",
    "memory_limit_mb": "address space of each worker process in MiB; a file needing more is "
                       "rejected",
    "max_quarters": "reject files longer than this many quarter notes",
    "max_ticks": "reject files longer than this many MIDI ticks (pretty_midi keeps 8 bytes a tick)",
    "max_tracks": "reject files with more MIDI tracks",
    "max_notes": "reject files with more notes",
    "max_qpm": "reject files with a faster tempo (quarters per minute; a tempo of 0 is always "
               "rejected)",
}


def _load_config(spec: str, overrides: list[str]):
  """`config.load` (NAME_OR_PATH, or a workdir's config.json; overrides in ml_collections'
  config_flags conventions: `--config.key=value` or `--config.key value`), errors as UserError.

  sample, interpolate and attributes take no overrides: they read the config in --workdir.
  """
  from mvae_jax import config  # noqa: PLC0415
  try:
    return config.load(spec, overrides)
  except config.ConfigError as e:
    raise UserError(str(e)) from None


def _quiet_logs():
  from absl import logging as absl_logging  # noqa: PLC0415
  absl_logging.set_verbosity(absl_logging.ERROR)


def _train(args, overrides) -> int:
  cfg = _load_config(_config_spec(args), overrides)
  _quiet_logs()
  from mvae_jax.data import DataError  # noqa: PLC0415
  from mvae_jax.train import loop, sharding  # noqa: PLC0415

  sharding.maybe_initialize_distributed(args.coordinator, args.num_processes, args.process_id)
  try:
    last = loop.train(cfg, args.workdir)
  except (loop.TrainError, DataError, ValueError) as e:
    raise UserError(str(e)) from None
  shown = {k: round(v, 4) for k, v in last.items()
           if k.split("/")[-1] in ("loss", "r_loss", "kl_bits", "accuracy", "sampled_accuracy")}
  print(f"trained {cfg.name} to step {last.get('step')} in {args.workdir}: {shown}")
  return 0


def _config_spec(args) -> str:
  """--config, else the config --workdir was trained with (resuming, evaluating)."""
  saved = os.path.join(args.workdir, "config.json")  # checkpoints.CONFIG_FILE, without JAX
  if args.config or os.path.exists(saved):
    return args.config or saved
  raise UserError(f"--config is required: --workdir {args.workdir} holds no run (no "
                  "config.json); give an experiment name (e.g. cat-mel_2bar_small_tiny) or a path "
                  "(experiments/cat-mel_2bar_small_tiny.py)")


def _eval(args, overrides) -> int:
  cfg = _load_config(_config_spec(args), overrides)
  _quiet_logs()
  from mvae_jax.data import DataError  # noqa: PLC0415
  from mvae_jax.train import loop  # noqa: PLC0415

  try:
    result = loop.evaluate(cfg, args.workdir, args.step, args.split)
  except (loop.TrainError, DataError, ValueError) as e:
    raise UserError(str(e)) from None
  print(json.dumps(result, indent=1))
  return 0


def _load_model(args):
  if not (args.workdir or args.checkpoint):
    raise UserError("give --workdir DIR (the workdir of `mvae train`) or --checkpoint "
                    "DIR/checkpoints/STEP")
  _quiet_logs()
  from mvae_jax import generate  # noqa: PLC0415
  try:
    return generate.TrainedModel.load(args.checkpoint or args.workdir)
  except (generate.ModelError, ValueError, FileNotFoundError) as e:
    raise UserError(str(e)) from None


def _write(model, seqs, out: str, mode: str, strip: bool = False, titles=None) -> list[str]:
  from mvae_jax.music import plot  # noqa: PLC0415
  from mvae_jax.music._note_seq import midi_io  # noqa: PLC0415

  os.makedirs(out, exist_ok=True)
  paths = []
  for i, ns in enumerate(seqs):
    path = os.path.join(out, f"{model.cfg.name}_{mode}_{i:02d}.mid")
    midi_io.note_sequence_to_midi_file(ns, path)
    paths.append(path)
  png = os.path.join(out, f"{model.cfg.name}_{mode}.png")
  plot.pianoroll_png(seqs, png, titles or [f"{mode} {i}" for i in range(len(seqs))], strip=strip,
                     seconds=model._window_seconds(seqs[0]) if seqs else None)
  return paths + [png]


def _sample(args) -> int:
  model = _load_model(args)
  seqs = model.sample(args.num, temperature=args.temperature, seed=args.seed)
  files = _write(model, seqs, args.out, "sample")
  print(f"wrote {len(seqs)} samples and a piano roll: {files[-1]}")
  return 0


def _interpolate(args) -> int:
  from mvae_jax import generate  # noqa: PLC0415
  from mvae_jax.music import io  # noqa: PLC0415

  model = _load_model(args)
  try:
    a, b = io.read_midi(args.input_midi_1), io.read_midi(args.input_midi_2)
    seqs = model.interpolate(a, b, args.num, method=args.method, temperature=args.temperature,
                             window=(args.window_1, args.window_2), seed=args.seed)
  except (io.MusicFileError, generate.ModelError) as e:
    raise UserError(str(e)) from None
  titles = ["A"] + [f"{i / (args.num - 1):.2f}" for i in range(1, args.num - 1)] + ["B"]
  files = _write(model, seqs, args.out, "interpolate", strip=True, titles=titles)
  print(f"wrote {len(seqs)} interpolation steps (A to B) and a piano-roll strip: {files[-1]}")
  return 0


def _attributes(args) -> int:
  from mvae_jax import data as data_lib  # noqa: PLC0415
  from mvae_jax import generate  # noqa: PLC0415
  from mvae_jax.music import attributes, io  # noqa: PLC0415

  model = _load_model(args)
  import numpy as np  # noqa: PLC0415

  vec_path = os.path.join(model.workdir, "attribute_vectors.npz")
  try:
    if args.action == "compute":
      d = model.cfg.data
      windows = data_lib.load_windows(d.dataset, args.split, d.converter,
                                      data_dir=d.data_dir or None, midi_dir=d.midi_dir or None)
      if len(windows) < 8:
        raise UserError(f"split {args.split} has {len(windows)} windows; need at least 8")
      rng = np.random.default_rng(args.seed)
      pick = rng.permutation(len(windows))[:args.num]
      half = len(pick) // 2
      labels = windows.labels[pick].astype(np.int32)
      vectors = model.attribute_vectors(labels[:half])
      np.savez(vec_path, vectors=vectors, names=np.array(attributes.NAMES), step=model.step)
      table = model.attribute_table(labels[half:], vectors, args.scale)
      print(f"attribute vectors from {half} {args.split} windows -> {vec_path}")
      print(f"relative attribute change when adding {args.scale:g}x each vector "
            f"(rows: vector added; columns: attribute measured; {len(labels) - half} other "
            "windows):")
      print("| vector \\ attribute | " + " | ".join(attributes.NAMES) + " |")
      print("|---" * 6 + "|")
      for name, row in zip(attributes.NAMES, table):
        print(f"| {name} | " + " | ".join(f"{x:+.2f}" for x in row) + " |")
      return 0
    if not os.path.exists(vec_path):
      raise UserError(f"{vec_path} missing: run `mvae attributes compute --workdir "
                      f"{model.workdir}` first")
    if args.attribute not in attributes.NAMES:
      raise UserError(f"--attribute {args.attribute!r}: choose one of {', '.join(attributes.NAMES)}")
    if not args.input_midi:
      raise UserError("mvae attributes apply needs --input_midi FILE")
    vectors = np.load(vec_path)["vectors"]
    ns = io.read_midi(args.input_midi)
    scales = [-args.scale, 0.0, args.scale]
    seqs = [model.apply_attribute([ns], vectors[attributes.NAMES.index(args.attribute)], k,
                                  window=args.window, temperature=args.temperature,
                                  seed=args.seed)[0] for k in scales]
    files = _write(model, seqs, args.out, f"attribute_{args.attribute}",
                   titles=[f"{args.attribute} {k:+g}" for k in scales])
    print(f"wrote {args.attribute} at scales {scales}: {files[-1]}")
  except (generate.ModelError, io.MusicFileError, ValueError) as e:
    raise UserError(str(e)) from None
  return 0


def _demo(args) -> int:
  from mvae_jax import demo  # noqa: PLC0415
  from mvae_jax.train import loop  # noqa: PLC0415
  _quiet_logs()
  try:
    demo.run(args.workdir, args.out, args.steps, args.data_dir)
  except (ValueError, loop.TrainError) as e:  # e.g. a --workdir of another run
    raise UserError(str(e)) from None
  return 0


def _at_least(low: float, kind=int):
  def parse(text: str):
    try:
      value = kind(text)
    except ValueError:
      raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < low:
      raise argparse.ArgumentTypeError(f"{text} is below {low:g}; use {low:g} or more")
    return value
  return parse


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="mvae", description="MusicVAE in JAX/Flax.")
  sub = parser.add_subparsers(dest="command", required=True)
  p = sub.add_parser("prepare", help="build a data set (TFDS, array_record) and print statistics")
  p.add_argument("dataset", help="folk_melodies | game_midi | mma_grooves | midi_dir")
  p.add_argument("--data_dir", default=None,
                 help="where prepared data sets live (default $MVAE_DATA_DIR or ~/mvae_data)")
  p.add_argument("--midi_dir", default=None, help="for midi_dir: the folder of MIDI files")
  p.add_argument("--workers", type=_at_least(1), default=None,
                 help="parser processes (default: cores)")
  p.add_argument("--beam", action="store_true",
                 help="build through Apache Beam (TFDS's Beam support; the `beam` extra): the "
                      "DirectRunner here, Dataflow, Flink or Spark by --beam_pipeline_options")
  p.add_argument("--beam_pipeline_options", default="",
                 help="Beam pipeline options as KEY=VALUE,KEY=VALUE (implies --beam), e.g. "
                      "runner=DirectRunner,direct_num_workers=2,direct_running_mode=multi_processing")
  p.add_argument("--rebuild", action="store_true",
                 help="rebuild the data set from scratch (e.g. after files were added)")
  from mvae_jax.music.limits import Limits  # noqa: PLC0415  (a plain dataclass, no heavy import)
  for field, default in ((f, getattr(Limits, f)) for f in _LIMIT_FIELDS):
    p.add_argument(f"--{field}", type=_at_least(0, type(default)), default=default,
                   help=f"{_LIMIT_HELP[field]} (default {default}; 0: no limit)")
  p.set_defaults(func=_prepare)
  for name, func, helptext in (("train", _train, "train (or resume) a configuration"),
                               ("eval", _eval, "evaluate a checkpoint on held-out data")):
    p = sub.add_parser(name, help=helptext,
                       epilog="Override any config key with --config.KEY=VALUE.")
    p.add_argument("--config", default="",
                   help="experiment name, path to its .py file, or a workdir's config.json "
                   "(default: the --workdir's own, when it has one)")
    p.add_argument("--workdir", required=True, help="checkpoints, TensorBoard logs, config")
    if name == "train":
      p.add_argument("--coordinator", default="", help="multi-host: jax.distributed address")
      p.add_argument("--num_processes", type=int, default=0,
                     help="multi-host: how many processes (0: detect, as on TPU pods and SLURM)")
      p.add_argument("--process_id", type=int, default=-1,
                     help="multi-host: this process's index (-1: detect)")
    else:
      p.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
      p.add_argument("--split", default=None, help="data split (default: the config's)")
    p.set_defaults(func=func)
  for name, func, helptext in (("sample", _sample, "sample from a trained model"),
                               ("interpolate", _interpolate, "interpolate between two MIDI files")):
    p = sub.add_parser(name, help=helptext)
    p.add_argument("--workdir", default="", help="a training workdir (latest checkpoint)")
    p.add_argument("--checkpoint", default="", help="or a checkpoint: WORKDIR/checkpoints/STEP")
    p.add_argument("--num", type=_at_least(1 if name == "sample" else 2),
                   default=8 if name == "sample" else 7,
                   help="samples" if name == "sample" else "interpolation steps including A and B")
    p.add_argument("--temperature", type=_at_least(0.0, float),
                   default=0.5 if name == "sample" else 0.0,
                   help="sampling temperature (0: argmax)")
    p.add_argument("--seed", type=int, default=0,
                   help="random seed of z and of sampling" if name == "sample"
                   else "random seed of sampling (temperature > 0)")
    p.add_argument("--out", default="mvae_out", help="folder for the MIDI files and PNG")
    if name == "interpolate":
      p.add_argument("--input_midi_1", required=True, help="MIDI file A (the start)")
      p.add_argument("--input_midi_2", required=True, help="MIDI file B (the end)")
      p.add_argument("--window_1", type=_at_least(0), default=0, help="which window of input 1")
      p.add_argument("--window_2", type=_at_least(0), default=0, help="which window of input 2")
      p.add_argument("--method", default="slerp", choices=["slerp", "linear"],
                     help="how to move from A's z to B's")
    p.set_defaults(func=func)
  p = sub.add_parser("attributes", help="attribute vectors: compute them, or apply one")
  p.add_argument("action", choices=["compute", "apply"])
  p.add_argument("--workdir", default="", help="a training workdir (latest checkpoint)")
  p.add_argument("--checkpoint", default="", help="or a checkpoint: WORKDIR/checkpoints/STEP")
  p.add_argument("--split", default="validation", help="compute: the windows to use")
  p.add_argument("--num", type=_at_least(8), default=2000,
                 help="compute: windows (half derive, half test)")
  p.add_argument("--attribute", default="note_density", help="apply: which vector")
  p.add_argument("--scale", type=float, default=1.0, help="k in z + k * vector")
  p.add_argument("--input_midi", default="", help="apply: the melody to change")
  p.add_argument("--window", type=_at_least(0), default=0,
                 help="apply: which window of --input_midi")
  p.add_argument("--seed", type=int, default=0,
                 help="compute: which windows; apply: sampling seed")
  p.add_argument("--temperature", type=_at_least(0.0, float), default=0.0,
                 help="apply: sampling temperature of the outputs (0: argmax)")
  p.add_argument("--out", default="mvae_out", help="apply: folder for the MIDI files and PNG")
  p.set_defaults(func=_attributes)
  p = sub.add_parser("demo", help="prepare the default data, train a small model, write music")
  p.add_argument("--workdir", default="mvae_demo/run", help="training workdir (resumed if present)")
  p.add_argument("--out", default="mvae_demo", help="folder for MIDI files and pictures")
  p.add_argument("--steps", type=int, default=None,
                 help="training steps (default: the demo-mel_2bar config's train.num_steps)")
  p.add_argument("--data_dir", default=None, help="prepared data sets (default ~/mvae_data)")
  p.set_defaults(func=_demo)
  # --- interchange: mvae import / mvae export (mvae_jax/interop, docs/interop.md) ---
  from mvae_jax.interop import commands  # noqa: PLC0415
  commands.add_parsers(sub, _load_config, UserError)
  # --- benchmarks: mvae bench (mvae_jax/bench) ---
  from mvae_jax.bench import commands as bench_commands  # noqa: PLC0415
  bench_commands.add_parsers(sub, UserError)
  return parser


def _allocator_for(argv: list[str]) -> str | None:
  """The allocator `mvae train`'s step wants (`allocator.default_for` its config at its batch);
  None for other commands and where the config cannot be read (the run then says why)."""
  if not argv or argv[0] != "train" or {"-h", "--help"} & set(argv):
    return None
  try:
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
      args, extra = build_parser().parse_known_args(argv)
      cfg = _load_config(_config_spec(args), extra)
    return allocator.default_for(allocator.step_array_bytes(cfg, args.num_processes or 1))
  except (Exception, SystemExit):  # noqa: BLE001
    return None


def main(argv: list[str] | None = None) -> int:
  if argv is None:
    bad = allocator.check_setting()
    if bad:
      print(f"mvae: error: {bad}", file=sys.stderr)
      return 2
    default = None if allocator.ENV in os.environ else _allocator_for(sys.argv[1:])
    allocator.reexec_with_tcmalloc(["-m", "mvae_jax", *sys.argv[1:]], default)
  argv = sys.argv[1:] if argv is None else argv
  parser = build_parser()
  args, extra = parser.parse_known_args(argv)
  takes_overrides = args.command in ("train", "eval", "import", "bench")
  if extra and not (takes_overrides and extra[0].startswith(("--config.", "--noconfig."))):
    hint = ""
    if any(a.startswith(("--config.", "--noconfig.")) for a in extra):
      hint = (f"; {args.command} reads the config saved in its --workdir, overrides "
              "(--config.KEY=VALUE) apply to train, eval, import and bench")
    parser.exit(2, f"mvae {args.command}: error: unrecognized arguments: {' '.join(extra)}"
                   f"{hint}\n")
  try:
    if args.command in COMPILES:
      compile_cache.enable()
    if takes_overrides:
      return args.func(args, extra)
    return args.func(args)
  except UserError as e:
    print(f"mvae {args.command}: error: {e}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
