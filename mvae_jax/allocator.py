"""Run on TCMalloc when the machine has it: XLA's CPU backend allocates and frees large
temporaries every step, and glibc's malloc returns each one over 32 MiB to the kernel and
page-faults it in again on the next step. With TCMalloc the memory is reused.

Measured on a 2-core CPU (bench/allocator.py): a [16384, 2048] gather 114 -> 27 ms,
cat-mel_2bar_small's train step at batch 512 14.0 -> 9.3 s (machine shared, one run each).
The library cannot be loaded into a running process, so `mvae` (and the bench/ scripts)
re-execute themselves once with `LD_PRELOAD` set, before anything imports JAX.
`MVAE_MALLOC=system` turns this off. Debian/Ubuntu: `apt-get install libtcmalloc-minimal4`.
"""

from __future__ import annotations

import os
import sys

CANDIDATES = ("/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
              "/usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4",
              "/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4",
              "/usr/lib/libtcmalloc_minimal.so.4")
ENV = "MVAE_MALLOC"


def library() -> str | None:
  """The first TCMalloc found on this machine, or None."""
  return next((p for p in CANDIDATES if os.path.exists(p)), None)


def active() -> bool:
  return "tcmalloc" in os.environ.get("LD_PRELOAD", "")


def reexec_with_tcmalloc(args: list[str]) -> None:
  """Replaces this process by `python args...` with TCMalloc preloaded (the CLI passes
  `-m mvae_jax ...`, a bench script its own path and arguments); returns without doing
  anything when it is already loaded, absent, turned off, or JAX is already imported."""
  lib = library()
  if (os.environ.get(ENV) == "system" or active() or lib is None or "jax" in sys.modules
      or sys.platform != "linux"):
    return
  env = dict(os.environ, LD_PRELOAD=":".join(filter(None, [lib, os.environ.get("LD_PRELOAD")])))
  sys.stdout.flush()
  sys.stderr.flush()
  os.execve(sys.executable, [sys.executable, *args], env)


def describe() -> str:
  return "tcmalloc" if active() else "system malloc"
