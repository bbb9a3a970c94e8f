"""Two processes on localhost (jax.distributed, CPU collectives) train one model together."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import jax
import numpy as np

from conftest import FIXTURE_MIDI

CODE = """
import json, sys
import jax
jax.distributed.initialize(sys.argv[1], 2, int(sys.argv[2]))
from mvae_jax import config
from mvae_jax.train import loop
cfg = config.load("cat-mel_2bar_small_tiny", sys.argv[4:])
last = loop.train(cfg, sys.argv[3], progress=False)
params, step = loop.restore_params(cfg, sys.argv[3])
leaves = jax.tree.leaves(jax.device_get(params))
print(json.dumps({"process": jax.process_index(), "count": jax.process_count(),
                  "devices": len(jax.devices()), "step": step, "loss": last["train/loss"],
                  "checksum": float(sum(float(abs(x).sum()) for x in leaves))}))
"""


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def test_two_processes_train_one_model(fixture_dataset, data_dir, tmp_path):
  overrides = [f"--config.data.dataset=midi_dir", f"--config.data.midi_dir={FIXTURE_MIDI}",
               f"--config.data.data_dir={data_dir}", "--config.data.eval_split=train",
               "--config.train.batch_size=16", "--config.train.num_steps=6",
               "--config.train.checkpoint_every_steps=3", "--config.train.eval_every_steps=1000",
               "--config.train.log_every_steps=3", "--config.train.eval_batches=1"]
  addr = f"localhost:{_free_port()}"
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")
  procs = [subprocess.Popen([sys.executable, "-c", CODE, addr, str(i), str(tmp_path / "run"),
                             *overrides], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env) for i in range(2)]
  outs = []
  for p in procs:
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-3000:]
    outs.append(__import__("json").loads(out.strip().splitlines()[-1]))
  assert [o["process"] for o in outs] == [0, 1]
  assert all(o["count"] == 2 and o["devices"] == 2 and o["step"] == 6 for o in outs)
  # one model: both processes hold the same parameters and saw the same global loss
  assert outs[0]["checksum"] == outs[1]["checksum"]
  assert outs[0]["loss"] == outs[1]["loss"] and np.isfinite(outs[0]["loss"])
