"""Each command's flags reach the library call they name (the calls themselves are stubbed here;
tests/test_generate.py and tests/train/ run them for real)."""

from __future__ import annotations

import pytest

from mvae_jax import cli


def _stub(monkeypatch, module, name, result=None):
  calls = []

  def stub(*args, **kwargs):
    calls.append((args, kwargs))
    return result
  monkeypatch.setattr(module, name, stub)
  return calls


def test_prepare_flags(monkeypatch, capsys):
  from mvae_jax import datasets

  class Builder:
    data_dir = "/d"
  calls = _stub(monkeypatch, datasets, "prepare", (Builder(), {}, True))
  assert cli.main(["prepare", "midi_dir", "--midi_dir", "/m", "--data_dir", "/d",
                   "--workers", "3"]) == 0
  assert calls == [(("midi_dir",), {"data_dir": "/d", "midi_dir": "/m", "workers": 3,
                                    "limits": datasets.Limits(), "rebuild": False,
                                    "beam_options": None})]
  assert cli.main(["prepare", "midi_dir", "--midi_dir", "/m", "--time_limit", "5",
                   "--max_tracks", "0", "--memory_limit_mb", "900", "--rebuild"]) == 0
  assert calls[-1][1]["limits"] == datasets.Limits(time_limit=5.0, max_tracks=0,
                                                   memory_limit_mb=900)
  assert calls[-1][1]["rebuild"]
  with pytest.raises(SystemExit):
    cli.main(["prepare", "midi_dir", "--workers", "0"])
  with pytest.raises(SystemExit):
    cli.main(["prepare", "midi_dir", "--time_limit", "-1"])


def test_train_flags(monkeypatch, capsys):
  from mvae_jax.train import loop, sharding
  dist = _stub(monkeypatch, sharding, "maybe_initialize_distributed", False)
  trains = _stub(monkeypatch, loop, "train", {"step": 3})
  assert cli.main(["train", "--config", "cat-mel_2bar_small_tiny", "--workdir", "/w",
                   "--coordinator", "host:1234", "--num_processes", "2", "--process_id", "1",
                   "--config.train.batch_size", "8", "--config.seed=2"]) == 0
  assert dist == [(("host:1234", 2, 1), {})]
  (cfg, workdir), _ = trains[0]
  assert workdir == "/w" and cfg.train.batch_size == 8 and cfg.seed == 2
  assert cli.main(["train", "--config", "cat-mel_2bar_small_tiny", "--workdir", "/w",
                   "--config.batch_size=8"]) == 2
  assert "--config.train.batch_size" in capsys.readouterr().err


def test_eval_flags(monkeypatch, capsys):
  from mvae_jax.train import loop
  calls = _stub(monkeypatch, loop, "evaluate", {"step": 5})
  assert cli.main(["eval", "--config", "cat-mel_2bar_small_tiny", "--workdir", "/w", "--step",
                   "5", "--split", "test", "--config.train.eval_batches", "2"]) == 0
  (cfg, workdir, step, split), _ = calls[0]
  assert (workdir, step, split, cfg.train.eval_batches) == ("/w", 5, "test", 2)


def test_demo_flags(monkeypatch, capsys):
  from mvae_jax import demo
  calls = _stub(monkeypatch, demo, "run", {})
  assert cli.main(["demo", "--workdir", "/w", "--out", "/o", "--steps", "7", "--data_dir",
                   "/d"]) == 0
  assert calls == [(("/w", "/o", 7, "/d"), {})]
