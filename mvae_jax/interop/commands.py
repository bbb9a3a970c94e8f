"""The `mvae import` and `mvae export` subcommands, registered by `cli.build_parser` with one call
(`add_parsers`), so that cli.py stays as it is otherwise."""

from __future__ import annotations

import argparse


def add_parsers(sub, load_config, user_error) -> None:
  """Adds `import` and `export` to the `mvae` subparsers `sub`.

  load_config(spec, overrides) -> cfg: the CLI's config loader; user_error: the exception class
  the CLI prints as one line (exit status 2).
  """

  def import_cmd(args, overrides) -> int:
    cfg = load_config(args.config, overrides)
    _quiet_logs()
    from mvae_jax.interop import api  # noqa: PLC0415
    try:
      print(api.import_command(args.checkpoint, cfg, args.workdir, reset_step=args.reset_step,
                               optimizer_state=args.optimizer_state))
    except api.INTEROP_ERRORS as e:
      raise user_error(str(e)) from None
    return 0

  def export_cmd(args) -> int:
    _quiet_logs()
    from mvae_jax.interop import api  # noqa: PLC0415
    try:
      print(api.export_command(args.checkpoint or args.workdir, args.format, args.out,
                               quantize=args.quantize, optimizer_state=args.optimizer_state))
    except api.INTEROP_ERRORS as e:
      raise user_error(str(e)) from None
    return 0

  p = sub.add_parser(
      "import", help="a Magenta TF checkpoint -> a training workdir",
      description="Reads a Magenta MusicVAE checkpoint (model.ckpt-N.index + .data-*, the folder "
      "holding them, or a released .tar) without TensorFlow, checks every variable against the "
      "config by name and shape, and writes a workdir that sample, interpolate, attributes, eval, "
      "export and train (fine-tuning) accept.",
      epilog="Override any config key with --config.KEY=VALUE (e.g. a model size). On a shape "
      "mismatch the error names the experiment (or the --config.model.* flags) the checkpoint "
      "matches. Example: mvae import cat-mel_2bar_big.tar --config cat-mel_2bar_big --workdir "
      "runs/mel_big. See docs/interop.md.")
  p.add_argument("checkpoint", help="model.ckpt-N (prefix, .index or .data file), its folder "
                 "(latest checkpoint), or a .tar/.tar.gz of one")
  p.add_argument("--config", default="", help="experiment name or path the checkpoint was trained "
                 "with (e.g. cat-mel_2bar_big)")
  p.add_argument("--workdir", required=True, help="new (or empty) folder to write")
  p.add_argument("--reset_step", action="store_true",
                 help="start at step 0 (fine-tuning restarts the schedules); default: keep the "
                 "checkpoint's global_step")
  p.add_argument("--optimizer_state", action="store_true",
                 help="also import Adam's slots (moments and count); default: a fresh optimizer")
  p.set_defaults(func=import_cmd)
  p = sub.add_parser(
      "export", help="a trained model -> magenta.js, a Magenta TF checkpoint, or a bundle",
      formatter_class=argparse.RawDescriptionHelpFormatter,
      description="Writes a trained model (a workdir, WORKDIR/checkpoints/STEP, or a bundle) for "
      "another tool, into a new folder; a refusal writes nothing.",
      epilog="""formats:
  magenta-js  config.json + weights_manifest.json + <= 4 MiB shards that @magenta/music's
              new MusicVAE(url) loads (1.23: cat-mel_2bar_*, cat-drums_2bar_*, hier-mel_16bar;
              flat-*_16bar with 2 encoder layers and hierdec-* are refused, with the reason)
  magenta-tf  model.ckpt-STEP.index/.data-00000-of-00001 + checkpoint, Magenta's variable names
  bundle      params.npz + config.json + bundle.json: parameters only, for
              generate.TrainedModel.load and as a source of mvae export
examples:
  mvae export web/mel --format magenta-js --workdir runs/mel
  mvae export mel_tf --format magenta-tf --workdir runs/mel --optimizer_state
  mvae export mel.bundle --format bundle --workdir runs/mel
see docs/interop.md""")
  p.add_argument("out", help="new (or empty) folder to write")
  p.add_argument("--format", required=True, choices=["magenta-js", "magenta-tf", "bundle"],
                 help="see below")
  p.add_argument("--workdir", default="", help="a training workdir (latest checkpoint) or a "
                 "bundle folder")
  p.add_argument("--checkpoint", default="", help="or a checkpoint: WORKDIR/checkpoints/STEP")
  p.add_argument("--quantize", default=None, choices=["uint8", "uint16", "float16"],
                 help="magenta-js: store weights quantized (4x/2x smaller; outputs change "
                 "beyond 1e-4; default float32)")
  p.add_argument("--optimizer_state", action="store_true",
                 help="magenta-tf: also write Adam's slots and beta powers, so Magenta's trainer "
                 "can resume")
  p.set_defaults(func=export_cmd)


def _quiet_logs():
  from absl import logging as absl_logging  # noqa: PLC0415
  absl_logging.set_verbosity(absl_logging.ERROR)
