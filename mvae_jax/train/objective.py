"""MusicVAE's objective and schedules, as Magenta computes them (SPEC §4).

r_loss per example = Σ over valid steps (and streams) of the categorical NLL (a sum, not a mean);
KL per example = Σ_d ½(μ² + σ² − 1 − ln σ²) nats; free bits on the per-example total:
kl_cost = max(KL − free_bits·ln 2, 0); loss = mean(r_loss) + β·mean(kl_cost).
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp


def step_mask(lengths: jax.Array, steps: int) -> jax.Array:
  """`[B, T]` float: 1 for steps < length."""
  return (jnp.arange(steps)[None, :] < lengths[:, None]).astype(jnp.float32)


def stream_nll(logits: jax.Array, labels: jax.Array, depths: Sequence[int]) -> jax.Array:
  """Negative log-likelihood per step summed over streams: `[B, T, ΣD]`, `[B, T, S]` -> `[B, T]`."""
  nll, offset = 0.0, 0
  for s, d in enumerate(depths):
    logp = jax.nn.log_softmax(logits[..., offset:offset + d].astype(jnp.float32), axis=-1)
    nll = nll - jnp.take_along_axis(logp, labels[..., s:s + 1], axis=-1)[..., 0]
    offset += d
  return nll


def stream_argmax(logits: jax.Array, depths: Sequence[int]) -> jax.Array:
  """`[B, T, ΣD]` -> most likely label per stream `[B, T, S]`."""
  out, offset = [], 0
  for d in depths:
    out.append(jnp.argmax(logits[..., offset:offset + d], axis=-1))
    offset += d
  return jnp.stack(out, axis=-1).astype(jnp.int32)


def reconstruction_loss(logits, labels, lengths, depths) -> jax.Array:
  """r_loss `[B]`: NLL summed over valid steps and streams."""
  return jnp.sum(stream_nll(logits, labels, depths) * step_mask(lengths, labels.shape[1]), axis=1)


def accuracy(predicted: jax.Array, labels: jax.Array, lengths: jax.Array,
             weights: jax.Array | None = None) -> jax.Array:
  """Share of valid steps (all streams right) where `predicted` `[B, T, S]` equals `labels`."""
  mask = step_mask(lengths, labels.shape[1])
  if weights is not None:
    mask = mask * weights[:, None]
  hit = jnp.all(predicted == labels, axis=-1).astype(jnp.float32)
  return jnp.sum(hit * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def kl_divergence(mu: jax.Array, sigma: jax.Array) -> jax.Array:
  """KL(N(μ, σ²) ‖ N(0, I)) in nats per example `[B]`."""
  return 0.5 * jnp.sum(mu**2 + sigma**2 - 1.0 - 2.0 * jnp.log(sigma), axis=-1)


def kl_cost(kl: jax.Array, free_bits: float) -> jax.Array:
  return jnp.maximum(kl - free_bits * math.log(2.0), 0.0)


def beta(step, max_beta: float, beta_rate: float) -> jax.Array:
  """β = max_beta·(1 − beta_rate^step); beta_rate 0 gives a constant β."""
  return (1.0 - jnp.power(jnp.float32(beta_rate), jnp.asarray(step, jnp.float32))) * max_beta


def learning_rate(step, lr: float = 1e-3, decay_rate: float = 0.9999,
                  min_lr: float = 1e-5) -> jax.Array:
  """(lr − min_lr)·decay_rate^step + min_lr."""
  return (lr - min_lr) * jnp.power(jnp.float32(decay_rate),
                                   jnp.asarray(step, jnp.float32)) + min_lr


def sampling_probability(step, schedule: str, rate: float) -> jax.Array:
  """Probability of feeding the model's own sample: constant, inverse_sigmoid (k = rate:
  1 − k/(k + e^{step/k})) or exponential (1 − rate^step)."""
  step = jnp.asarray(step, jnp.float32)
  if schedule == "constant":
    return jnp.float32(rate)
  if schedule == "inverse_sigmoid":
    k = jnp.float32(rate)
    return 1.0 - k / (k + jnp.exp(jnp.minimum(step / k, 80.0)))
  if schedule == "exponential":
    return 1.0 - jnp.power(jnp.float32(rate), step)
  raise ValueError(f"sampling schedule {schedule!r}: use constant|inverse_sigmoid|exponential")


def vae_loss(out: dict, labels, lengths, depths, step, *, free_bits: float, max_beta: float,
             beta_rate: float, weights: jax.Array | None = None) -> tuple[jax.Array, dict]:
  """loss = mean(r_loss) + β·mean(kl_cost), and the per-example terms.

  weights `[B]` (optional, eval padding) turn the means into weighted means.
  """
  r = reconstruction_loss(out["logits"], labels, lengths, depths)
  kl = kl_divergence(out["mu"], out["sigma"])
  kc = kl_cost(kl, free_bits)
  b = beta(step, max_beta, beta_rate)
  w = jnp.ones_like(r) if weights is None else weights
  n = jnp.maximum(jnp.sum(w), 1.0)
  mean = lambda x: jnp.sum(x * w) / n  # noqa: E731
  loss = mean(r) + b * mean(kc)
  return loss, {"r_loss": mean(r), "kl_loss": mean(kc), "kl_bits": mean(kl) / math.log(2.0),
                "beta": b, "loss": loss, "per_example_r_loss": r, "per_example_kl": kl}
