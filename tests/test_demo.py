"""The main job: `mvae demo` end to end on a tiny budget, and its determinism."""

from __future__ import annotations

import json
import os

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
