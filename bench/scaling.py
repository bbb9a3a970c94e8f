"""Data-parallel scaling and checkpoint cost.

  python bench/scaling.py [--config cat-mel_2bar_small_tiny] [--per_device_batch 16] [--steps 10]

Runs the sharded train step on meshes of 1, 2, 4 and 8 devices (on a CPU-only machine these are
simulated with --xla_force_host_platform_device_count=8, so they share the host's cores: the
figures show the sharding overhead, not a speed-up), then times an Orbax save of the train state.
With --two_processes it also launches 2 local processes (jax.distributed, CPU collectives) that
train one model together and prints their examples/s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--config", default="cat-mel_2bar_small_tiny")
  ap.add_argument("--per_device_batch", type=int, default=16)
  ap.add_argument("--steps", type=int, default=10)
  ap.add_argument("--two_processes", action="store_true")
  args = ap.parse_args()

  import jax
  import numpy as np
  import orbax.checkpoint as ocp

  from mvae_jax import config
  from mvae_jax.train import loop, sharding

  print(f"devices: {len(jax.devices())} x {jax.devices()[0].device_kind}, "
        f"{os.cpu_count()} host cores\n")
  print("| devices | global batch | steps/s | examples/s |")
  print("|---|---|---|---|")
  state = None
  for n in (1, 2, 4, 8):
    if n > len(jax.devices()):
      break
    cfg = config.load(args.config)
    cfg.unlock()
    cfg.train.batch_size = args.per_device_batch * n
    run = loop.Run(cfg, sharding.make_mesh(1, jax.devices()[:n]))
    conv = run.conv
    rng = np.random.default_rng(0)
    b = cfg.train.batch_size
    local = {"labels": np.stack([rng.integers(0, d, (b, conv.window_steps))
                                 for d in conv.output_depths], -1).astype(np.int32),
             "lengths": np.full((b,), conv.window_steps, np.int32),
             "mask": np.ones((b,), np.float32)}
    batch = sharding.global_batch(local, run.mesh)
    state = run.init_state()
    state, m = run.train_step(state, batch, run.rng)
    jax.block_until_ready(m)
    t = time.perf_counter()
    for _ in range(args.steps):
      state, m = run.train_step(state, batch, run.rng)
    jax.block_until_ready(m)
    sps = args.steps / (time.perf_counter() - t)
    print(f"| {n} | {b} | {sps:.2f} | {sps * b:.0f} |", flush=True)

  with tempfile.TemporaryDirectory() as tmp:
    mngr = ocp.CheckpointManager(tmp, item_handlers={"state": ocp.StandardCheckpointHandler()})
    size = sum(x.nbytes for x in jax.tree.leaves(state))
    times = []
    for step in (1, 2):  # the first save also sets Orbax up; the second is the steady cost
      t = time.perf_counter()
      mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state)))
      t_block = time.perf_counter() - t
      mngr.wait_until_finished()
      times.append((t_block, time.perf_counter() - t))
    mngr.close()
  print()
  for label, (t_block, t_total) in zip(("first", "next"), times):
    print(f"checkpoint of {size / 1e6:.1f} MB, {label} save: "
          f"save() returns after {t_block * 1e3:.0f} ms (async), written in "
          f"{t_total * 1e3:.0f} ms")

  if args.two_processes:
    code = (
        "import sys, time, jax, numpy as np\n"
        "jax.distributed.initialize('localhost:12357', 2, int(sys.argv[1]))\n"
        "from mvae_jax import config\n"
        "from mvae_jax.train import loop, sharding\n"
        f"cfg = config.load({args.config!r}); cfg.unlock(); cfg.train.batch_size = "
        f"{args.per_device_batch * 2}\n"
        "run = loop.Run(cfg); c = run.conv; b = run.local_batch\n"
        "rng = np.random.default_rng(int(sys.argv[1]))\n"
        "local = {'labels': np.stack([rng.integers(0, d, (b, c.window_steps)) for d in "
        "c.output_depths], -1).astype(np.int32), 'lengths': np.full((b,), c.window_steps, "
        "np.int32), 'mask': np.ones((b,), np.float32)}\n"
        "batch = sharding.global_batch(local, run.mesh); s = run.init_state()\n"
        "s, m = run.train_step(s, batch, run.rng); jax.block_until_ready(m); t = time.perf_counter()\n"
        f"for _ in range({args.steps}): s, m = run.train_step(s, batch, run.rng)\n"
        "jax.block_until_ready(m); dt = time.perf_counter() - t\n"
        f"print(f'process {{sys.argv[1]}}: {{{args.steps} / dt:.2f}} steps/s, "
        f"{{{args.steps} * cfg.train.batch_size / dt:.0f}} examples/s, loss {{float(m[\"loss\"]):.3f}}')\n")
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(i)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    for p in procs:
      out, err = p.communicate(timeout=600)
      print(out.strip() or err[-1500:])


if __name__ == "__main__":
  main()
