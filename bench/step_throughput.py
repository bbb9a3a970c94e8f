"""Training throughput per configuration: steps/s, examples/s, and achieved FLOP/s beside the
machine's float32 matmul rate measured in the same run.

  python bench/step_throughput.py [--configs cat-mel_2bar_small_tiny,...] [--batch_size 64]
                                  [--steps 20]

FLOPs per step come from XLA's cost analysis of the compiled step (forward + backward + update).
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


def matmul_rate(n: int = 2048, reps: int = 10) -> float:
  """float32 FLOP/s of an n x n matmul on the default device."""
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()
  t = time.perf_counter()
  for _ in range(reps):
    out = f(a)
  out.block_until_ready()
  return 2 * n**3 * reps / (time.perf_counter() - t)


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--configs", default=DEFAULT)
  ap.add_argument("--batch_size", type=int, default=0, help="0: each config's own")
  ap.add_argument("--steps", type=int, default=20)
  args = ap.parse_args()

  from mvae_jax import config
  from mvae_jax import model as model_lib
  from mvae_jax.train import steps

  dev = jax.devices()[0]
  peak = matmul_rate()
  print(f"device: {dev.device_kind} ({dev.platform}), {os.cpu_count()} host cores, "
        f"{platform.machine()}; float32 matmul 2048^3: {peak / 1e9:.1f} GFLOP/s\n")
  print("| config | batch | params | steps/s | examples/s | GFLOP/step | achieved GFLOP/s | "
        "% of matmul rate |")
  print("|---|---|---|---|---|---|---|---|")
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
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    flops = float(cost.get("flops", 0.0)) if cost else 0.0
    state, m = fn(state, batch, jax.random.key(1))
    jax.block_until_ready(m)
    t = time.perf_counter()
    for _ in range(args.steps):
      state, m = fn(state, batch, jax.random.key(1))
    jax.block_until_ready(m)
    sps = args.steps / (time.perf_counter() - t)
    print(f"| {name} | {b} | {model_lib.count_params(params) / 1e6:.2f}M | {sps:.2f} | {sps * b:.0f} | "
          f"{flops / 1e9:.2f} | {flops * sps / 1e9:.1f} | {100 * flops * sps / peak:.0f}% |",
          flush=True)


if __name__ == "__main__":
  main()
