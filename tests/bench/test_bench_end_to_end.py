"""`mvae bench` end to end on a tiny suite: every evaluation, the report's fields, the plots,
resuming, and bad input as one line."""

from __future__ import annotations

import json
import os

from mvae_jax import cli
from mvae_jax.bench import suite as suite_lib
from mvae_jax.train import flops

SUITE = os.path.join(os.path.dirname(__file__), "tiny_suite.py")


def _is_png(path: str) -> bool:
  with open(path, "rb") as f:
    return f.read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(path) > 5000


def test_tiny_bench_end_to_end(folk_dataset, data_dir, tmp_path, capsys):
  out = str(tmp_path / "bench")
  argv = ["bench", SUITE, "--workdir", out, f"--config.data.data_dir={data_dir}"]
  assert cli.main(argv) == 0
  with open(os.path.join(out, "results.json")) as f:
    res = json.load(f)
  assert set(res["configs"]) == {"flat", "hierdec"}
  s = suite_lib.load(SUITE, "quick", [f"--config.data.data_dir={data_dir}"])
  for label, cfg in suite_lib.model_configs(s):
    r = res["configs"][label]
    assert r["step"] == 10 and r["decoder"] == cfg.model.decoder
    rec = r["reconstruction"]
    for k in ("teacher_forced_accuracy", "sampled_accuracy", "gap", "r_loss", "kl_bits"):
      assert rec[k]["lo"] <= rec[k]["mean"] <= rec[k]["hi"] and rec[k]["n"] == 16, (k, rec[k])
    for k in ("teacher_forced_accuracy", "sampled_accuracy"):
      assert 0.0 <= rec[k]["mean"] <= 1.0
    assert abs(rec["gap"]["mean"] - (rec["teacher_forced_accuracy"]["mean"]
                                     - rec["sampled_accuracy"]["mean"])) < 1e-9
    it = r["interpolation"]
    assert len(it["hamming_to_a"]) == 11 and len(it["lm_cost_bits"]) == 11
    assert all(0.0 <= h <= 1.0 for h in it["hamming_to_a"])
    assert len(r["attributes"]["matrix"]) == 5 and all(len(row) == 5
                                                       for row in r["attributes"]["matrix"])
    tp = r["throughput"]
    assert tp["flops_per_step"] == flops.train_step_flops(cfg, 8)
    assert tp["steps_per_sec"] > 0 and tp["peak_memory_bytes"] > 0 and tp["device"]
  data = res["data_interpolation"]
  assert data["hamming_to_a"][0] == 0.0  # α = 0 is A itself
  assert abs(data["hamming_to_a"][-1] - data["hamming_a_b"]) < 1e-12  # α = 1 is B
  assert len(res["paper_finding"]) == 2  # one flat, one hierarchical: two claims checked
  with open(os.path.join(out, "report.md")) as f:
    md = f.read()
  for heading in ("## Reconstruction (paper Table 1)", "### The paper's finding at this budget",
                  "## Interpolation", "## Attribute vectors", "## Throughput"):
    assert heading in md
  assert "| flat (flat-mel_16bar_tiny) | flat | 10 |" in md
  assert set(res["plots"]) == {"reconstruction", "interpolation", "attributes"}
  for name in res["plots"].values():
    assert _is_png(os.path.join(out, name)), name
    assert f"]({name})" in md

  # rerun: everything is reused (no result file rewritten), same figures
  stamps = {p: os.path.getmtime(os.path.join(out, "results", p))
            for p in ("flat/reconstruction.json", "hierdec/interpolation.json")}
  assert cli.main(argv) == 0
  for p, t in stamps.items():
    assert os.path.getmtime(os.path.join(out, "results", p)) == t
  with open(os.path.join(out, "results.json")) as f:
    again = json.load(f)
  assert again["configs"]["flat"]["reconstruction"] == res["configs"]["flat"]["reconstruction"]

  # another budget in the same workdir: one line naming the flag and the fix
  capsys.readouterr()
  assert cli.main(argv + ["--config.train.num_steps=20"]) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and "--workdir" in err[0] and "train" in err[0], err


def test_bad_input_is_one_line(capsys, tmp_path):
  cases = [(["bench", "no_such_suite", "--workdir", str(tmp_path)], "melody_16bar"),
           (["bench", "melody_16bar", "--workdir", str(tmp_path), "--config.train.num_step=3"],
            "--config.train.num_steps"),
           (["bench", "melody_16bar", "--workdir", str(tmp_path),
             "--config.data.dataset=no_such_data"], "no_such_data"),
           (["bench", "melody_16bar", "--workdir", str(tmp_path), "--config.workdirs=['', '/nope', '']"],
            "/nope")]
  for argv, hint in cases:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mvae bench: error:") and hint in err[0], err


def test_bench_evaluates_imported_magenta_checkpoints(folk_dataset, data_dir, tmp_path):
  """A suite that names workdirs trains nothing: here two of Magenta's own checkpoints (flat
  and hierarchical 16-bar melody), brought in with `mvae import`."""
  fixtures = os.path.join(os.path.dirname(__file__), "..", "fixtures", "magenta", "checkpoints")
  workdirs = []
  for name in ("flat-mel_16bar_tiny", "hierdec-mel_16bar_tiny"):
    with open(os.path.join(fixtures, name, "hparams.json")) as f:
      meta = json.load(f)
    hp = meta["hparams"]
    work = str(tmp_path / name)
    assert cli.main(["import", os.path.join(fixtures, name), "--config", meta["base_config"],
                     f"--config.model.z_size={hp['z_size']}",
                     f"--config.model.enc_rnn_size={hp['enc_rnn_size']}".replace(" ", ""),
                     f"--config.model.dec_rnn_size={hp['dec_rnn_size']}".replace(" ", ""),
                     "--workdir", work]) == 0
    workdirs.append(work)
  out = str(tmp_path / "bench")
  assert cli.main(["bench", SUITE, "--workdir", out, f"--config.data.data_dir={data_dir}",
                   f"--config.workdirs={workdirs}",
                   "--config.eval.evaluations=['reconstruction']"]) == 0
  with open(os.path.join(out, "results.json")) as f:
    res = json.load(f)
  assert not os.path.exists(os.path.join(out, "runs"))  # nothing trained
  for label, work in zip(("flat", "hierdec"), workdirs):
    r = res["configs"][label]
    assert r["workdir"] == work and r["step"] == 1000  # Magenta's global_step
    assert 0.0 <= r["reconstruction"]["sampled_accuracy"]["mean"] <= 1.0
  assert res["configs"]["hierdec"]["decoder"] == "hierarchical"
