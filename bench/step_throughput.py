"""Training throughput per configuration: steps/s, examples/s, and achieved FLOP/s beside the
machine's float32 matmul rate measured in the same run.

  python bench/step_throughput.py [--configs cat-mel_2bar_small_tiny,...] [--batch_size 64]
                                  [--steps 20]

FLOPs per step are the matmul FLOPs of forward + backward (`mvae_jax.train.flops`: counted from
the config, equal to the traced step's count with scan bodies x trip count). XLA's own cost
analysis counts each scan body once; its figure is printed beside for comparison.
Batches are random labels of the right shape (throughput does not depend on the data).
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

DEFAULT = ("cat-mel_2bar_small_tiny,cat-drums_2bar_small_tiny,flat-mel_16bar_tiny,"
           "hierdec-mel_16bar_tiny,hier-mel_16bar_tiny,flat-trio_16bar_tiny,"
           "hierdec-trio_16bar_tiny,flat-drums_16bar_tiny,hierdec-drums_16bar_tiny")


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--configs", default=DEFAULT)
  ap.add_argument("--batch_size", type=int, default=0, help="0: each config's own")
  ap.add_argument("--steps", type=int, default=20)
  args = ap.parse_args()

  from mvae_jax import config
  from mvae_jax import model as model_lib
  from mvae_jax.train import flops as flops_lib
  from mvae_jax.train import steps

  peak = flops_lib.matmul_rate()
  print(f"device: {flops_lib.device_name()}, {os.cpu_count()} host cores, {platform.machine()}; "
        f"float32 matmul 2048^3: {peak / 1e9:.1f} GFLOP/s\n")
  print("| config | batch | params | steps/s | examples/s | GFLOP/step | achieved GFLOP/s | "
        "% of matmul rate | XLA cost analysis GFLOP/step (scan bodies once) |")
  print("|---|---|---|---|---|---|---|---|---|")
  for name in args.configs.split(","):
    cfg = config.load(name)
    conv = model_lib.converter_of(cfg)
    model = model_lib.model_of(cfg, conv)
    sc = steps.step_config_of(cfg, conv)
    tx = steps.make_optimizer(sc)
    b = args.batch_size or cfg.train.batch_size
    params = model_lib.init_params(model, conv, jax.random.key(0))
    state = steps.TrainState.create(params, tx)
    rng = np.random.default_rng(0)
    labels = np.stack([rng.integers(0, d, (b, conv.window_steps)) for d in conv.output_depths],
                      -1).astype(np.int32)
    batch = {"labels": jnp.asarray(labels), "lengths": jnp.full((b,), conv.window_steps),
             "mask": jnp.ones((b,))}
    fn = jax.jit(functools.partial(steps.train_step, model=model, sc=sc,
                                   inputs_fn=model_lib.inputs_fn_of(conv), tx=tx), donate_argnums=0)
    compiled = fn.lower(state, batch, jax.random.key(1)).compile()
    xla = flops_lib.xla_flops(compiled)
    flops = flops_lib.train_step_flops(cfg, b)
    state, m = fn(state, batch, jax.random.key(1))
    jax.block_until_ready(m)
    t = time.perf_counter()
    for _ in range(args.steps):
      state, m = fn(state, batch, jax.random.key(1))
    jax.block_until_ready(m)
    sps = args.steps / (time.perf_counter() - t)
    print(f"| {name} | {b} | {model_lib.count_params(params) / 1e6:.2f}M | {sps:.2f} | {sps * b:.0f} | "
          f"{flops / 1e9:.2f} | {flops * sps / 1e9:.1f} | {100 * flops * sps / peak:.0f}% | "
          f"{xla / 1e9:.2f} |",
          flush=True)


if __name__ == "__main__":
  main()
