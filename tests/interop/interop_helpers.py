"""Shared by tests/interop: the 5 fixture models (configs, checkpoints, reference arrays) and the
magenta.js client (the `client` fixture, serving exports on 127.0.0.1, judging agreement)."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import shutil
import subprocess
import threading

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(os.path.dirname(HERE), "fixtures", "magenta")
CHECKPOINTS = os.path.join(FIXTURES, "checkpoints")
MODELS = os.path.join(FIXTURES, "models")
with open(os.path.join(MODELS, "models_index.json")) as f:
  INDEX = {m["name"]: m for m in json.load(f)}
NAMES = sorted(INDEX)
JS = os.path.join(HERE, "js")
MU_TOL = 1e-4


@pytest.fixture(scope="session")
def client():
  """Node with the pinned @magenta/music (npm ci from package-lock.json when missing)."""
  if shutil.which("node") is None or shutil.which("npm") is None:
    pytest.skip("Node.js and npm are needed for the magenta.js client test (Node 20)")
  if not os.path.isdir(os.path.join(JS, "node_modules", "@magenta", "music")):
    r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=JS,
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
      text = r.stderr + r.stdout
      if any(s in text for s in ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT",
                                 "network", "ECONNRESET")):
        pytest.skip(f"npm registry unreachable, cannot install @magenta/music: "
                    f"{text.strip().splitlines()[-1]}")
      pytest.fail(f"npm ci failed in {JS}: {text[-2000:]}")
  return JS


def overrides(name: str) -> list[str]:
  """`--config.*` flags that turn the fixture's base experiment into the fixture model."""
  hp = INDEX[name]["hparams"]
  return [f"--config.model.z_size={hp['z_size']}",
          f"--config.model.enc_rnn_size={json.dumps(hp['enc_rnn_size']).replace(' ', '')}",
          f"--config.model.dec_rnn_size={json.dumps(hp['dec_rnn_size']).replace(' ', '')}"]


def config(name: str):
  from mvae_jax import config
  return config.load(INDEX[name]["base_config"], overrides(name))


def reference(name: str):
  return np.load(os.path.join(MODELS, f"{name}.npz"))


@contextlib.contextmanager
def serve(root: str):
  handler = functools.partial(_QuietHandler, directory=root)
  httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
  t = threading.Thread(target=httpd.serve_forever, daemon=True)
  t.start()
  try:
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
  finally:
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
  def log_message(self, *args):
    pass


def run_judge(client_dir: str, root: str, jobs: list[dict], tmp_path) -> list[dict]:
  """magenta.js's μ and greedy tokens for each job ({"name": folder under root, ...})."""
  with serve(root) as url:
    payload = [{"url": f"{url}/{j['name']}", "inputs": np.asarray(j["inputs"]).tolist(),
                "z": np.asarray(j["z"]).tolist(), "depths": list(j["depths"])} for j in jobs]
    (tmp_path / "jobs.json").write_text(json.dumps(payload))
    r = subprocess.run(["node", os.path.join(client_dir, "judge.js"), str(tmp_path / "jobs.json"),
                        str(tmp_path / "out.json")], capture_output=True, text=True, timeout=600,
                       cwd=client_dir)
  assert r.returncode == 0, r.stderr[-3000:]
  return json.loads((tmp_path / "out.json").read_text())


def agreement(ours: dict, js: dict) -> dict:
  """max |μ_js − μ_ours| and the fraction of equal tokens (and magenta.js's error, if any)."""
  if js["error"]:
    return {"error": js["error"], "mu_err": float("inf"), "tokens_equal": 0.0}
  mu_err = float(np.abs(np.asarray(js["mu"]) - ours["mu"]).max())
  tok = np.asarray(js["tokens"])
  eq = float((tok == ours["tokens"]).mean()) if tok.shape == ours["tokens"].shape else 0.0
  return {"error": None, "mu_err": mu_err, "tokens_equal": eq}


def agrees(a: dict) -> bool:
  return a["error"] is None and a["mu_err"] <= MU_TOL and a["tokens_equal"] == 1.0


def ours_for(model, labels: np.ndarray, z: np.ndarray) -> dict:
  _, mu, _ = model.encode_labels(labels)
  return {"mu": mu, "tokens": model.decode_labels(z, temperature=0.0),
          "inputs": np.asarray(model.conv.labels_to_inputs(labels, np), np.float32)}


def fixture_labels(model, name: str) -> np.ndarray:
  ref = reference(name)
  return np.stack([model.conv.as_labels(o) for o in ref["outputs"]]).astype(np.int32)


def z_batch(model, mu: np.ndarray, seed: int) -> np.ndarray:
  rng = np.random.default_rng(seed)
  return np.concatenate([mu, rng.standard_normal((4, mu.shape[1]))]).astype(np.float32)
