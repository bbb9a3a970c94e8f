"""The LSTM scan's recurrent matmul alone, float32 against bfloat16 weights (float32 accumulation),
then the step's gate math alone (`--gates`).

  python bench/recurrent_matmul.py [--batch 16] [--units 2048] [--steps 64] [--gates]

A scan of `steps` steps of h `[B, H]` times W_hᵀ (`[4H, H]`, contracted over its last axis as
`mvae_jax/nn/lstm.py` does), best of 3. At small B the matmul reads all of W_h for a few rows of
h, so its speed is the memory's: the figure to watch is the rate at which W_h is streamed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from mvae_jax import allocator  # no JAX import

if __name__ == "__main__":  # on TCMalloc, as the other bench/ scripts (before JAX is imported)
  allocator.reexec_with_tcmalloc([os.path.abspath(__file__), *sys.argv[1:]])

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402


def bench(dtype, b: int, h: int, steps: int) -> None:
  n = 4 * h
  w = jnp.ones((n, h), dtype)
  h0 = jnp.ones((b, h), jnp.float32)

  def run(h0, w):
    def step(hs, _):
      g = jax.lax.dot_general(hs.astype(dtype), w, (((1,), (1,)), ((), ())),
                              preferred_element_type=jnp.float32)
      return jnp.tanh(g[:, :h]), None
    return jax.lax.scan(step, h0, None, length=steps)[0]

  run = jax.jit(run)
  run(h0, w).block_until_ready()
  best = float("inf")
  for _ in range(3):
    t = time.perf_counter()
    run(h0, w).block_until_ready()
    best = min(best, time.perf_counter() - t)
  gbytes = steps * n * h * jnp.dtype(dtype).itemsize / 1e9
  print(f"{jnp.dtype(dtype).name:>8} B={b} H={h}: {best * 1e3 / steps:6.2f} ms/step, "
        f"{2 * b * h * n * steps / best / 1e9:6.1f} GFLOP/s, "
        f"W_h streamed at {gbytes / best:5.1f} GB/s")


def bench_gates(b: int, h: int, steps: int) -> None:
  """The forward gate math of `mvae_jax.nn.lstm` (sigmoids, tanh, state update) over
  `[B, 4H]` pre-activations in a scan, without any matmul; best of 10."""
  from mvae_jax.nn import lstm  # noqa: PLC0415

  g = jax.random.normal(jax.random.key(0), (steps, b, 4 * h))

  def run(g):
    def step(c, x):
      a = lstm._activations(x)  # noqa: SLF001
      s = lstm._update(a, c)  # noqa: SLF001
      return s.c, (s.h, a)
    return jax.lax.scan(step, jnp.zeros((b, h)), g)

  run = jax.jit(run)
  jax.block_until_ready(run(g))
  best = float("inf")
  for _ in range(10):
    t = time.perf_counter()
    jax.block_until_ready(run(g))
    best = min(best, time.perf_counter() - t)
  print(f"   gates B={b} H={h}: {best * 1e3 / steps:6.2f} ms/step ({allocator.describe()})")


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--batch", type=int, default=16)
  ap.add_argument("--units", type=int, default=2048)
  ap.add_argument("--steps", type=int, default=64)
  ap.add_argument("--gates", action="store_true", help="also time the gate math alone")
  args = ap.parse_args()
  for dtype in (jnp.float32, jnp.bfloat16, jnp.float32, jnp.bfloat16):
    bench(dtype, args.batch, args.units, args.steps)
  if args.gates:
    for _ in range(3):
      bench_gates(args.batch, args.units, args.steps)


if __name__ == "__main__":
  main()
