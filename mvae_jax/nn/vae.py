"""MusicVAE: encoder -> (μ, σ) -> z -> flat or hierarchical decoder.

Only this module reads the model configuration (`from_config`); the leaves take explicit fields.
Parameter paths equal Magenta's TF variable names joined with '/', e.g. flat:
`decoder/multi_rnn_cell/cell_0/lstm_cell/kernel`; hierarchical: `decoder/hierarchical_level_0/...`
and `core_decoder/decoder/...` (trio: `core_decoder/core_decoder_k/decoder/...`).

Shapes: B batch, T steps, S streams, D_in encoder input depth, ΣD output depth, U bars,
L steps per bar (T = U·L).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mvae_jax.nn import decoders as dec
from mvae_jax.nn.encoders import BidirectionalEncoder, HierarchicalEncoder


class _CoreScope(nn.Module):
  """TF scope `core_decoder_k` around one core `decoder`."""

  stream_depths: Sequence[int]
  cond_dim: int
  sizes: Sequence[int]
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self):
    return dec.CoreDecoder(self.stream_depths, self.cond_dim, self.sizes, self.param_dtype,
                           name="decoder")()


class _CoreDecoders(nn.Module):
  """TF scope `core_decoder`: one core (`decoder`) or one per stream (`core_decoder_k`)."""

  stream_depths: Sequence[int]
  cond_dim: int
  sizes: Sequence[int]
  per_stream: bool
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self) -> list[dec.CoreWeights]:
    if not self.per_stream:
      return [dec.CoreDecoder(self.stream_depths, self.cond_dim, self.sizes, self.param_dtype,
                              name="decoder")()]
    return [_CoreScope((d,), self.cond_dim, self.sizes, self.param_dtype,
                       name=f"core_decoder_{k}")() for k, d in enumerate(self.stream_depths)]


class _HierarchicalScope(nn.Module):
  """TF scope `decoder` of a hierarchical decoder: the conductor `hierarchical_level_0`."""

  z_size: int
  sizes: Sequence[int]
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self):
    return dec.Conductor(self.z_size, self.sizes, self.param_dtype, name="hierarchical_level_0")()


class MusicVAE(nn.Module):
  """The model. Methods: `encode`, `__call__` (the forward pass), and the decoding modes
  `teacher_logits`, `scheduled_logits`, `sample`, each written once over `segments`.

  encoder: 'bidirectional' | 'hierarchical'; decoder: 'flat' | 'hierarchical';
  stream_depths: output depth per stream ((90,), (512,), (90, 90, 512));
  level_lengths: (U bars, L steps per bar) for hierarchical parts;
  core_per_stream: hierarchical trio (one core decoder per instrument).
  """

  input_depth: int
  stream_depths: Sequence[int]
  z_size: int
  enc_rnn_size: Sequence[int]
  dec_rnn_size: Sequence[int]
  encoder_type: str = "bidirectional"
  decoder_type: str = "flat"
  level_lengths: Sequence[int] = (16, 16)
  core_per_stream: bool = False
  param_dtype: jnp.dtype = jnp.float32

  def setup(self):
    if self.encoder_type == "bidirectional":
      self.encoder = BidirectionalEncoder(self.input_depth, tuple(self.enc_rnn_size), self.z_size,
                                          self.param_dtype)
    elif self.encoder_type == "hierarchical":
      self.encoder = HierarchicalEncoder(self.input_depth, tuple(self.enc_rnn_size), self.z_size,
                                         tuple(self.level_lengths), self.param_dtype)
    else:
      raise ValueError(f"model.encoder_type {self.encoder_type!r}: use bidirectional|hierarchical")
    if self.decoder_type == "flat":
      self.decoder = dec.CoreDecoder(tuple(self.stream_depths), self.z_size,
                                     tuple(self.dec_rnn_size), self.param_dtype)
    elif self.decoder_type == "hierarchical":
      self.decoder = _HierarchicalScope(self.z_size, tuple(self.dec_rnn_size), self.param_dtype)
      self.core_decoder = _CoreDecoders(tuple(self.stream_depths), self.dec_rnn_size[-1],
                                        tuple(self.dec_rnn_size), self.core_per_stream,
                                        self.param_dtype)
    else:
      raise ValueError(f"model.decoder_type {self.decoder_type!r}: use flat|hierarchical")

  # --- pieces ---------------------------------------------------------------------------------

  def _cores(self):
    """[(CoreWeights, stream indices, depths)]: one core, or one per stream (trio)."""
    cores = [self.decoder()] if self.decoder_type == "flat" else self.core_decoder()
    if len(cores) > 1:
      return [(w, [k], (d,)) for k, (w, d) in enumerate(zip(cores, self.stream_depths))]
    return [(cores[0], list(range(len(self.stream_depths))), tuple(self.stream_depths))]

  def conductor(self, z: jax.Array) -> jax.Array:
    """Bar embeddings c_u `[B, U, H]` (hierarchical decoders)."""
    cells, k, b = self.decoder()
    return dec.conduct(cells, k, b, z, self.level_lengths[0])

  def segments(self, z: jax.Array, steps: int | None = None) -> jax.Array:
    """The conditioning of each decoded segment `[B, U, C]`, U segments of `steps // U` steps.

    Hierarchical: U bars, each conditioned on its conductor embedding c_u. Flat: the
    one-segment case, all steps in one "bar" conditioned on z itself. Every decoding mode
    runs over segments, so each exists once for both.
    """
    if self.decoder_type == "flat":
      if steps is None:
        raise ValueError("a flat decoder needs the number of steps to decode (`length`)")
      return z[:, None]
    u, l = self.level_lengths
    if steps not in (None, u * l):
      raise ValueError(f"this hierarchical decoder makes {u * l} steps, not {steps}")
    return self.conductor(z)

  # --- API ------------------------------------------------------------------------------------

  def encode(self, x: jax.Array, lengths: jax.Array) -> tuple[jax.Array, jax.Array]:
    """x `[B, T, D_in]`, lengths `[B]` -> μ, σ `[B, z]`."""
    return self.encoder(x, lengths)

  def teacher_logits(self, z: jax.Array, labels: jax.Array) -> jax.Array:
    """Teacher-forced logits `[B, T, ΣD]` for targets `labels` `[B, T, S]`."""
    return self.bars_teacher_logits(self.segments(z, labels.shape[1]), labels)

  def bars_teacher_logits(self, c: jax.Array, labels: jax.Array) -> jax.Array:
    """Teacher-forced logits `[B, U*L, ΣD]` from segment conditioning c `[B, U, C]`.

    All segments run in parallel as B*U sequences; segment u starts from tanh(Dense(c_u)) and
    its first input is segment u-1's last target, so segment u depends on c_u and the targets
    only.
    """
    b, u = c.shape[:2]
    cond = c.reshape(b * u, -1)
    prev = dec.split_bars(dec.shift_right(labels), u)  # bar u starts with bar u-1's last token
    outs = [dec.teacher_forced(w, cond, prev[..., idx], depths) for w, idx, depths in self._cores()]
    return dec.join_bars(jnp.concatenate(outs, axis=-1), b)

  def scheduled_logits(self, z: jax.Array, labels: jax.Array, key: jax.Array,
                       sampling_prob: jax.Array) -> jax.Array:
    """Logits `[B, T, ΣD]` under scheduled sampling (own samples at temperature 1 with
    probability `sampling_prob`, per example and step; segment starts stay teacher-forced)."""
    c = self.segments(z, labels.shape[1])
    b, u = c.shape[:2]
    cond = c.reshape(b * u, -1)
    firsts = dec.split_bars(dec.shift_right(labels), u)[:, 0]
    teacher = dec.split_bars(labels, u)
    cores = self._cores()
    outs = []
    for k, (w, idx, depths) in zip(_keys(key, len(cores)), cores):
      _, lg = dec.autoregressive(w, cond, firsts[:, idx], teacher.shape[1], depths, k, 1.0,
                                 teacher=teacher[..., idx], sampling_prob=sampling_prob)
      outs.append(lg)
    return dec.join_bars(jnp.concatenate(outs, axis=-1), b)

  def sample(self, z: jax.Array, key: jax.Array, temperature: float | jax.Array = 1.0,
             length: int | None = None) -> tuple[jax.Array, jax.Array]:
    """Free-running decoding from z `[B, z]` -> (labels `[B, T, S]`, logits `[B, T, ΣD]`).

    temperature 0 = argmax. A pure function of `key`. Segment by segment (a scan over the U
    bars of a hierarchical decoder; one segment of `length` steps for a flat one): the last
    token of each segment starts the next.
    """
    cond = jnp.swapaxes(self.segments(z, length), 0, 1)  # [U, B, C]
    u, b, s = cond.shape[0], z.shape[0], len(self.stream_depths)
    l = (length or u * self.level_lengths[1]) // u
    cores = self._cores()

    def segment(first, inp):
      c, key_u = inp
      toks, logits = [], []
      for k, (w, idx, depths) in zip(_keys(key_u, len(cores)), cores):
        t, lg = dec.autoregressive(w, c, first[:, idx], l, depths, k, temperature)
        toks.append(t)
        logits.append(lg)
      toks = jnp.concatenate(toks, axis=-1)
      return toks[:, -1], (toks, jnp.concatenate(logits, axis=-1))

    first = jnp.full((b, s), dec.NO_TOKEN, jnp.int32)
    _, (toks, logits) = jax.lax.scan(segment, first, (cond, _keys(key, u)))
    # [U, B, L, ...] -> [B, U*L, ...]
    toks = jnp.swapaxes(toks, 0, 1).reshape(b, u * l, s)
    logits = jnp.swapaxes(logits, 0, 1).reshape(b, u * l, -1)
    return toks, logits

  def __call__(self, x: jax.Array, labels: jax.Array, lengths: jax.Array, key: jax.Array,
               sampling_prob: jax.Array | float = 0.0, scheduled: bool = False,
               eps_scale: float = 1.0):
    """The forward pass (training, evaluation, tests) -> dict(mu, sigma, z `[B, z]`, logits
    `[B, T, ΣD]`).

    z = μ + eps_scale·σ·ε with ε ~ N(0, I) from `key` (eps_scale 0: z = μ, as evaluation and
    the comparison with Magenta's fixtures use); `scheduled` (static) selects scheduled
    sampling at `sampling_prob`, else teacher forcing.
    """
    mu, sigma = self.encode(x, lengths)
    k_eps, k_dec = jax.random.split(key)
    z = mu + eps_scale * sigma * jax.random.normal(k_eps, mu.shape, mu.dtype)
    if scheduled:
      logits = self.scheduled_logits(z, labels, k_dec, sampling_prob)
    else:
      logits = self.teacher_logits(z, labels)
    return {"mu": mu, "sigma": sigma, "z": z, "logits": logits}


def _keys(key: jax.Array, n: int) -> jax.Array:
  """Keys `[n]` for n consumers (segments, cores): `key` itself when there is one."""
  return key[None] if n == 1 else jax.random.split(key, n)


def from_config(model_cfg, input_depth: int, stream_depths: Sequence[int],
                param_dtype=jnp.float32) -> MusicVAE:
  """The model a config's `model` section describes, for a converter's depths."""
  return MusicVAE(
      input_depth=input_depth, stream_depths=tuple(stream_depths), z_size=model_cfg.z_size,
      enc_rnn_size=tuple(model_cfg.enc_rnn_size), dec_rnn_size=tuple(model_cfg.dec_rnn_size),
      encoder_type=model_cfg.encoder, decoder_type=model_cfg.decoder,
      level_lengths=tuple(model_cfg.level_lengths), core_per_stream=model_cfg.core_per_stream,
      param_dtype=param_dtype)
