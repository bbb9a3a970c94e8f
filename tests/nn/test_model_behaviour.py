"""What users rely on: hierarchy resets, deterministic sampling, consistent modes, scans, sizes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mvae_jax import config
from mvae_jax import model as build
from mvae_jax.experiments import common
from mvae_jax.music import converters
from mvae_jax.nn import vae


def small(decoder="flat", name="mel_16bar", core_per_stream=False, encoder="bidirectional"):
  conv = converters.get_converter(name)
  model = vae.MusicVAE(input_depth=conv.input_depth, stream_depths=conv.output_depths, z_size=8,
                       enc_rnn_size=(16,), dec_rnn_size=(12, 12), encoder_type=encoder,
                       decoder_type=decoder, core_per_stream=core_per_stream)
  params = build.init_params(model, conv, jax.random.key(0))
  # larger weights than the N(0, 0.001) dense init, so that outputs depend visibly on inputs
  params = jax.tree.map(lambda p: p + 0.3 * jax.random.normal(jax.random.key(1), p.shape),
                        params)
  rng = np.random.default_rng(0)
  labels = jnp.asarray(np.stack([rng.integers(0, d, (3, conv.window_steps))
                                 for d in conv.output_depths], -1), jnp.int32)
  return conv, model, params, labels


def test_hierarchical_bar_depends_only_on_its_embedding():
  conv, model, params, labels = small("hierarchical")
  z = jax.random.normal(jax.random.key(2), (3, 8))
  c = model.apply({"params": params}, z, method="conductor")
  base = model.apply({"params": params}, c, labels, method="bars_teacher_logits")
  c2 = c.at[:, 5].add(1.0)
  moved = model.apply({"params": params}, c2, labels, method="bars_teacher_logits")
  diff = np.abs(np.asarray(moved - base)).reshape(3, 16, 16, -1).max(axis=(0, 2, 3))
  assert diff[5] > 1e-3
  assert np.all(np.delete(diff, 5) == 0.0), diff


def test_hierarchical_bar_sees_only_previous_bars_last_token():
  conv, model, params, labels = small("hierarchical")
  z = jax.random.normal(jax.random.key(2), (3, 8))
  base = model.apply({"params": params}, z, labels, method="teacher_logits")
  # change every target of bars 0..3 except bar 3's last: bars 5.. must not move, nor bar 4
  changed = labels.at[:, :63].set((labels[:, :63] + 7) % 90)
  moved = model.apply({"params": params}, z, changed, method="teacher_logits")
  diff = np.abs(np.asarray(moved - base)).reshape(3, 16, 16, -1).max(axis=(0, 2, 3))
  assert np.all(diff[4:] == 0.0) and diff[:4].max() > 0


@pytest.mark.parametrize("decoder,name,per_stream", [("flat", "mel_2bar", False),
                                                     ("hierarchical", "mel_16bar", False),
                                                     ("hierarchical", "trio_16bar", True),
                                                     ("flat", "trio_16bar", False)])
def test_sampling_is_a_pure_function_of_the_key(decoder, name, per_stream):
  conv, model, params, _ = small(decoder, name, per_stream)
  z = jax.random.normal(jax.random.key(3), (4, 8))
  sample = jax.jit(lambda k, t: model.apply({"params": params}, z, k, t, conv.window_steps,
                                            method="sample"))
  a, _ = sample(jax.random.key(7), 1.0)
  b, _ = sample(jax.random.key(7), 1.0)
  c, _ = sample(jax.random.key(8), 1.0)
  assert a.shape == (4, conv.window_steps, conv.num_streams)
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)
  for s, d in enumerate(conv.output_depths):
    assert 0 <= int(a[..., s].min()) and int(a[..., s].max()) < d
  # temperature 0 is argmax: the same for every key
  g1, lg = sample(jax.random.key(1), 0.0)
  g2, _ = sample(jax.random.key(2), 0.0)
  np.testing.assert_array_equal(g1, g2)


@pytest.mark.parametrize("decoder,name,per_stream", [("flat", "mel_2bar", False),
                                                     ("hierarchical", "trio_16bar", True)])
def test_modes_agree(decoder, name, per_stream):
  """Scheduled sampling with p = 0 is teacher forcing; greedy sampling re-fed as targets
  reproduces its own logits."""
  conv, model, params, labels = small(decoder, name, per_stream)
  z = jax.random.normal(jax.random.key(4), (3, 8))
  tf = model.apply({"params": params}, z, labels, method="teacher_logits")
  ss = model.apply({"params": params}, z, labels, jax.random.key(0), 0.0,
                   method="scheduled_logits")
  np.testing.assert_allclose(ss, tf, atol=1e-5)
  toks, lg = model.apply({"params": params}, z, jax.random.key(5), 0.0, conv.window_steps,
                         method="sample")
  again = model.apply({"params": params}, z, toks, method="teacher_logits")
  np.testing.assert_allclose(again, lg, atol=1e-5)
  ss1 = model.apply({"params": params}, z, labels, jax.random.key(0), 1.0,
                    method="scheduled_logits")
  assert not np.allclose(ss1, tf, atol=1e-3)


@pytest.mark.parametrize("decoder,name,per_stream", [("flat", "mel_2bar", False),
                                                     ("hierarchical", "trio_16bar", True)])
def test_scheduled_sampling_gradients_at_p0_are_teacher_forcings(decoder, name, per_stream):
  """The step-by-step decoder's backward (recomputing its gate math from the saved matmuls)
  gives teacher forcing's gradients when it feeds the teacher's tokens, and others when not."""
  conv, model, params, labels = small(decoder, name, per_stream)
  z = jax.random.normal(jax.random.key(4), (3, 8))
  weights = jax.random.normal(jax.random.key(6), (3, conv.window_steps, sum(conv.output_depths)))

  def loss(p, method, *args):
    return (model.apply({"params": p}, z, labels, *args, method=method) * weights).sum()

  g_tf = jax.tree.leaves(jax.grad(loss)(params, "teacher_logits"))
  for prob in (0.0, 0.5):
    g_ss = jax.tree.leaves(jax.grad(loss)(params, "scheduled_logits", jax.random.key(0), prob))
    same = all(np.allclose(b, a, atol=2e-5, rtol=1e-4) for a, b in zip(g_tf, g_ss))
    assert same == (prob == 0.0), prob
  assert max(float(np.abs(a).max()) for a in g_tf) > 1e-2


def test_recurrences_are_scans_not_unrolled_loops():
  """The traced program does not grow with the number of steps (no Python loop over time)."""
  sizes = []
  for name in ("mel_2bar", "mel_16bar"):
    conv, model, params, labels = small("flat", name)
    z = jnp.zeros((3, 8))
    x = conv.labels_to_inputs(labels, jnp)
    fwd = lambda p, x=x, labels=labels, conv=conv: model.apply(  # noqa: E731
        {"params": p}, x, labels, jnp.full((3,), conv.window_steps), jax.random.key(0),
        0.5, True)
    jaxpr = jax.make_jaxpr(fwd)(params)
    text = str(jaxpr)
    assert "scan" in text
    sizes.append(len(text.splitlines()))
    smp = jax.make_jaxpr(lambda p: model.apply({"params": p}, z, jax.random.key(0), 1.0,
                                               conv.window_steps, method="sample"))(params)
    sizes.append(len(str(smp).splitlines()))
  # 8x more steps; an unrolled loop would make the program ~8x longer
  assert sizes[2] < 1.1 * sizes[0] and sizes[3] < 1.1 * sizes[1], sizes


def magenta_param_count(cfg, conv) -> int:
  """Magenta's trainable variables for a configuration, counted from its variable layout."""
  lstm = lambda i, h: (i + h) * 4 * h + 4 * h  # noqa: E731
  dense = lambda i, o: i * o + o  # noqa: E731
  m = cfg.model
  depth = sum(conv.output_depths)
  n, d = 0, conv.input_depth
  enc_levels = 2 if m.encoder == "hierarchical" else 1
  for level in range(enc_levels):
    for h in m.enc_rnn_size:
      n += 2 * lstm(d, h)
      d = 2 * h
  n += 2 * dense(2 * m.enc_rnn_size[-1], m.z_size)
  dec = list(m.dec_rnn_size)
  if m.decoder == "flat":
    i = depth + m.z_size
    for h in dec:
      n += lstm(i, h)
      i = h
    return n + dense(dec[-1], depth) + dense(m.z_size, 2 * sum(dec))
  i = 1
  for h in dec:  # conductor
    n += lstm(i, h)
    i = h
  n += dense(m.z_size, 2 * sum(dec))
  for depth_k in (conv.output_depths if m.core_per_stream else [depth]):
    i = depth_k + dec[-1]
    for h in dec:
      n += lstm(i, h)
      i = h
    n += dense(dec[-1], depth_k) + dense(dec[-1], 2 * sum(dec))
  return n


@pytest.mark.parametrize("name", [n for n in common.names() if not n.endswith("_tiny")])
def test_full_size_parameter_counts_equal_magentas(name):
  cfg = config.load(name)
  conv = build.converter_of(cfg)
  model = build.model_of(cfg, conv)
  ours = build.count_params(build.abstract_params(model, conv))
  assert ours == magenta_param_count(cfg, conv)
