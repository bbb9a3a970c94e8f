"""Fastest and median wall time per training step over blocks of steps: the A/B figure on a
noisy machine (run the two versions interleaved, each in a fresh process, and compare the
fastest blocks; one slow neighbour spoils a mean, not a minimum).

  python bench/step_blocks.py CONFIG BATCH [--blocks 6] [--steps 2] [--set KEY=VALUE ...]
  PYTHONPATH=/path/to/other/checkout python bench/step_blocks.py ...   # the other version

The step is the training loop's own (`loop.Run`, as bench/step_throughput.py times it), on a
random batch, after one compiling step; runs on TCMalloc when the machine has it
(`MVAE_MALLOC=system` for glibc).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from mvae_jax import allocator  # no JAX import: the script re-executes itself on TCMalloc first


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("config")
  ap.add_argument("batch", type=int)
  ap.add_argument("--blocks", type=int, default=6)
  ap.add_argument("--steps", type=int, default=2, help="steps per block")
  ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
  args = ap.parse_args()

  import jax  # noqa: PLC0415
  from mvae_jax import config  # noqa: PLC0415
  from mvae_jax.bench import throughput  # noqa: PLC0415

  cfg = config.load(args.config, [f"--config.train.batch_size={args.batch}"]
                    + [f"--config.{s}" for s in args.set])
  step, state, batch, rng, _ = throughput.compiled_step(cfg)
  state, m = step(state, batch, rng)
  jax.block_until_ready(m)
  times = []
  for _ in range(args.blocks):
    t0 = time.perf_counter()
    for _ in range(args.steps):
      state, m = step(state, batch, rng)
    jax.block_until_ready(m)
    times.append((time.perf_counter() - t0) / args.steps * 1000)
  print(f"{args.config} b{args.batch}: fastest {min(times):.0f} ms/step, median "
        f"{statistics.median(times):.0f} ms/step over {args.blocks} blocks of {args.steps} "
        f"({allocator.describe()})")


if __name__ == "__main__":
  allocator.reexec_with_tcmalloc([__file__, *sys.argv[1:]])
  main()
