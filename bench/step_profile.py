"""Where a training step's time goes: profiles a few steps and sums each XLA op's time by the
part of the model it belongs to (encoder, decoder, other; forward or backward; matmuls or the
rest), from the compiled HLO's op metadata and a JAX profiler trace.

  python bench/step_profile.py CONFIG [BATCH] [--top 20] [--set KEY=VALUE ...]

Sums are of op time on all threads (two ops running at once both count), so they can exceed
the wall time per step; compare categories and runs, not the total with the wall clock.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import re
import sys
import tempfile
import time

from mvae_jax import allocator  # no JAX import: the script re-executes itself on TCMalloc first


def category(op_name: str) -> str:
  """'fwd encoder', 'bwd decoder', ... from an op's metadata name."""
  part = ("encoder" if "encode" in op_name else
          "decoder" if any(k in op_name for k in ("decode", "logits", "scheduled", "conduct"))
          else "other")
  return ("bwd " if "transpose(" in op_name else "fwd ") + part


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("config")
  ap.add_argument("batch", type=int, nargs="?", default=0)
  ap.add_argument("--steps", type=int, default=3)
  ap.add_argument("--top", type=int, default=20)
  ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                  help="a config override, e.g. train.compute_dtype=bfloat16 (repeatable)")
  args = ap.parse_args()

  import jax  # noqa: PLC0415
  from mvae_jax import config  # noqa: PLC0415
  from mvae_jax.bench import throughput  # noqa: PLC0415

  cfg = config.load(args.config, ([f"--config.train.batch_size={args.batch}"] if args.batch else [])
                    + [f"--config.{s}" for s in args.set])
  # the training loop's own step, as bench/step_throughput.py times it
  compiled, state, batch, rng, _ = throughput.compiled_step(cfg)
  meta = {}
  for line in compiled.as_text().splitlines():
    m = re.match(r'\s*(?:ROOT )?%?([\w.\-]+) = .*?op_name="([^"]*)"', line)
    if m:
      meta[m.group(1)] = m.group(2)
  state, m = compiled(state, batch, rng)
  jax.block_until_ready(m)
  t = time.perf_counter()
  for _ in range(args.steps):
    state, m = compiled(state, batch, rng)
  jax.block_until_ready(m)
  wall = (time.perf_counter() - t) / args.steps
  with tempfile.TemporaryDirectory() as d:
    with jax.profiler.trace(d, create_perfetto_trace=True):
      for _ in range(args.steps):
        state, m = compiled(state, batch, rng)
      jax.block_until_ready(m)
    with gzip.open(glob.glob(os.path.join(d, "**", "*.trace.json.gz"), recursive=True)[0]) as f:
      trace = json.load(f)
  events = trace["traceEvents"] if isinstance(trace, dict) else trace
  by_cat, by_op = collections.Counter(), collections.Counter()
  for e in events:
    name = e.get("name", "")
    if e.get("ph") != "X" or name.startswith(("ThunkExecutor", "$", "SlinkyThreadPool")):
      continue
    op = meta.get(name, "?")
    kind = "matmul" if ("dot" in name or "ynn" in name or "gemm" in name) else "other ops"
    by_cat[f"{category(op)}, {kind}"] += e["dur"] / 1e3 / args.steps
    by_op[f"{name} ({op.split('/')[-1]}, {category(op)})"] += e["dur"] / 1e3 / args.steps
  total = sum(by_cat.values())
  print(f"{cfg.name}, batch {cfg.train.batch_size}, {allocator.describe()}: "
        f"{wall * 1e3:.0f} ms/step wall; op time summed over threads {total:.0f} ms/step")
  print("| part | ms/step | share |\n|---|---|---|")
  for k, v in by_cat.most_common():
    print(f"| {k} | {v:.0f} | {100 * v / total:.0f}% |")
  print(f"\ntop {args.top} ops:")
  for k, v in by_op.most_common(args.top):
    print(f"  {v:8.1f} ms  {k}")


if __name__ == "__main__":
  allocator.reexec_with_tcmalloc([os.path.abspath(__file__), *sys.argv[1:]])
  main()
