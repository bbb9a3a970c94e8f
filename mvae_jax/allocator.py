"""Pick the process's memory allocator before JAX loads: TCMalloc when the machine has it, or
glibc with huge pages for `mvae train`'s large steps (below). XLA's CPU backend allocates and
frees large temporaries every step, and glibc's malloc returns each one over 32 MiB to the
kernel and page-faults it in again on the next step. With TCMalloc the memory is reused.

Measured on the earlier rounds' 2-core Intel machine: a [16384, 2048] gather 114 -> 27 ms,
cat-mel_2bar_small's train step at batch 512 14.0 -> 9.3 s (machine shared, one run each).
The library cannot be loaded into a running process, so `mvae` (and the bench/ scripts)
re-execute themselves once with `LD_PRELOAD` set, before anything imports JAX.
Debian/Ubuntu: `apt-get install libtcmalloc-minimal4`.

`MVAE_MALLOC=system` runs on glibc's malloc (taking TCMalloc out of an inherited LD_PRELOAD)
and asks it for transparent huge pages (`GLIBC_TUNABLES=glibc.malloc.hugetlb=1`, unless
GLIBC_TUNABLES already sets it; glibc 2.35+, and the kernel's THP mode `madvise` or `always`):
each large temporary still goes back to the kernel when freed, but comes back in 2 MiB pages,
512 times fewer faults. TCMalloc keeps what it frees, so its peak RSS at large batches is
usually about 1 GiB higher (it varied from 1.9 to 3.9 GiB between runs at b512); with huge
pages glibc runs about as fast at glibc's memory
(cat-mel_2bar_small b512 on a 2-core AMD EPYC, `bench/step_blocks.py`: 1,118 and 1,066 ms
per step, against 1,314 and 1,374 without them and 1,094 and 1,130 on TCMalloc; peak RSS in
`bench/step_throughput.py` 1,931-1,951 MiB, against 1,868-3,031 on TCMalloc). Small models
gain nothing from it and were sometimes slower (the demo's, fastest blocks: 42 and 43 ms per
step on TCMalloc against 54 and 43).

So `mvae train` picks by its config's step (`default_for`): glibc with huge pages where the
step's largest arrays reach `SYSTEM_FROM_BYTES` (cat-mel_2bar_small at its batch of 512, 128
MiB; on a 2-core Xeon, 2026-12-03: 314-370 examples/s at 1,652-1,694 MiB over four runs,
against 243-379 at 1,673-2,448 on TCMalloc), TCMalloc below it (at batch 64, 16 MiB: 294-295
against 231-239 examples/s). `MVAE_MALLOC=tcmalloc` or `=system` decides instead; everything
else (bench/ scripts, sampling, the demo) runs on TCMalloc unless told.
"""

from __future__ import annotations

import os
import sys

CANDIDATES = ("/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
              "/usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4",
              "/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4",
              "/usr/lib/libtcmalloc_minimal.so.4")
ENV = "MVAE_MALLOC"
HUGE_PAGES = "glibc.malloc.hugetlb=1"
# a training step's largest arrays from which `mvae train` runs on glibc with huge pages: between
# the measured 16 MiB (TCMalloc faster) and 128 MiB (glibc as fast, 0.7x the memory)
SYSTEM_FROM_BYTES = 64 << 20


def step_array_bytes(cfg, processes: int = 1) -> int:
  """About the largest float32 arrays of a training step of `cfg` on one process: one layer's
  gates over the whole window, batch x window steps x 4 x the widest LSTM (JAX-free, so the
  CLI can ask before it re-executes)."""
  from mvae_jax.music import converters  # noqa: PLC0415 (no JAX)
  steps = converters.get_converter(cfg.data.converter).window_steps
  width = max([*cfg.model.enc_rnn_size, *cfg.model.dec_rnn_size])
  return cfg.train.batch_size // max(processes, 1) * steps * 4 * width * 4


def huge_pages_available() -> bool:
  """Whether glibc can ask for transparent huge pages here: glibc 2.35+ (the `hugetlb`
  tunable) and the kernel's THP mode not `never`. Without them glibc page-faults every large
  temporary in 4 KiB pages, the slowest of the three (1,314-1,374 ms per cat-mel_2bar_small
  b512 step on the AMD EPYC against 1,066-1,130 for the others)."""
  version = (os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr") else "") or ""
  try:
    major, minor = (int(x) for x in version.split()[1].split(".")[:2])
  except (IndexError, ValueError):  # not glibc (musl, macOS)
    return False
  try:
    with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
      thp = f.read()
  except OSError:
    return False
  return (major, minor) >= (2, 35) and "[never]" not in thp


def default_for(step_bytes: int) -> str:
  """"system" (glibc with huge pages) for a step whose arrays reach SYSTEM_FROM_BYTES where
  huge pages are available, else "tcmalloc"."""
  big = step_bytes >= SYSTEM_FROM_BYTES
  return "system" if big and huge_pages_available() else "tcmalloc"


def check_setting(environ=os.environ) -> str | None:
  """One line naming a MVAE_MALLOC value that means nothing, and the ones that do; None if
  it is unset or valid."""
  value = environ.get(ENV)
  if value is None or value in ("system", "tcmalloc"):
    return None
  return (f"MVAE_MALLOC={value!r}: use MVAE_MALLOC=tcmalloc or MVAE_MALLOC=system, or unset it "
          "(mvae train then picks by its step)")


def library() -> str | None:
  """The first TCMalloc found on this machine, or None."""
  return next((p for p in CANDIDATES if os.path.exists(p)), None)


def active(environ=os.environ) -> bool:
  """Whether TCMalloc is preloaded in `environ` (this process's environment by default)."""
  return "tcmalloc" in environ.get("LD_PRELOAD", "")


def reexec_with_tcmalloc(args: list[str], default: str | None = None) -> None:
  """Replaces this process by `python args...` (the CLI passes `-m mvae_jax ...`, a bench
  script its own path and arguments) in `reexec_env`'s environment: TCMalloc preloaded, or with
  `MVAE_MALLOC=system` (or `default` "system" where MVAE_MALLOC is unset) glibc with huge
  pages. Returns without doing anything where the environment is already so (or nothing
  applies: no TCMalloc), where JAX is already imported, and off Linux."""
  env = reexec_env(os.environ, default)
  if env is None or "jax" in sys.modules or sys.platform != "linux":
    return
  sys.stdout.flush()
  sys.stderr.flush()
  os.execve(sys.executable, [sys.executable, *args], env)


def reexec_env(environ, default: str | None = None) -> dict | None:
  """The environment to re-execute in, or None where `environ` already is it. `default`:
  "system" or "tcmalloc" where environ has no MVAE_MALLOC (None: TCMalloc), set in the new
  environment's MVAE_MALLOC."""
  if ENV not in environ and default is not None:
    return reexec_env(dict(environ, **{ENV: default}))  # the new environment carries ENV
  if environ.get(ENV) == "system":
    tunables = environ.get("GLIBC_TUNABLES", "")
    env = dict(environ)
    if "LD_PRELOAD" in environ:
      env["LD_PRELOAD"] = ":".join(p for p in environ["LD_PRELOAD"].split(":")
                                   if p and "tcmalloc" not in p)
    if "glibc.malloc.hugetlb" not in tunables:
      env["GLIBC_TUNABLES"] = ":".join(filter(None, [tunables, HUGE_PAGES]))
    return None if env == dict(environ) else env
  lib = library()
  if active(environ) or lib is None:
    return None
  return dict(environ, LD_PRELOAD=":".join(filter(None, [lib, environ.get("LD_PRELOAD")])))


def describe() -> str:
  if active():
    return "tcmalloc"
  settings = [t for t in os.environ.get("GLIBC_TUNABLES", "").split(":")
              if t.startswith("glibc.malloc.hugetlb=")]
  huge = bool(settings) and settings[-1] == HUGE_PAGES  # the last setting wins
  return "system malloc, huge pages" if huge else "system malloc"
