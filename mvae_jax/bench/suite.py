"""Bench suites: which configs to compare, on what data, with what budget and evaluations.

A suite is an ml_collections file `experiments/bench/<name>.py` whose `get_config(preset)`
returns `suite_config(...)` for the preset (`quick`: 2 CPU cores, minutes; `paper`: the paper's
batch sizes and step counts, for a pod). Every key is declared once, here, with a comment;
`--config.KEY=VALUE` overrides go through the one loader (`mvae_jax.config.apply_overrides`).

    s = suite.load("melody_16bar", "quick", ["--config.train.num_steps=500"])
    for label, cfg in suite.model_configs(s): ...
"""

from __future__ import annotations

import os
from typing import Sequence

import ml_collections

from mvae_jax import config as config_lib
from mvae_jax.experiments import common

SUITE_DIR = os.path.join(common.HERE, "bench")
PRESETS = ("quick", "paper")
EVALUATIONS = ("reconstruction", "interpolation", "attributes", "throughput")


class SuiteError(ValueError):
  """A suite that cannot run; str() is one line naming the file or flag and the fix."""


EVALUATIONS = ("reconstruction", "interpolation", "attributes", "throughput")


def paper_suite(*, name: str, configs: Sequence[str], labels: Sequence[str], dataset: str,
                batch_size: int, description: str,
                evaluations: Sequence[str] = EVALUATIONS) -> ml_collections.ConfigDict:
  """The `paper` preset of a suite: Magenta's sizes, 200,000 steps (music_vae_train's default),
  every held-out window, 1,024 interpolation pairs, the LM on every training window."""
  return suite_config(name=name, preset="paper", configs=configs, labels=labels, dataset=dataset,
                      num_steps=200000, batch_size=batch_size, evaluations=evaluations,
                      eval_windows=0, interpolation_pairs=1024, lm_train_windows=0,
                      attribute_windows=2000, description=description)


def suite_config(*, name: str, preset: str, configs: Sequence[str], labels: Sequence[str],
                 dataset: str, num_steps: int, batch_size: int, evaluations: Sequence[str],
                 description: str = "", eval_windows: int = 512, interpolation_pairs: int = 64,
                 lm_train_windows: int = 2000, attribute_windows: int = 1000,
                 overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
  s = ml_collections.ConfigDict()
  s.name = name  # the suite's file name under experiments/bench/
  s.preset = preset  # quick | paper
  s.description = description  # one line for the report
  s.configs = list(configs)  # experiment names (experiments/<name>.py), compared side by side
  s.labels = list(labels)  # short names for tables and plots, one per config
  # one per config: "" trains it in OUT/runs/<label>; else an existing workdir to evaluate as is
  # (a `mvae train` run, or a Magenta checkpoint brought in with `mvae import`)
  s.workdirs = [""] * len(configs)
  s.seed = 0  # model init, data order, pairs and windows picked: everything derives from it

  s.data = ml_collections.ConfigDict()
  s.data.dataset = dataset  # replaces each config's data.dataset
  s.data.data_dir = ""  # prepared data sets ("": $MVAE_DATA_DIR or ~/mvae_data)
  s.data.midi_dir = ""  # for dataset=midi_dir
  s.data.eval_split = "test"  # held-out windows every evaluation reads

  s.train = ml_collections.ConfigDict()
  s.train.num_steps = num_steps  # the same budget for every config
  s.train.batch_size = batch_size  # the same global batch for every config
  s.train.overrides = list(overrides)  # --config.KEY=VALUE applied to every config

  s.eval = ml_collections.ConfigDict()
  s.eval.evaluations = list(evaluations)  # any of reconstruction|interpolation|attributes|throughput
  s.eval.windows = eval_windows  # held-out windows for the reconstruction table (0: all)
  s.eval.batch_size = 64  # windows decoded at once

  s.interpolation = ml_collections.ConfigDict()
  s.interpolation.pairs = interpolation_pairs  # (A, B) pairs of held-out windows
  s.interpolation.alphas = 11  # interpolation points, endpoints included
  s.interpolation.method = "slerp"  # slerp | linear (on mu)
  s.interpolation.lm_order = 5  # n of the n-gram language model
  s.interpolation.lm_train_windows = lm_train_windows  # training windows it is fit on (0: all)

  s.attributes = ml_collections.ConfigDict()
  s.attributes.windows = attribute_windows  # held-out windows: half derive vectors, half test
  s.attributes.scale = 1.0  # k in z + k * vector

  s.throughput = ml_collections.ConfigDict()
  s.throughput.steps = 10  # timed train steps per config, after compiling
  s.throughput.batch_size = 0  # 0: train.batch_size
  return s


def names() -> list[str]:
  return sorted(f[:-3] for f in os.listdir(SUITE_DIR)
                if f.endswith(".py") and not f.startswith("_"))


def path_of(name_or_path: str) -> str:
  path = name_or_path if name_or_path.endswith(".py") else os.path.join(SUITE_DIR,
                                                                         name_or_path + ".py")
  if not os.path.exists(path):
    raise SuiteError(f"suite {name_or_path!r} not found; suites in {SUITE_DIR}: "
                     f"{', '.join(names())} (or give the path of a suite file)")
  return path


def load(name_or_path: str, preset: str = "quick",
         overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
  """A suite by name (`melody_16bar`) or path, for `preset`, overrides applied, checked."""
  import importlib.util  # noqa: PLC0415
  if preset not in PRESETS:
    raise SuiteError(f"--preset {preset!r}: use one of {', '.join(PRESETS)}")
  path = path_of(name_or_path)
  spec = importlib.util.spec_from_file_location(f"mvae_suite_{abs(hash(path))}", path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  s = mod.get_config(preset)
  s.lock()
  try:
    config_lib.apply_overrides(s, overrides, path)
  except config_lib.ConfigError as e:
    msg = str(e).replace(os.path.join(common.HERE, "common.py"), __file__)
    raise SuiteError(msg) from None
  check(s, path)
  return s


def check(s, where: str = "") -> None:
  """One-line errors for a suite that cannot run, before anything is trained."""
  where = where or s.name
  if len(s.labels) != len(s.configs) or len(s.workdirs) != len(s.configs):
    raise SuiteError(f"{where}: configs, labels and workdirs must have one entry each "
                     f"({len(s.configs)}, {len(s.labels)}, {len(s.workdirs)})")
  if len(set(s.labels)) != len(s.labels):
    raise SuiteError(f"{where}: labels {s.labels} repeat; give each config its own")
  bad = [e for e in s.eval.evaluations if e not in EVALUATIONS]
  if bad:
    raise SuiteError(f"--config.eval.evaluations: unknown {bad}; choose from "
                     f"{', '.join(EVALUATIONS)}")
  if s.interpolation.alphas < 2:
    raise SuiteError("--config.interpolation.alphas must be at least 2 (the endpoints)")
  if s.interpolation.method not in ("slerp", "linear"):
    raise SuiteError(f"--config.interpolation.method {s.interpolation.method!r}: slerp|linear")
  from mvae_jax import datasets  # noqa: PLC0415
  if s.data.dataset not in datasets.BUILDERS:
    raise SuiteError(f"--config.data.dataset {s.data.dataset!r}: unknown data set; choose one of "
                     f"{', '.join(datasets.BUILDERS)}")
  for wd in s.workdirs:
    if wd and not os.path.exists(os.path.join(os.path.expanduser(wd), "config.json")):
      raise SuiteError(f"--config.workdirs: {wd} holds no config.json; give the workdir of a "
                       "`mvae train` or `mvae import` run, or '' to train")
  for name in s.configs:
    model_config(s, name)


def model_config(s, name: str) -> ml_collections.ConfigDict:
  """Experiment `name` with the suite's data, seed, budget and overrides applied."""
  argv = [f"--config.data.dataset={s.data.dataset}", f"--config.data.data_dir={s.data.data_dir}",
          f"--config.data.midi_dir={s.data.midi_dir}", f"--config.seed={s.seed}",
          f"--config.train.num_steps={s.train.num_steps}",
          f"--config.train.batch_size={s.train.batch_size}", *s.train.overrides]
  try:
    return config_lib.load(name, argv)
  except config_lib.ConfigError as e:
    raise SuiteError(f"suite {s.name}, config {name}: {e}") from None


def model_configs(s) -> list[tuple[str, ml_collections.ConfigDict]]:
  """[(label, config)] in the suite's order."""
  return [(label, model_config(s, name)) for label, name in zip(s.labels, s.configs)]


__all__ = ["load", "model_config", "model_configs", "suite_config", "names", "check",
           "SuiteError", "PRESETS", "EVALUATIONS", "SUITE_DIR"]
