"""Peak memory (RSS) of loading a trained model for sampling, and of drawing one sample.

  python bench/inference_memory.py [--config hierdec-mel_16bar] [--workdir DIR] [--sample]

Writes a workdir holding the config and one checkpoint of the *training* state (parameters and
Adam's two moments, as `mvae train` saves it) unless DIR already has one, then, in a fresh
process, loads it with `generate.TrainedModel.load` and prints the peak resident set size after
the imports and after loading (and after one sample with --sample), and the current one.
A figure to read, not a test.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

MAKE = """
import sys
import jax, orbax.checkpoint as ocp
from mvae_jax import config as config_lib
from mvae_jax import checkpoints
from mvae_jax.train import loop
cfg = config_lib.load(sys.argv[1])
run = loop.Run(cfg)
checkpoints.write_config(cfg, sys.argv[2])
mngr = checkpoints.training_manager(sys.argv[2], cfg)
mngr.save(1, args=ocp.args.Composite(state=ocp.args.StandardSave(run.init_state())), force=True)
mngr.wait_until_finished()
mngr.close()
"""

LOAD = """
import resource, sys
def peak():  # peak and current resident set size, MiB (Linux)
  now = int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1]) / 1024
  return f"peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB, now {now:.0f}"
import jax, jax.numpy as jnp
jax.block_until_ready(jnp.zeros(1) + 1)  # the runtime up
from mvae_jax import generate
print(f"after imports: {peak()}", flush=True)
model = generate.TrainedModel.load(sys.argv[1], batch_size=1)
n = sum(x.size for x in jax.tree.leaves(model.params))
print(f"after loading ({n / 1e6:.1f}M parameters, {4 * n / 2**20:.0f} MiB float32): "
      f"{peak()}", flush=True)
if sys.argv[2] == "1":
  model.sample(1, 0.5, seed=0)
  print(f"after one sample: {peak()}", flush=True)
"""


def main():
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--config", default="hierdec-mel_16bar")
  ap.add_argument("--workdir", default="", help="reuse (or create) this workdir")
  ap.add_argument("--sample", action="store_true", help="also draw one sample")
  args = ap.parse_args()
  env = dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
  with tempfile.TemporaryDirectory() as tmp:
    workdir = args.workdir or os.path.join(tmp, "run")
    if not os.path.isdir(os.path.join(workdir, "checkpoints")):
      subprocess.run([sys.executable, "-c", MAKE, args.config, workdir], check=True, env=env)
    print(f"{args.config}: peak RSS of loading for sampling ({workdir})")
    subprocess.run([sys.executable, "-c", LOAD, workdir, "1" if args.sample else "0"],
                   check=True, env=env)


if __name__ == "__main__":
  main()
