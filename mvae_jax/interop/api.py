"""What `mvae import` and `mvae export` run: one function each, returning the line to print."""

from __future__ import annotations

from mvae_jax.interop import magenta_import
from mvae_jax.interop.exporters import ExportError, human
from mvae_jax.interop.magenta_import import MagentaImportError
from mvae_jax.interop.tf_checkpoint import CheckpointError
from mvae_jax.interop.workdir import WorkdirError


# Every error of these modules is a ValueError with a one-line message (generate.ModelError too).
INTEROP_ERRORS = (MagentaImportError, CheckpointError, WorkdirError, ExportError, ValueError,
                  FileNotFoundError)


def import_command(checkpoint: str, cfg, workdir: str, *, reset_step: bool = False,
                   optimizer_state: bool = False) -> str:
  r = magenta_import.import_checkpoint(checkpoint, cfg, workdir, reset_step=reset_step,
                                       optimizer_state=optimizer_state)
  extra = f"; not imported: {', '.join(r['not_imported'])}" if r["not_imported"] else ""
  return (f"imported {r['checkpoint']} as {cfg.name}: {r['variables']} variables "
          f"({r['parameters']:,} parameters), global_step {r['global_step']}, written at step "
          f"{r['step']} to {workdir}; optimizer state: {r['optimizer_state']}{extra}")


def export_command(source: str, fmt: str, out: str, *, quantize: str | None = None,
                   optimizer_state: bool = False) -> str:
  from mvae_jax.interop import exporters  # noqa: PLC0415
  if not source:
    raise ExportError("give the model to export: --workdir DIR (or --checkpoint DIR/checkpoints/N)")
  if quantize and fmt != "magenta-js":
    raise ExportError(f"--quantize applies to --format magenta-js only (not {fmt})")
  if optimizer_state and fmt != "magenta-tf":
    raise ExportError(f"--optimizer_state applies to --format magenta-tf only (not {fmt})")
  return exporters.export(source, fmt, out, quantize=quantize, optimizer_state=optimizer_state)
