"""The one config loader: overrides in config_flags' conventions, one-line errors, and the
package's import structure (no cycles; inference imports no training code)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

import mvae_jax
from mvae_jax import checkpoints, config


def test_overrides_in_both_forms_with_types():
  cfg = config.load("cat-mel_2bar_small_tiny", [
      "--config.train.batch_size=8", "--config.seed", "-3", "--config.data.dataset", "midi_dir",
      "--config.model.dec_rnn_size=[64,64]", "--config.model.core_per_stream",
      "--config.optim.learning_rate=1"])
  assert cfg.train.batch_size == 8 and cfg.seed == -3 and cfg.data.dataset == "midi_dir"
  assert cfg.model.dec_rnn_size == [64, 64] and cfg.model.core_per_stream is True
  assert isinstance(cfg.optim.learning_rate, float) and cfg.optim.learning_rate == 1.0
  assert config.load("cat-mel_2bar_small_tiny", ["--noconfig.model.core_per_stream"]
                     ).model.core_per_stream is False


@pytest.mark.parametrize("override,words", [
    ("--config.train.batch_size=abc", ["--config.train.batch_size", "abc"]),
    ("--config.train.batch_size=1.5", ["--config.train.batch_size"]),
    ("--config.model.enc_rnn_size=3", ["expected a list"]),
    ("--config.nonsense=1", ["--config.nonsense", "unknown config key", "common.py"]),
    ("--workers=3", ["--workers", "unknown flag"]),
])
def test_bad_overrides_are_one_line(override, words):
  with pytest.raises(config.ConfigError) as e:
    config.load("cat-mel_2bar_small_tiny", [override])
  assert "\n" not in str(e.value) and all(w in str(e.value) for w in words), str(e.value)


@pytest.mark.parametrize("typo", ["batch_size", "train.batch_sise", "train.batchsize"])
def test_unknown_key_names_the_closest_and_that_one_works(typo):
  with pytest.raises(config.ConfigError) as e:
    config.load("cat-mel_2bar_small_tiny", [f"--config.{typo}=8"])
  assert "did you mean train.batch_size, i.e. --config.train.batch_size" in str(e.value)
  assert config.load("cat-mel_2bar_small_tiny",
                     ["--config.train.batch_size=8"]).train.batch_size == 8


def test_saved_config_json_loads_and_names_the_file_when_corrupt(tmp_path):
  cfg = config.load("hierdec-mel_16bar_tiny", ["--config.train.batch_size=4"])
  checkpoints.write_config(cfg, str(tmp_path))
  path = str(tmp_path / checkpoints.CONFIG_FILE)
  again = config.load(path, ["--config.train.num_steps=5"])
  assert again.train.batch_size == 4 and again.train.num_steps == 5
  assert again.model.level_lengths == cfg.model.level_lengths
  with open(path, "w") as f:
    f.write('{"name": ')
  with pytest.raises(config.ConfigError) as e:
    config.load(path)
  assert path in str(e.value) and "\n" not in str(e.value)
  with pytest.raises(config.ConfigError):
    config.load("no-such-experiment")


def _imports(path: str, package: str) -> set[str]:
  """mvae_jax modules `path` imports (absolute, relative and `from pkg import module`)."""
  tree = ast.parse(open(path).read())
  out = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      out |= {a.name for a in node.names}
    elif isinstance(node, ast.ImportFrom) and node.module:
      base = node.module if not node.level else package.rsplit(".", node.level - 1)[0] + (
          "." + node.module if node.module else "")
      out.add(base)
      out |= {f"{base}.{a.name}" for a in node.names}
  return {m for m in out if m.startswith("mvae_jax")}


def test_no_import_cycles():
  root = os.path.dirname(mvae_jax.__file__)
  modules = {}
  for dirpath, _, files in os.walk(root):
    for f in files:
      if f.endswith(".py"):
        rel = os.path.relpath(os.path.join(dirpath, f), root)[:-3].replace(os.sep, ".")
        name = "mvae_jax" + ("" if rel == "__init__" else "." + rel.removesuffix(".__init__"))
        modules[name] = os.path.join(dirpath, f)
  graph = {m: {i for i in _imports(p, m) if i in modules and i != m and i != "mvae_jax"}
           for m, p in modules.items()}
  graph = {m: {i for i in deps if not m.startswith(i + ".")} for m, deps in graph.items()}
  state = {}

  def visit(m, stack):
    state[m] = "open"
    for d in graph[m]:
      if state.get(d) == "open":
        raise AssertionError(" -> ".join(stack + [m, d]))
      if d not in state:
        visit(d, stack + [m])
    state[m] = "done"

  for m in graph:
    if m not in state:
      visit(m, [])


def test_inference_imports_no_training_code():
  code = ("import sys, mvae_jax.generate; print(sorted(m for m in sys.modules if "
          "m.startswith('mvae_jax.train') or m == 'optax'))")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.strip() == "[]"
