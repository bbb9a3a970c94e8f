"""Our Flax model, given the weights of 5 tiny Magenta models, reproduces Magenta's outputs."""

from __future__ import annotations

import functools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from conftest import FIXTURES
from mvae_jax.music import converters
from mvae_jax.nn import vae
from mvae_jax.train import objective as obj
from mvae_jax.train import steps

MODELS = os.path.join(FIXTURES, "models")
with open(os.path.join(MODELS, "models_index.json")) as f:
  INDEX = {m["name"]: m for m in json.load(f)}
NAMES = sorted(INDEX)
VAR_PREFIXES = ("encoder/", "decoder/", "core_decoder/")


def build(name):
  m = INDEX[name]
  hp = m["hparams"]
  conv = converters.get_converter(m["converter"])
  model = vae.MusicVAE(
      input_depth=conv.input_depth, stream_depths=conv.output_depths, z_size=hp["z_size"],
      enc_rnn_size=hp["enc_rnn_size"], dec_rnn_size=hp["dec_rnn_size"],
      decoder_type="hierarchical" if name.startswith("hierdec") else "flat",
      core_per_stream="trio" in name)
  z = np.load(os.path.join(MODELS, f"{name}.npz"))
  names = [k for k in z.files if k.startswith(VAR_PREFIXES)]
  params = traverse_util.unflatten_dict({k: jnp.asarray(z[k]) for k in names}, sep="/")
  sc = steps.StepConfig(depths=conv.output_depths, free_bits=hp["free_bits"],
                        max_beta=hp["max_beta"], beta_rate=hp["beta_rate"])
  return conv, model, z, params, names, sc


def labels_of(conv, onehots):
  return jnp.asarray(np.stack([conv.as_labels(o) for o in onehots]))


@pytest.mark.parametrize("name", NAMES)
def test_parameter_names_and_shapes_equal_magenta(name):
  conv, model, z, params, names, _ = build(name)
  init = model.init(jax.random.key(0), jnp.asarray(z["inputs"], jnp.float32),
                    labels_of(conv, z["outputs"]), jnp.asarray(z["lengths"]), jax.random.key(1))
  from flax.linen import meta
  ours = traverse_util.flatten_dict(meta.unbox(init["params"]), sep="/")
  assert {k: v.shape for k, v in ours.items()} == {k: z[k].shape for k in names}
  assert {tuple(s) for _, s in INDEX[name]["all_checkpoint_variables"]} >= {
      v.shape for v in ours.values()}


@pytest.mark.parametrize("name", NAMES)
def test_encoder_and_teacher_forced_logits(name):
  conv, model, z, params, _, sc = build(name)
  x = jnp.asarray(z["inputs"], jnp.float32)
  lengths = jnp.asarray(z["lengths"])
  labels = labels_of(conv, z["outputs"])
  mu, sigma = model.apply({"params": params}, x, lengths, method="encode")
  np.testing.assert_allclose(mu, z["mu"], atol=1e-5)
  np.testing.assert_allclose(sigma, z["sigma"], atol=1e-5)
  logits = model.apply({"params": params}, mu, labels, method="teacher_logits")
  np.testing.assert_allclose(logits, z["logits"], atol=1e-5)
  r = obj.reconstruction_loss(logits, labels, lengths, conv.output_depths)
  np.testing.assert_allclose(r, z["r_loss"], rtol=1e-5)
  kl = obj.kl_divergence(mu, sigma)
  np.testing.assert_allclose(kl, z["kl_div"], atol=1e-5)
  np.testing.assert_allclose(obj.kl_cost(kl, sc.free_bits), z["kl_cost"], atol=1e-5)
  b = obj.beta(INDEX[name]["global_step"], sc.max_beta, sc.beta_rate)
  np.testing.assert_allclose(b, z["beta"], atol=1e-7)
  loss = jnp.mean(r) + b * jnp.mean(obj.kl_cost(kl, sc.free_bits))
  np.testing.assert_allclose(loss, z["loss"], rtol=1e-5)
  if "conductor_outputs" in z.files:
    c = model.apply({"params": params}, mu, method="conductor")
    np.testing.assert_allclose(jnp.swapaxes(c, 0, 1), z["conductor_outputs"], atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_sampled_z(name):
  conv, model, z, params, _, sc = build(name)
  x = jnp.asarray(z["inputs"], jnp.float32)
  lengths = jnp.asarray(z["lengths"])
  labels = labels_of(conv, z["outputs"])
  mu, sigma = model.apply({"params": params}, x, lengths, method="encode")
  zz = mu + sigma * jnp.asarray(z["sampled/eps"])
  np.testing.assert_allclose(zz, z["sampled/z"], atol=1e-5)
  logits = model.apply({"params": params}, zz, labels, method="teacher_logits")
  if "sampled/logits" in z.files:
    np.testing.assert_allclose(logits, z["sampled/logits"], atol=1e-5)
  r = obj.reconstruction_loss(logits, labels, lengths, conv.output_depths)
  np.testing.assert_allclose(r, z["sampled/r_loss"], rtol=1e-5)
  np.testing.assert_allclose(obj.kl_divergence(mu, sigma), z["sampled/kl_div"], atol=1e-5)


@pytest.mark.parametrize("name", [n for n in NAMES if not n.startswith("hierdec")])
def test_variable_lengths(name):
  conv, model, z, params, _, _ = build(name)
  x = jnp.asarray(z["varlen/inputs"], jnp.float32)
  lengths = jnp.asarray(z["varlen/lengths"])
  labels = labels_of(conv, z["varlen/outputs"])
  mu, sigma = model.apply({"params": params}, x, lengths, method="encode")
  np.testing.assert_allclose(mu, z["varlen/mu"], atol=1e-5)
  np.testing.assert_allclose(sigma, z["varlen/sigma"], atol=1e-5)
  logits = model.apply({"params": params}, mu, labels, method="teacher_logits")
  valid = np.arange(labels.shape[1])[None, :] < np.asarray(lengths)[:, None]
  np.testing.assert_allclose(np.asarray(logits)[valid], z["varlen/logits"][valid], atol=1e-5)
  r = obj.reconstruction_loss(logits, labels, lengths, conv.output_depths)
  np.testing.assert_allclose(r, z["varlen/r_loss"], rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_one_training_step(name):
  conv, model, z, params, names, sc = build(name)
  ts = np.load(os.path.join(MODELS, f"{name}_train_step.npz"))
  tx = steps.make_optimizer(sc)
  state = steps.TrainState.create(params, tx, step=INDEX[name]["global_step"])
  batch = {"labels": labels_of(conv, z["outputs"]), "lengths": jnp.asarray(z["lengths"]),
           "mask": jnp.ones(4)}
  inputs_fn = lambda l: conv.labels_to_inputs(l, jnp)  # noqa: E731
  # raw gradients
  def loss_of(p):
    fn = functools.partial(steps.train_step, model=model, sc=sc, inputs_fn=inputs_fn, tx=tx,
                           eps_scale=0.0)
    return fn(state.replace(params=p), batch, jax.random.key(0))[1]["loss"]
  grads = traverse_util.flatten_dict(jax.jit(jax.grad(loss_of))(params), sep="/")
  for k in names:
    g = ts[f"grad/{k}"]
    np.testing.assert_allclose(grads[k], g, atol=max(1e-4 * np.abs(g).max(), 1e-6), err_msg=k)
  new, metrics = jax.jit(functools.partial(
      steps.train_step, model=model, sc=sc, inputs_fn=inputs_fn, tx=tx, eps_scale=0.0))(
          state, batch, jax.random.key(0))
  np.testing.assert_allclose(metrics["grad_norm"], ts["global_norm"], rtol=1e-5)
  np.testing.assert_allclose(metrics["learning_rate"], ts["learning_rate"], rtol=1e-6)
  assert int(new.step) == int(ts["global_step_after"])
  flat = traverse_util.flatten_dict(new.params, sep="/")
  for k in names:  # observed ≤ 5e-6 (float32 gradients near Adam's epsilon)
    np.testing.assert_allclose(flat[k], ts[f"updated/{k}"], atol=1e-5, err_msg=k)
