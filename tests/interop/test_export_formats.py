"""`mvae export --format magenta-tf` (round trip bit-identical, Magenta's own bytes) and `bundle`."""

from __future__ import annotations

import contextlib
import filecmp
import io
import json
import os

import jax.numpy as jnp
import numpy as np

import interop_helpers as H
from mvae_jax import cli, generate
from mvae_jax.interop import bundle, tf_checkpoint as tfc

NAME = "cat-mel_2bar_tiny"


def run_cli(*argv):
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    code = cli.main(list(argv))
  return code, out.getvalue(), [l for l in err.getvalue().splitlines() if l.strip()]


def import_fixture(name, work, *flags):
  code, out, err = run_cli("import", os.path.join(H.CHECKPOINTS, name), "--config",
                           H.INDEX[name]["base_config"], *H.overrides(name), "--workdir", str(work),
                           *flags)
  assert code == 0, err
  return out


def test_magenta_tf_round_trip_is_bit_identical_and_byte_identical_to_magenta(tmp_path):
  for name in (NAME, "hierdec-trio_16bar_tiny"):
    import_fixture(name, tmp_path / name / "w1", "--optimizer_state")
    code, out, err = run_cli("export", str(tmp_path / name / "tf"), "--format", "magenta-tf",
                             "--workdir", str(tmp_path / name / "w1"), "--optimizer_state")
    assert code == 0, err
    assert "with Adam's slots" in out
    # Everything Magenta wrote (variables, Adam's slots, beta powers, global_step) comes back
    # exactly, and our writer lays it out as TensorFlow does: the files are Magenta's, byte for byte.
    for suffix in (".index", ".data-00000-of-00001"):
      assert filecmp.cmp(os.path.join(H.CHECKPOINTS, name, "model.ckpt-1000" + suffix),
                         str(tmp_path / name / "tf" / ("model.ckpt-1000" + suffix)),
                         shallow=False), (name, suffix)
    # import -> export -> import: bit-identical parameters
    code, _, err = run_cli("import", str(tmp_path / name / "tf"), "--config",
                           H.INDEX[name]["base_config"], *H.overrides(name),
                           "--workdir", str(tmp_path / name / "w3"))
    assert code == 0, err
    b = generate.TrainedModel.load(str(tmp_path / name / "w3"))
    from flax import traverse_util
    fb = traverse_util.flatten_dict(b.params, sep="/")
    original = tfc.Reader(os.path.join(H.CHECKPOINTS, name))
    assert set(fb) == {k for k, _ in H.INDEX[name]["trainable_variables"]}
    for k in fb:
      np.testing.assert_array_equal(np.asarray(fb[k]), original.read(k), err_msg=k)
    assert b.step == 1000
  # without --optimizer_state: the model variables and global_step (what Magenta's inference
  # TrainedModel restores)
  code, _, err = run_cli("export", str(tmp_path / "plain"), "--format", "magenta-tf", "--workdir",
                         str(tmp_path / NAME / "w3"))
  assert code == 0, err
  r = tfc.Reader(str(tmp_path / "plain"))
  assert set(r.entries) == {k for k, _ in H.INDEX[NAME]["trainable_variables"]} | {"global_step"}


def trained_like_workdir(path):
  """The fixture model with non-zero Adam moments, as after training (Orbax compresses the
  all-zero moments of a fresh optimizer to almost nothing)."""
  from flax import traverse_util
  from mvae_jax.interop import magenta_import, workdir
  cfg = H.config(NAME)
  r = tfc.Reader(os.path.join(H.CHECKPOINTS, NAME))
  flat = r.read_all([k for k, _ in H.INDEX[NAME]["trainable_variables"]])
  rng = np.random.default_rng(0)
  mu = {k: rng.standard_normal(v.shape).astype(np.float32) * 1e-3 for k, v in flat.items()}
  nu = {k: np.abs(rng.standard_normal(v.shape)).astype(np.float32) * 1e-6 for k, v in flat.items()}
  params = traverse_util.unflatten_dict(flat, sep="/")
  opt = magenta_import._opt_state_from_adam(cfg, params, (1000, mu, nu))
  workdir.write_workdir(str(path), cfg, params, 1000, opt)


def test_bundle_is_params_only_and_reproduces_the_model(tmp_path):
  trained_like_workdir(tmp_path / "w")
  code, out, err = run_cli("export", str(tmp_path / "b"), "--format", "bundle", "--workdir",
                           str(tmp_path / "w"))
  assert code == 0, err
  assert "the training checkpoint is" in out
  size = lambda p: sum(os.path.getsize(os.path.join(d, f))  # noqa: E731
                       for d, _, fs in os.walk(p) for f in fs)
  ckpt = size(tmp_path / "w" / "checkpoints")
  print(f"bundle {size(tmp_path / 'b')} bytes, training checkpoint {ckpt} bytes")
  assert size(tmp_path / "b") < 0.5 * ckpt, (size(tmp_path / "b"), ckpt)
  assert sorted(os.listdir(tmp_path / "b")) == ["bundle.json", "config.json", "params.npz"]
  manifest = json.loads((tmp_path / "b" / "bundle.json").read_text())
  assert manifest["format"] == "mvae-bundle" and manifest["version"] == 1
  assert manifest["step"] == 1000 and manifest["converter"] == "mel_2bar"
  m = generate.TrainedModel.load(str(tmp_path / "b"))
  ref = H.reference(NAME)
  labels = np.stack([m.conv.as_labels(o) for o in ref["outputs"]]).astype(np.int32)
  _, mu, sigma = m.encode_labels(labels)
  np.testing.assert_allclose(mu, ref["mu"], atol=1e-5)
  from flax import traverse_util
  original = tfc.Reader(os.path.join(H.CHECKPOINTS, NAME))
  for k, v in traverse_util.flatten_dict(m.params, sep="/").items():
    np.testing.assert_array_equal(np.asarray(v), original.read(k), err_msg=k)
  logits = m.model.apply({"params": m.params}, jnp.asarray(mu), jnp.asarray(labels),
                         method="teacher_logits")
  np.testing.assert_allclose(logits, ref["logits"], atol=1e-5)
  # a bundle is a source for the other formats
  code, _, err = run_cli("export", str(tmp_path / "js"), "--format", "magenta-js", "--workdir",
                         str(tmp_path / "b"))
  assert code == 0, err
  # a damaged bundle is one line, and nothing is written
  p = tmp_path / "b" / "params.npz"
  p.write_bytes(p.read_bytes()[:-100])
  code, _, err = run_cli("export", str(tmp_path / "js2"), "--format", "magenta-tf", "--workdir",
                         str(tmp_path / "b"))
  assert code == 2 and len(err) == 1 and "corrupted or truncated" in err[0], err
  assert not (tmp_path / "js2").exists()
