"""The training loop: sharded equals single-device, exact resume after SIGKILL, clean SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from conftest import FIXTURE_MIDI
from mvae_jax import checkpoints, cli, config
from mvae_jax.train import loop, sharding


def tiny_overrides(data_dir):
  return [f"--config.data.dataset=midi_dir", f"--config.data.midi_dir={FIXTURE_MIDI}",
          f"--config.data.data_dir={data_dir}", "--config.data.eval_split=train",
          "--config.train.batch_size=16", "--config.train.num_steps=24",
          "--config.train.checkpoint_every_steps=8", "--config.train.eval_every_steps=1000",
          "--config.train.log_every_steps=4", "--config.train.eval_batches=1"]


def tiny_config(data_dir):
  return config.load("cat-mel_2bar_small_tiny", tiny_overrides(data_dir))


def test_sharded_step_equals_one_device(fixture_dataset, data_dir):
  assert len(jax.devices()) == 8
  cfg = tiny_config(data_dir)
  runs = [loop.Run(cfg, sharding.make_mesh(1, jax.devices()[:1])),
          loop.Run(cfg, sharding.make_mesh(1, jax.devices()))]
  windows = runs[0].windows("train")
  batches = [next(runs[0].train_iterator(windows)) for _ in range(1)]
  it = runs[0].train_iterator(windows)
  batches = [next(it) for _ in range(3)]
  finals, losses = [], []
  for run in runs:
    state = run.init_state()
    ls = []
    for b in batches:
      state, m = run.train_step(state, sharding.global_batch(b, run.mesh), run.rng)
      ls.append(float(m["loss"]))
    losses.append(ls)
    finals.append(jax.device_get(state.params))
  assert len(runs[1].state_sharding.params["encoder"]["mu"]["kernel"].mesh.devices.ravel()) == 8
  np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)
  for a, b in zip(jax.tree.leaves(finals[0]), jax.tree.leaves(finals[1])):
    np.testing.assert_allclose(a, b, atol=2e-5)


def _train_cmd(workdir, data_dir):
  return [sys.executable, "-m", "mvae_jax", "train", "--config", "cat-mel_2bar_small_tiny",
          "--workdir", str(workdir), *tiny_overrides(data_dir)]


def _wait_for_checkpoint(workdir, step, proc, timeout=240):
  path = os.path.join(workdir, "checkpoints", str(step))
  t = time.time()
  while not os.path.isdir(path):
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    assert time.time() - t < timeout, "no checkpoint in time"
    time.sleep(0.2)


def test_killed_run_resumes_to_identical_parameters(fixture_dataset, data_dir, tmp_path):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  ref = tmp_path / "uninterrupted"
  done = subprocess.run(_train_cmd(ref, data_dir), capture_output=True, text=True, env=env,
                        timeout=600)
  assert done.returncode == 0, done.stderr[-3000:]

  work = tmp_path / "interrupted"
  p = subprocess.Popen(_train_cmd(work, data_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, env=env)
  _wait_for_checkpoint(work, 8, p)
  p.send_signal(signal.SIGKILL)  # anywhere after the first checkpoint
  p.wait()
  p = subprocess.Popen(_train_cmd(work, data_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, env=env)
  _wait_for_checkpoint(work, 16, p)
  p.send_signal(signal.SIGTERM)  # preemption: save and exit cleanly
  out, err = p.communicate(timeout=240)
  assert p.returncode == 0, err[-3000:]
  assert "resumed from step" in out and "SIGTERM: saved step" in out
  done = subprocess.run(_train_cmd(work, data_dir), capture_output=True, text=True, env=env,
                        timeout=600)
  assert done.returncode == 0, done.stderr[-3000:]

  cfg = tiny_config(data_dir)
  a, sa = loop.restore_params(cfg, str(ref))
  b, sb = loop.restore_params(cfg, str(work))
  assert sa == sb == 24
  for x, y in zip(jax.tree.leaves(jax.device_get(a)), jax.tree.leaves(jax.device_get(b))):
    np.testing.assert_array_equal(x, y)  # bit-identical on CPU
  assert os.path.exists(work / "config.json") and os.listdir(work / "tensorboard")


def test_a_second_training_on_a_busy_workdir_stops_in_one_line(fixture_dataset, data_dir,
                                                               tmp_path):
  """Two trainings on one workdir would collide in their Orbax saves: the second stops before
  writing anything. (The lock dies with its process: the SIGKILL test above resumes.)"""
  work = tmp_path / "busy"
  work.mkdir()
  with loop.workdir_lock(str(work)):  # what a running `mvae train` holds
    r = subprocess.run(_train_cmd(work, data_dir), capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, JAX_PLATFORMS="cpu"))
  lines = [line for line in r.stderr.splitlines() if line.startswith("mvae")]
  assert r.returncode == 2 and len(lines) == 1, r.stderr[-2000:]
  assert "is in use by another training" in lines[0] and f"pid {os.getpid()} on" in lines[0]
  assert os.listdir(work) == [loop.LOCK_FILE]  # no config.json, checkpoints or metrics
  from mvae_jax.interop import workdir  # `mvae import` may still fill it
  workdir.check_empty_destination(str(work))


def test_user_errors_are_one_line(tmp_path, data_dir):
  def run(*args):
    r = subprocess.run([sys.executable, "-m", "mvae_jax", *args], capture_output=True,
                       text=True, timeout=300)
    lines = [l for l in r.stderr.splitlines() if l.startswith("mvae")]
    return r.returncode, lines
  code, lines = run("train", "--config", "cat-mel_2bar_small_tiny", "--workdir", str(tmp_path),
                    "--config.train.batch_sise=3")
  assert code == 2 and len(lines) == 1 and "did you mean train.batch_size" in lines[0]
  code, lines = run("eval", "--config", "cat-mel_2bar_small_tiny", "--workdir", str(tmp_path))
  assert code == 2 and "no checkpoint" in lines[0]
  code, lines = run("train", "--config", "cat-mel_2bar_small_tiny", "--workdir", str(tmp_path),
                    f"--config.data.data_dir={tmp_path / 'none'}")
  assert code == 2 and "mvae prepare folk_melodies" in lines[0]
  cfg = config.load("cat-mel_2bar_small_tiny")
  checkpoints.write_config(cfg, str(tmp_path))
  cfg.unlock()
  cfg.model.z_size = 64
  with pytest.raises(loop.TrainError) as e:
    loop.check_workdir(cfg, str(tmp_path))
  assert "model.z_size: 32 -> 64" in str(e.value)


@pytest.mark.parametrize("setting", ["compute_dtype", "recurrent_dtype"])
def test_bfloat16_compute_keeps_float32_params(fixture_dataset, data_dir, setting):
  """The option reaches the train step (its program multiplies in bfloat16, the default's
  never: XLA may still run a small matmul in float32) and training goes on with float32
  parameters."""
  def run_of(extra):
    cfg = config.load("cat-mel_2bar_small_tiny", tiny_overrides(data_dir) + extra)
    run = loop.Run(cfg, sharding.make_mesh(1, jax.devices()[:1]))
    return run, run.train_iterator(run.windows("train")), run.init_state()

  run, it, state = run_of([f"--config.train.{setting}=bfloat16"])
  batch = sharding.global_batch(next(it), run.mesh)
  program = run.train_step.lower(state, batch, run.rng).as_text()
  losses = []
  for _ in range(3):
    state, m = run.train_step(state, sharding.global_batch(next(it), run.mesh), run.rng)
    losses.append(float(m["loss"]))
  assert all(np.isfinite(losses)) and int(state.skipped) == 0
  assert all(x.dtype == np.float32 for x in jax.tree.leaves(state.params))
  run, _, state = run_of([])
  assert "bf16" in program and "bf16" not in run.train_step.lower(state, batch, run.rng).as_text()


def test_a_skipped_update_leaves_parameters_and_adam_state_as_they_were(fixture_dataset,
                                                                         data_dir):
  """A gradient norm at or above optim.grad_norm_clip_to_zero skips the update entirely (a
  non-finite loss or norm takes the same path): parameters and Adam's moments and count stay
  bit for bit; a good step moves them all."""
  def run_of(extra):
    cfg = config.load("cat-mel_2bar_small_tiny", tiny_overrides(data_dir) + extra)
    return loop.Run(cfg, sharding.make_mesh(1, jax.devices()[:1]))

  run = run_of([])
  batch = sharding.global_batch(next(run.train_iterator(run.windows("train"))), run.mesh)
  state = run.init_state()
  before = jax.device_get(state)  # the step donates its input state
  state, m = run.train_step(state, batch, run.rng)
  after_good = jax.device_get(state)
  assert float(m["update_ok"]) == 1.0 and int(after_good.opt_state[1].count) == 1
  for a, b in zip(jax.tree.leaves((before.params, before.opt_state)),
                  jax.tree.leaves((after_good.params, after_good.opt_state))):
    assert a.size == 1 or not np.array_equal(a, b)  # every array but the clip's moved
  state, m = run_of(["--config.optim.grad_norm_clip_to_zero=1e-6"]).train_step(
      state, batch, run.rng)
  after_skip = jax.device_get(state)
  assert float(m["update_ok"]) == 0.0 and int(after_skip.skipped) == 1
  assert int(after_skip.step) == 2 and int(after_skip.streak) == 1
  for a, b in zip(jax.tree.leaves((after_good.params, after_good.opt_state)),
                  jax.tree.leaves((after_skip.params, after_skip.opt_state))):
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("setting", ["compute_dtype", "recurrent_dtype"])
def test_a_wrong_dtype_is_one_line_naming_the_flag(tmp_path, capsys, setting):
  assert cli.main(["train", "--config", "cat-mel_2bar_small_tiny", "--workdir",
                   str(tmp_path / "run"), f"--config.train.{setting}=bf16"]) == 2
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and f"--config.train.{setting}=bf16" in err, err
  assert "bfloat16" in err


def test_data_hints_name_flags_that_exist_and_work_when_tried(tmp_path, capsys):
  fresh = tmp_path / "data"
  base = ["train", "--config", "cat-mel_2bar_small_tiny", "--workdir", str(tmp_path / "run"),
          "--config.data.dataset=midi_dir", f"--config.data.data_dir={fresh}"]
  assert cli.main(base + ["--config.data.midi_dir", str(tmp_path / "nowhere")]) == 2
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and "--config.data.midi_dir" in err and "no such folder" in err
  assert cli.main(base + [f"--config.data.midi_dir={FIXTURE_MIDI}"]) == 2
  hint = capsys.readouterr().err.split("`")[1]
  assert hint.startswith("mvae prepare midi_dir --midi_dir"), hint
  r = subprocess.run([sys.executable, "-m", "mvae_jax", *hint.split()[1:]], capture_output=True,
                     text=True, timeout=600)
  assert r.returncode == 0, r.stderr[-2000:]
  assert cli.main(base + [f"--config.data.midi_dir={FIXTURE_MIDI}",
                          "--config.train.batch_size", "80000"]) == 2
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and "lower --config.train.batch_size" in err, err
  assert config.load("cat-mel_2bar_small_tiny", ["--config.train.batch_size=16"])
