"""CPU time per training step of the demo's model family, by batch and width (for tuning).

  python bench/demo_step_cost.py BATCH,WIDTH,Z [...]     e.g. 64,128,32 128,128,32 64,256,64
  TF=1 python bench/demo_step_cost.py ...                 teacher forcing only (no scheduled sampling)

Process CPU time per step (all threads) and wall time per step, over 20 steps after compilation,
on a random batch of `cat-mel_2bar_small_tiny` shapes without transposition. CPU time is the
figure to compare when the machine is shared: wall time then depends on the neighbours.
"""

from __future__ import annotations

import functools
import os
import sys
import time

import jax
import numpy as np


def main(specs: list[str]) -> None:
  from mvae_jax import config, model as model_lib  # noqa: PLC0415
  from mvae_jax.train import steps  # noqa: PLC0415

  sampling = (["--config.sampling.schedule=constant", "--config.sampling.rate=0.0"]
              if os.environ.get("TF") else
              ["--config.sampling.schedule=exponential", "--config.sampling.rate=0.9997"])
  for spec in specs:
    b, h, z = map(int, spec.split(","))
    cfg = config.load("cat-mel_2bar_small_tiny", [
        "--config.data.transpose_range=[0,0]", *sampling, f"--config.train.batch_size={b}",
        f"--config.model.enc_rnn_size=[{h}]", f"--config.model.dec_rnn_size=[{h},{h}]",
        f"--config.model.z_size={z}"])
    conv = model_lib.converter_of(cfg)
    model = model_lib.model_of(cfg, conv)
    sc = steps.step_config_of(cfg, conv)
    tx = steps.make_optimizer(sc)
    state = steps.TrainState.create(model_lib.init_params(model, conv, jax.random.key(0)), tx)
    fn = jax.jit(functools.partial(steps.train_step, model=model, sc=sc,
                                   inputs_fn=model_lib.inputs_fn_of(conv), tx=tx),
                 donate_argnums=0)
    rng = np.random.default_rng(0)
    batch = {"labels": rng.integers(0, 90, (b, 32, 1)).astype(np.int32),
             "lengths": np.full((b,), 32, np.int32), "mask": np.ones((b,), np.float32)}
    state, m = fn(state, batch, jax.random.key(1))
    jax.block_until_ready(m)
    c0, w0 = time.process_time(), time.time()
    for _ in range(20):
      state, m = fn(state, batch, jax.random.key(1))
    jax.block_until_ready(m)
    cpu, wall = (time.process_time() - c0) / 20, (time.time() - w0) / 20
    print(f"batch {b} width {h} z {z} ({'teacher forcing' if os.environ.get('TF') else 'scheduled sampling'}): "
          f"CPU {cpu * 1000:.0f} ms/step, wall {wall * 1000:.0f} ms/step", flush=True)


if __name__ == "__main__":
  main(sys.argv[1:])
