"""Experiment configs: one by name or path, with command-line overrides applied.

    cfg = config.load("cat-mel_2bar_small_tiny", ["--config.train.batch_size=8"])

The one loader: the CLI, the demo, the benches and the tests call it. Overrides follow
ml_collections' `config_flags` conventions and are parsed by its flag parsers:
`--config.train.batch_size=8` and `--config.train.batch_size 8` both work, `--config.flag` /
`--noconfig.flag` set booleans, values are checked against the type of the key's current value
(lists as Python literals: `--config.model.dec_rnn_size=[256,256]`). Configs are locked; an
unknown key is a ConfigError naming the closest valid key.
"""

from __future__ import annotations

import ast
import difflib
import json
import os
import re
from typing import Sequence

import ml_collections
from absl import flags
from ml_collections import config_flags

from mvae_jax.experiments import common

_OVERRIDE = re.compile(r"^--?(?:no)?config\.([^=]+)")


class ConfigError(ValueError):
  """A config or override that cannot be used; str() is one line naming the flag and the fix."""


class _ListParser(flags.ArgumentParser):
  """A list-valued key from a Python literal (`[1, 2]`, `[["gates", "model"]]`)."""

  def parse(self, argument):
    if isinstance(argument, (list, tuple)):
      return list(argument)
    try:
      value = ast.literal_eval(argument)
    except (ValueError, SyntaxError):
      value = None
    if not isinstance(value, (list, tuple)):
      raise ValueError(f"expected a list such as [1, 2], got {argument!r}")
    return list(value)

  def flag_type(self):
    return "list"


config_flags.register_flag_parser_for_type(list, _ListParser())


def keys(cfg: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
  """Every leaf key of `cfg`, dotted (`train.batch_size`)."""
  out = []
  for k, v in cfg.items():
    if isinstance(v, ml_collections.ConfigDict):
      out += keys(v, f"{prefix}{k}.")
    else:
      out.append(f"{prefix}{k}")
  return out


def closest_key(key: str, valid: Sequence[str]) -> str | None:
  """The valid key a mistyped or unqualified `key` most likely meant, or None."""
  tails = [v for v in valid if v.endswith("." + key.split(".")[-1])]
  if len(tails) == 1:  # `batch_size` -> `train.batch_size`
    return tails[0]
  close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
  return close[0] if close else None


def _check_keys(cfg, argv: Sequence[str], spec: str) -> None:
  valid = keys(cfg)
  sections = {k.rsplit(".", 1)[0] for k in valid if "." in k}
  for arg in argv:
    m = _OVERRIDE.match(arg)
    if m is None:
      if arg.startswith("--") or re.match(r"^-[^\d.]", arg):
        raise ConfigError(f"{arg}: unknown flag; overrides look like --config.train.batch_size=64")
      continue  # the value of `--config.KEY VALUE`
    key = m.group(1)
    if key not in valid and key not in sections:
      close = closest_key(key, valid)
      hint = f" (did you mean {close}, i.e. --config.{close}?)" if close else ""
      raise ConfigError(f"--config.{key}: unknown config key{hint}; every key is declared in "
                        f"{os.path.join(common.HERE, 'common.py')}")


def apply_overrides(cfg: ml_collections.ConfigDict, argv: Sequence[str],
                    spec: str = "") -> ml_collections.ConfigDict:
  """`cfg` with `--config.KEY=VALUE` / `--config.KEY VALUE` overrides applied (in place)."""
  argv = list(argv)
  if not argv:
    return cfg
  _check_keys(cfg, argv, spec)
  fv = flags.FlagValues()
  try:
    config_flags.DEFINE_config_dict("config", cfg, flag_values=fv, sys_argv=["mvae", *argv])
    rest = fv(["mvae", *argv])
  except (flags.Error, ValueError, TypeError) as e:
    raise ConfigError(str(e).splitlines()[0]) from None
  if len(rest) > 1:
    raise ConfigError(f"{rest[1]}: not a config override; overrides look like "
                      "--config.train.batch_size=64")
  return cfg


def read_json(path: str) -> dict:
  """A saved config (a workdir's config.json) as plain JSON; ConfigError naming the file."""
  try:
    with open(path) as f:
      return json.load(f)
  except OSError as e:
    raise ConfigError(f"{path}: {e.strerror}") from None
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise ConfigError(f"{path} is not valid JSON ({e}); restore it from the run's copy or "
                      "train in a new --workdir") from None


def load(spec: str, overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
  """A locked config with `overrides` (command-line tokens) applied; `spec` is an experiment
  name (`cat-mel_2bar_small`), its path (`experiments/x.py`) or a saved `WORKDIR/config.json`."""
  if not spec:
    raise ConfigError("--config is required: an experiment name (e.g. cat-mel_2bar_small_tiny) "
                      "or a path (experiments/cat-mel_2bar_small_tiny.py)")
  if spec.endswith(".json"):
    cfg = ml_collections.ConfigDict(read_json(os.path.expanduser(spec)))
    cfg.lock()
    return apply_overrides(cfg, overrides, spec)
  try:
    cfg = common.load(spec)
  except FileNotFoundError as e:
    raise ConfigError(f"--config {e}") from None
  return apply_overrides(cfg, overrides, spec)


__all__ = ["load", "apply_overrides", "read_json", "keys", "closest_key", "ConfigError"]
