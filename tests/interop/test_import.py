"""`mvae import`: the TF checkpoint reader/writer and Magenta checkpoints -> workdirs.

The 5 fixture checkpoints are Magenta's own (written by its trainer); the imported models must
reproduce Magenta's μ, σ and logits (fixtures/magenta/models/*.npz) through the public API.
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil

import jax.numpy as jnp
import numpy as np
import pytest

import interop_helpers as H
from conftest import FIXTURE_MIDI
from interop_helpers import client  # noqa: F401  (fixture)
from mvae_jax import cli, config, generate
from mvae_jax.experiments import common
from mvae_jax.interop import magenta_names as mn
from mvae_jax.interop import tf_checkpoint as tfc
from mvae_jax import model as model_lib
from mvae_jax.train import loop


def run_cli(*argv):
  """(exit status, stdout, the stderr lines) of `mvae ...` in this process."""
  import contextlib
  import io
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    code = cli.main(list(argv))
  return code, out.getvalue(), [l for l in err.getvalue().splitlines() if l.strip()]


def leftovers(parent) -> list[str]:
  return [n for n in os.listdir(parent) if ".partial-" in n]


@pytest.mark.parametrize("name", H.NAMES)
def test_reader_reads_magenta_and_writer_reproduces_tensorflow_bytes(name, tmp_path):
  r = tfc.Reader(os.path.join(H.CHECKPOINTS, name))
  values = r.read_all()
  ref = H.reference(name)
  shared = [k for k in ref.files if k in values]
  assert len(shared) == len(H.INDEX[name]["trainable_variables"])
  for k in shared:
    np.testing.assert_array_equal(values[k], ref[k], err_msg=k)
  assert {k: list(v.shape) for k, v in values.items()} == {
      k: s for k, s in H.INDEX[name]["all_checkpoint_variables"]}
  assert int(values["global_step"]) == H.INDEX[name]["global_step"]
  # Our writer gives TensorFlow's own bytes: same table layout, checksums and shard.
  tfc.write(str(tmp_path / "model.ckpt-1000"), values)
  for suffix in (".index", ".data-00000-of-00001"):
    assert filecmp.cmp(r.prefix + suffix, str(tmp_path / f"model.ckpt-1000{suffix}"),
                       shallow=False), suffix


def test_expected_variables_of_every_experiment_are_our_parameters():
  """magenta_names (Magenta's construction) == our model's parameter tree, for all configs."""
  from flax import traverse_util
  for name in common.names():
    cfg = common.load(name)
    conv = model_lib.converter_of(cfg)
    ours = traverse_util.flatten_dict(model_lib.abstract_params(model_lib.model_of(cfg, conv), conv),
                                      sep="/")
    assert {k: tuple(v.shape) for k, v in ours.items()} == mn.expected_for(cfg), name
  for name in H.NAMES:  # and Magenta's own lists for the fixture models
    assert mn.expected_for(H.config(name)) == {
        k: tuple(s) for k, s in H.INDEX[name]["trainable_variables"]}


@pytest.mark.parametrize("name", H.NAMES)
def test_imported_model_reproduces_magenta(name, tmp_path):
  work = tmp_path / "work"
  code, out, err = run_cli("import", os.path.join(H.CHECKPOINTS, name), "--config",
                           H.INDEX[name]["base_config"], *H.overrides(name), "--workdir", str(work))
  assert code == 0, err
  assert "16 variables" in out or "variables" in out
  model = generate.TrainedModel.load(str(work))
  assert model.step == 1000
  ref = H.reference(name)
  x, lengths = jnp.asarray(ref["inputs"], jnp.float32), jnp.asarray(ref["lengths"])
  mu, sigma = model.model.apply({"params": model.params}, x, lengths, method="encode")
  labels = np.stack([model.conv.as_labels(o) for o in ref["outputs"]])
  logits = model.model.apply({"params": model.params}, mu, jnp.asarray(labels),
                             method="teacher_logits")
  np.testing.assert_allclose(mu, ref["mu"], atol=1e-5)
  np.testing.assert_allclose(sigma, ref["sigma"], atol=1e-5)
  np.testing.assert_allclose(logits, ref["logits"], atol=1e-5)
  _, mu2, sigma2 = model.encode_labels(labels)  # the converter's own inputs
  np.testing.assert_allclose(mu2, ref["mu"], atol=1e-5)
  np.testing.assert_allclose(sigma2, ref["sigma"], atol=1e-5)
  record = json.loads((work / "imported_from.json").read_text())
  assert record["global_step"] == 1000 and record["optimizer_variables"] > 0


def test_shape_mismatch_is_one_line_naming_the_matching_config(tmp_path):
  rng = np.random.default_rng(0)
  flat = {k: rng.standard_normal(s).astype(np.float32)
          for k, s in mn.expected_for(common.load("cat-mel_2bar_small_tiny")).items()}
  tfc.write(str(tmp_path / "ckpt" / "model.ckpt-5"), flat)
  code, _, err = run_cli("import", str(tmp_path / "ckpt"), "--config", "cat-mel_2bar_small_tiny",
                         "--config.model.z_size=16", "--workdir", str(tmp_path / "w"))
  assert code == 2 and len(err) == 1, err
  assert err[0].startswith("mvae import: error: variable encoder/mu/kernel: "
                           "config cat-mel_2bar_small_tiny expects [256, 16], the checkpoint "
                           "has [256, 32]; the checkpoint matches --config cat-mel_2bar_big_tiny "
                           "(or cat-mel_2bar_small_tiny, demo-mel_2bar, flat-mel_16bar_tiny)"), err
  assert not (tmp_path / "w").exists() and not leftovers(tmp_path)
  # a drum model's checkpoint imported as a melody model: the shapes say so
  code, _, err = run_cli("import", os.path.join(H.CHECKPOINTS, "cat-drums_2bar_tiny"),
                         "--config", "cat-mel_2bar_small", *H.overrides("cat-mel_2bar_tiny"),
                         "--workdir", str(tmp_path / "w"))
  assert code == 2 and len(err) == 1 and "expects [" in err[0] and "has [" in err[0], err
  # missing / unused variables are named, never dropped
  del flat["decoder/output_projection/bias"]
  flat["decoder/extra/kernel"] = np.zeros((2, 2), np.float32)
  tfc.write(str(tmp_path / "ckpt2" / "model.ckpt-5"), flat)
  code, _, err = run_cli("import", str(tmp_path / "ckpt2"), "--config", "cat-mel_2bar_small_tiny",
                         "--workdir", str(tmp_path / "w"))
  assert code == 2 and len(err) == 1
  assert "1 variable(s) of config cat-mel_2bar_small_tiny missing (first: " \
         "decoder/output_projection/bias)" in err[0]
  assert "1 checkpoint variable(s) the config does not use (first: decoder/extra/kernel)" in err[0]
  assert not (tmp_path / "w").exists()


def test_bad_input_is_one_line_and_writes_nothing(tmp_path):
  src = os.path.join(H.CHECKPOINTS, "cat-mel_2bar_tiny")
  args = ["--config", "cat-mel_2bar_small", *H.overrides("cat-mel_2bar_tiny")]
  work = tmp_path / "w"

  def fails(path, needle, workdir=work):
    code, _, err = run_cli("import", str(path), *args, "--workdir", str(workdir))
    assert code == 2 and len(err) == 1 and needle in err[0], err
    assert not leftovers(tmp_path)

  fails(tmp_path / "nope" / "model.ckpt-1", "no such file or folder")
  fails(tmp_path, "no TensorFlow checkpoint here")
  bad = tmp_path / "trunc"
  shutil.copytree(src, bad)
  data = bad / "model.ckpt-1000.data-00000-of-00001"
  data.write_bytes(data.read_bytes()[:100_000])
  fails(bad, "truncated")
  raw = bytearray((tmp_path / "trunc").joinpath("model.ckpt-1000.index").read_bytes())
  shutil.copy(os.path.join(src, "model.ckpt-1000.data-00000-of-00001"), data)
  blob = bytearray(data.read_bytes())
  blob[-5] ^= 0xFF  # one flipped byte in the last variable
  data.write_bytes(bytes(blob))
  fails(bad, "corrupted")
  (bad / "model.ckpt-1000.index").write_bytes(bytes(raw[:-10]))
  fails(bad, "not a TensorFlow checkpoint index")
  assert not work.exists()
  work.mkdir()
  (work / "keep.txt").write_text("mine")
  fails(src, "exists and is not empty", work)
  assert os.listdir(work) == ["keep.txt"]


def test_tar_optimizer_state_eval_finetune_and_client(fixture_dataset, data_dir, tmp_path, client):
  """A released-style .tar imports; Adam's slots come along when asked; `mvae eval` and
  `mvae train` (fine-tuning, resumed from the imported step) accept the workdir; the fine-tuned
  (trained) model exported for magenta.js agrees with ours in the real client."""
  import tarfile
  tar = tmp_path / "cat-mel_2bar_tiny.tar"
  with tarfile.open(tar, "w") as t:
    for f in ("model.ckpt-1000.index", "model.ckpt-1000.data-00000-of-00001"):
      t.add(os.path.join(H.CHECKPOINTS, "cat-mel_2bar_tiny", f), arcname=f"cat-mel_2bar_tiny/{f}")
  data = ["--config.data.dataset=midi_dir", f"--config.data.midi_dir={FIXTURE_MIDI}",
          f"--config.data.data_dir={data_dir}", "--config.data.eval_split=train",
          "--config.train.batch_size=8", "--config.train.eval_batches=1"]
  cfg_args = ["--config", "cat-mel_2bar_small", *H.overrides("cat-mel_2bar_tiny"), *data]
  work = tmp_path / "work"
  code, out, err = run_cli("import", str(tar), *cfg_args, "--workdir", str(work),
                           "--optimizer_state")
  assert code == 0, err
  assert "optimizer state: imported" in out
  cfg = config.load("cat-mel_2bar_small", H.overrides("cat-mel_2bar_tiny") + data)
  import orbax.checkpoint as ocp
  import optax
  run = loop.Run(cfg)
  mngr = ocp.CheckpointManager(str(work / "checkpoints"),
                               item_handlers={"state": ocp.StandardCheckpointHandler()})
  state = mngr.restore(1000, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(run.abstract_state)))["state"]
  mngr.close()
  adam = next(s for s in state.opt_state if isinstance(s, optax.ScaleByAdamState))
  r = tfc.Reader(os.path.join(H.CHECKPOINTS, "cat-mel_2bar_tiny"))
  np.testing.assert_array_equal(adam.mu["encoder"]["mu"]["kernel"], r.read("encoder/mu/kernel/Adam"))
  np.testing.assert_array_equal(adam.nu["decoder"]["output_projection"]["bias"],
                                r.read("decoder/output_projection/bias/Adam_1"))
  # Adam's count comes from beta2_power = 0.999^(count+1); these fixtures were never stepped (0.999)
  assert float(r.read("beta2_power")) == np.float32(0.999)
  assert int(adam.count) == 0 and int(state.step) == 1000
  code, out, err = run_cli("eval", *cfg_args, "--workdir", str(work))
  assert code == 0, err
  assert json.loads(out)["step"] == 1000
  code, out, err = run_cli("train", *cfg_args, "--config.train.num_steps=1030",
                           "--config.train.eval_every_steps=1000", "--workdir", str(work))
  assert code == 0, err
  assert "resumed from step 1000" in out and "to step 1030" in out
  # the trained model in the real client: μ within 1e-4, identical greedy tokens
  tuned = generate.TrainedModel.load(str(work))
  assert tuned.step == 1030
  code, _, err = run_cli("export", str(tmp_path / "site" / "tuned"), "--format", "magenta-js",
                         "--workdir", str(work))
  assert code == 0, err
  labels = H.fixture_labels(tuned, "cat-mel_2bar_tiny")
  _, mu, _ = tuned.encode_labels(labels)
  ours = H.ours_for(tuned, labels, H.z_batch(tuned, mu, seed=3))
  js = H.run_judge(client, str(tmp_path / "site"), [{
      "name": "tuned", "inputs": ours["inputs"], "z": H.z_batch(tuned, mu, seed=3),
      "depths": tuned.conv.output_depths}], tmp_path)[0]
  a = H.agreement(ours, js)
  print("fine-tuned cat-mel_2bar in magenta.js:", a)
  assert H.agrees(a), a
  before, _ = loop.restore_params(cfg, str(work), 1000)
  assert not np.array_equal(np.asarray(before["encoder"]["mu"]["kernel"]),
                            np.asarray(tuned.params["encoder"]["mu"]["kernel"]))  # it trained
  # --reset_step: fine-tuning starts at step 0 with a fresh optimizer
  code, out, err = run_cli("import", str(tar), *cfg_args, "--workdir", str(tmp_path / "w0"),
                           "--reset_step")
  assert code == 0 and "written at step 0" in out, err
  assert generate.TrainedModel.load(str(tmp_path / "w0")).step == 0


def test_large_tables_round_trip(tmp_path):
  """Many variables: the index spans several 256 KiB blocks (separator keys, restarts); plus the
  dtypes Magenta uses (float32, int64 scalar) and an empty tensor."""
  rng = np.random.default_rng(0)
  tensors = {f"scope_{i % 7}/{rng.bytes(24).hex()}/var_{i:05d}/kernel":
             rng.standard_normal((i % 5, 3)).astype(np.float32) for i in range(12000)}
  tensors["global_step"] = np.asarray(123456789012, np.int64)
  files = tfc.write(str(tmp_path / "model.ckpt-7"), tensors)
  assert os.path.getsize(tmp_path / "model.ckpt-7.index") > 3 * 262144
  r = tfc.Reader(str(tmp_path))
  assert r.prefix.endswith("model.ckpt-7") and len(files) == 3
  back = r.read_all()
  assert back.keys() == tensors.keys()
  for k, v in tensors.items():
    assert back[k].dtype == v.dtype and back[k].shape == v.shape
    np.testing.assert_array_equal(back[k], v)


def test_tensorflow_reads_our_checkpoints(tmp_path):
  """Cross-check with TensorFlow itself when it is installed (optional; not a dependency)."""
  tf = pytest.importorskip("tensorflow")
  values = tfc.Reader(os.path.join(H.CHECKPOINTS, "hierdec-trio_16bar_tiny")).read_all()
  rng = np.random.default_rng(1)
  values |= {f"extra/{rng.bytes(24).hex()}/v{i:05d}": rng.standard_normal(i % 4).astype(np.float32)
             for i in range(12000)}  # an index of several blocks
  tfc.write(str(tmp_path / "model.ckpt-1000"), values)
  reader = tf.train.load_checkpoint(str(tmp_path))
  shapes = reader.get_variable_to_shape_map()
  assert set(shapes) == set(values)
  for k, v in values.items():
    np.testing.assert_array_equal(reader.get_tensor(k), v)
