"""Shared by tests/interop: the 5 fixture models as configs, checkpoints and reference arrays."""

from __future__ import annotations

import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(os.path.dirname(HERE), "fixtures", "magenta")
CHECKPOINTS = os.path.join(FIXTURES, "checkpoints")
MODELS = os.path.join(FIXTURES, "models")
with open(os.path.join(MODELS, "models_index.json")) as f:
  INDEX = {m["name"]: m for m in json.load(f)}
NAMES = sorted(INDEX)


def overrides(name: str) -> list[str]:
  """`--config.*` flags that turn the fixture's base experiment into the fixture model."""
  hp = INDEX[name]["hparams"]
  return [f"--config.model.z_size={hp['z_size']}",
          f"--config.model.enc_rnn_size={json.dumps(hp['enc_rnn_size']).replace(' ', '')}",
          f"--config.model.dec_rnn_size={json.dumps(hp['dec_rnn_size']).replace(' ', '')}"]


def config(name: str):
  from mvae_jax import cli
  return cli.load_config(INDEX[name]["base_config"], overrides(name))


def reference(name: str):
  return np.load(os.path.join(MODELS, f"{name}.npz"))
