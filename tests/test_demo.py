"""The main job: `mvae demo` end to end on a tiny budget, and its determinism."""

from __future__ import annotations

import json
import os

import numpy as np

from mvae_jax import demo


def _strip_times(report: dict) -> dict:
  r = dict(report)
  for k in ("seconds", "out", "picture"):
    r.pop(k)
  return r


def test_demo_is_deterministic_and_reports_its_figures(folk_dataset, data_dir, tmp_path):
  reports = []
  for i in range(2):
    reports.append(demo.run(str(tmp_path / f"run{i}"), str(tmp_path / f"out{i}"), steps=30,
                            data_dir=data_dir, progress=False))
  a, b = reports
  assert _strip_times(a) == _strip_times(b)  # same seed, same figures to the last digit
  assert a["steps"] == 30
  rec = a["reconstruction"]
  for name in ("model", "majority_class", "repeat_previous"):
    assert 0.0 <= rec[name]["overall"] <= 1.0 and 0.0 <= rec[name]["onset"] <= 1.0
  assert rec["windows"] > 1000  # every held-out window
  assert a["music"]["num_samples"] == 8 and len(a["music"]["samples_each"]) == 8
  assert [r["step"] for r in a["learning_curve"]] == [30]
  out = tmp_path / "out0"
  with open(out / "demo_report.json") as f:
    assert json.load(f)["reconstruction"] == rec
  assert os.path.getsize(a["picture"]) > 10_000
  mids = [f for f in os.listdir(out) if f.endswith(".mid")]
  assert len(mids) == 8 + 7 + 2 + 2


def test_demo_in_a_workdir_of_another_run_is_one_line(folk_dataset, data_dir, tmp_path):
  import subprocess
  import sys
  work = tmp_path / "run"
  work.mkdir()
  (work / "config.json").write_text(json.dumps({"name": "cat-mel_2bar_small_tiny"}))
  r = subprocess.run([sys.executable, "-m", "mvae_jax", "demo", "--workdir", str(work), "--out",
                      str(tmp_path / "out"), "--data_dir", data_dir, "--steps", "5"],
                     capture_output=True, text=True, timeout=600)
  assert r.returncode == 2, r.stderr[-2000:]
  lines = [l for l in r.stderr.splitlines() if l.startswith("mvae")]
  assert len(lines) == 1 and "--workdir" in lines[0], r.stderr[-2000:]


def test_chance_none_outside_is_that_of_drawing_real_windows():
  rng = np.random.default_rng(0)
  outside = np.zeros(50, bool)
  outside[:10] = True
  draws = rng.random((40_000, 50)).argsort(1)[:, :8]  # 8 distinct windows per draw
  empirical = float((~outside[draws].any(1)).mean())
  assert abs(demo.chance_none_outside(10, 50, 8) - empirical) < 0.01
  assert abs(demo.chance_none_outside(10, 50, 8) - 0.8 ** 8) > 0.02  # not with replacement
  assert demo.chance_none_outside(0, 50, 8) == 1.0 and demo.chance_none_outside(43, 50, 8) == 0.0
