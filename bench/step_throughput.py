"""Training throughput per configuration: steps/s, examples/s, and achieved FLOP/s beside the
machine's matmul rate in the compute dtype (`train.compute_dtype`) measured in the same process,
compile time and peak RSS (each config in a fresh process, on TCMalloc when the machine has it).

  python bench/step_throughput.py [--configs cat-mel_2bar_small_tiny,...] [--batch_size 64]
                                  [--steps 20]
  python bench/step_throughput.py --analytic --configs flat-mel_16bar,...   # FLOPs only, no run
  python bench/step_throughput.py --configs hierdec-mel_16bar --batch_size 16 \
      --set train.recurrent_dtype=bfloat16                                    # with overrides

The measurement is `mvae_jax.bench.throughput.measure` (what `mvae bench` reports): the training
loop's own jitted step, timed after compiling, on random labels of the right shape (throughput
does not depend on the data). FLOPs per step are the matmul FLOPs of forward + backward
(`mvae_jax.train.flops`: counted from the config, equal to the traced step's count with scan
bodies x trip count). XLA's own cost analysis counts each scan body once; its figure is printed
beside for comparison.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys

from mvae_jax import allocator  # no JAX import: the script re-executes itself on TCMalloc first

DEFAULT = ("cat-mel_2bar_small_tiny,cat-drums_2bar_small_tiny,flat-mel_16bar_tiny,"
           "hierdec-mel_16bar_tiny,hier-mel_16bar_tiny,flat-trio_16bar_tiny,"
           "hierdec-trio_16bar_tiny,flat-drums_16bar_tiny,hierdec-drums_16bar_tiny")


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--configs", default=DEFAULT)
  ap.add_argument("--batch_size", type=int, default=0, help="0: each config's own")
  ap.add_argument("--steps", type=int, default=20)
  ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                  help="a config override, e.g. train.recurrent_dtype=bfloat16 (repeatable)")
  ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  ap.add_argument("--analytic", action="store_true",
                  help="print each config's FLOPs per step (forward parts, train step) only")
  args = ap.parse_args()

  from mvae_jax import config
  from mvae_jax import model as model_lib
  from mvae_jax.bench import throughput
  from mvae_jax.train import flops as flops_lib

  if args.analytic:
    print("| config | batch | TFLOP/train step | forward: encoder | forward: decoder |")
    print("|---|---|---|---|---|")
    for name in args.configs.split(","):
      overrides = [f"--config.train.batch_size={args.batch_size}"] if args.batch_size else []
      cfg = config.load(name, overrides)
      f = flops_lib.forward_flops(cfg, cfg.train.batch_size)
      print(f"| {name} | {cfg.train.batch_size} | {flops_lib.train_step_flops(cfg) / 1e12:.2f} | "
            f"{f['encoder'] / 1e12:.2f} | {f['decoder'] / 1e12:.2f} |")
    return
  names = args.configs.split(",")
  if not args.child:  # header once; each config in a fresh process, so peak RSS is its own
    print(f"device: {flops_lib.device_name()}, {os.cpu_count()} host cores, {platform.machine()}; "
          f"{allocator.describe()}\n")
    print("| config | batch | params | steps/s | examples/s | GFLOP/step | achieved GFLOP/s | "
          "matmul GFLOP/s (same process, compute dtype) | % of matmul rate | compile (s) | "
          "peak RSS (MiB) | XLA cost analysis GFLOP/step (scan bodies once) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in names:
      cmd = [sys.executable, os.path.abspath(__file__), "--configs", name, "--child",
             "--steps", str(args.steps), "--batch_size", str(args.batch_size),
             *[f"--set={kv}" for kv in args.set]]
      r = subprocess.run(cmd, capture_output=True, text=True)
      rows = [l for l in r.stdout.splitlines() if l.startswith("| ")]
      print(rows[0] if rows and r.returncode == 0 else
            f"| {name} | failed: {(r.stderr.strip().splitlines() or ['?'])[-1][:200]} |", flush=True)
    return
  name = names[0]
  overrides = [f"--config.train.batch_size={args.batch_size}"] if args.batch_size else []
  cfg = config.load(name, overrides + [f"--config.{kv}" for kv in args.set])
  if args.set:
    name = f"{name} ({', '.join(args.set)})"
  conv = model_lib.converter_of(cfg)
  n = model_lib.count_params(model_lib.abstract_params(model_lib.model_of(cfg, conv), conv))
  t = throughput.measure(cfg, args.steps)  # measures the matmul rate right after the steps
  print(f"| {name} | {t['batch_size']} | {n / 1e6:.2f}M | {t['steps_per_sec']:.3f} | "
        f"{t['examples_per_sec']:.1f} | {t['flops_per_step'] / 1e9:.2f} | "
        f"{t['achieved_flops_per_sec'] / 1e9:.1f} | {t['matmul_rate_flops_per_sec'] / 1e9:.1f} | "
        f"{100 * t['fraction_of_matmul_rate']:.0f}% | {t['compile_s']:.1f} | "
        f"{t['peak_memory_bytes'] / 2**20:.0f} | {t['xla_cost_analysis_flops'] / 1e9:.2f} |",
        flush=True)


if __name__ == "__main__":
  allocator.reexec_with_tcmalloc([os.path.abspath(__file__), *sys.argv[1:]])
  main()
