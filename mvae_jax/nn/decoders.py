"""Decoders: one core (an LSTM stack over [previous token ‖ conditioning]) and the ways it is run.

The core decoder is Magenta's `CategoricalLstmDecoder` / `MultiOutCategoricalLstmDecoder`: its
state starts at tanh(Dense(cond)) (`z_to_initial_state`), its input at step t is the previous
target (or sample) as one-hot streams, zeros at t = 0, concatenated with `cond`, and
`output_projection` gives logits over the concatenated streams. Inputs are one-hot, so layer 0's
input projection is a row gather plus the (constant) conditioning term.

* flat: the core runs over the whole sequence with cond = z;
* hierarchical: a conductor LSTM (`hierarchical_level_0`, state tanh(Dense(z)), zero input) emits
  one embedding c_u per bar; the core runs each bar from state tanh(Dense(c_u)) with cond = c_u,
  its first input being the previous bar's last token (teacher-forced in training; bars then run
  in parallel as a batch of B*U sequences). A trio has one core per instrument, all fed c_u.

Three modes, all under `lax.scan`: teacher forcing, scheduled sampling (per example, per step,
feed the model's own sample with probability p), and free sampling at a temperature
(0 = argmax). Sampling is a pure function of its PRNG key.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mvae_jax.nn import lstm
from mvae_jax.nn.encoders import DENSE_INIT

NO_TOKEN = -1  # label meaning "nothing": the zero input at t = 0


class CoreWeights(NamedTuple):
  """A core decoder's arrays and its stream layout (static)."""

  cells: list
  out_kernel: jax.Array
  out_bias: jax.Array
  init_kernel: jax.Array
  init_bias: jax.Array

  @property
  def sizes(self) -> list[int]:
    return [w.units for w in self.cells]


class DenseVars(nn.Module):
  """A dense layer's `kernel` `[in, out]` (N(0, 0.001), as Magenta) and `bias`, as arrays."""

  in_dim: int
  features: int
  axes: tuple = ("embed", "mlp")
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self):
    k = self.param("kernel", nn.with_logical_partitioning(DENSE_INIT, self.axes),
                   (self.in_dim, self.features), self.param_dtype)
    b = self.param("bias", nn.with_logical_partitioning(nn.initializers.zeros, self.axes[1:]),
                   (self.features,), self.param_dtype)
    return k, b


class CoreDecoder(nn.Module):
  """TF scope `decoder`: `multi_rnn_cell`, `output_projection`, `z_to_initial_state`."""

  stream_depths: Sequence[int]
  cond_dim: int
  sizes: Sequence[int]
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self) -> CoreWeights:
    depth = sum(self.stream_depths)
    cells = lstm.LSTMStack(depth + self.cond_dim, self.sizes, self.param_dtype,
                           name="multi_rnn_cell")()
    out_k, out_b = DenseVars(self.sizes[-1], depth, ("hidden", "vocab"), self.param_dtype,
                             name="output_projection")()
    init_k, init_b = DenseVars(self.cond_dim, 2 * sum(self.sizes), ("embed", "mlp"),
                               self.param_dtype, name="z_to_initial_state")()
    return CoreWeights(cells, out_k, out_b, init_k, init_b)


class Conductor(nn.Module):
  """TF scope `hierarchical_level_0`: cells `cell_k` (input: zeros [B, 1]) and `initial_state`."""

  z_size: int
  sizes: Sequence[int]
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self):
    cells, d = [], 1
    for k, units in enumerate(self.sizes):
      cells.append(lstm.LSTMCell(d, units, self.param_dtype, name=f"cell_{k}")())
      d = units
    init_k, init_b = DenseVars(self.z_size, 2 * sum(self.sizes), ("embed", "mlp"),
                               self.param_dtype, name="initial_state")()
    return cells, init_k, init_b


# --- pure functions over CoreWeights ---------------------------------------------------------------


def initial_state(w: CoreWeights, cond: jax.Array) -> list[lstm.State]:
  """tanh(Dense(cond)) split into [c_0, h_0, c_1, h_1, ...]. cond `[N, C]`."""
  flat = jnp.tanh(cond.astype(w.init_kernel.dtype) @ w.init_kernel + w.init_bias)
  return lstm.initial_states(flat, w.sizes)


def cond_projection(w: CoreWeights, cond: jax.Array, depths: Sequence[int]) -> jax.Array:
  """The constant part of layer 0's input projection: cond @ W_cond + b `[N, 4H]`."""
  d = sum(depths)
  w0 = w.cells[0]
  return cond.astype(w0.kernel.dtype) @ w0.kernel[d:d + cond.shape[-1]] + w0.bias


def token_projection(w: CoreWeights, labels: jax.Array, depths: Sequence[int]) -> jax.Array:
  """Σ over streams of the kernel rows of each one-hot label; NO_TOKEN adds nothing.

  labels `[..., S]` int -> `[..., 4H]`.
  """
  w0, out, offset = w.cells[0], 0.0, 0
  for s, d in enumerate(depths):
    lab = labels[..., s]
    rows = jnp.take(w0.kernel, offset + jnp.clip(lab, 0, d - 1), axis=0)
    out = out + jnp.where((lab >= 0)[..., None], rows, 0.0)
    offset += d
  return out


def logits_of(w: CoreWeights, h: jax.Array) -> jax.Array:
  return (h.astype(w.out_kernel.dtype) @ w.out_kernel + w.out_bias).astype(jnp.float32)


def sample_streams(key: jax.Array, logits: jax.Array, depths: Sequence[int],
                   temperature: float | jax.Array) -> jax.Array:
  """One token per stream from logits `[N, ΣD]` -> labels `[N, S]`; temperature 0 = argmax."""
  out, offset = [], 0
  keys = jax.random.split(key, len(depths))
  t = jnp.asarray(temperature, jnp.float32)
  for k, d in zip(keys, depths):
    lg = logits[..., offset:offset + d]
    greedy = jnp.argmax(lg, axis=-1)
    drawn = jax.random.categorical(k, lg / jnp.maximum(t, 1e-6), axis=-1)
    out.append(jnp.where(t > 0, drawn, greedy))
    offset += d
  return jnp.stack(out, axis=-1).astype(jnp.int32)


def shift_right(labels: jax.Array, first: jax.Array | None = None) -> jax.Array:
  """Previous tokens: `[N, T, S]` -> `[N, T, S]` with `first` (default NO_TOKEN) at t = 0."""
  if first is None:
    first = jnp.full(labels.shape[:1] + labels.shape[2:], NO_TOKEN, labels.dtype)
  return jnp.concatenate([first[:, None], labels[:, :-1]], axis=1)


def teacher_forced(w: CoreWeights, cond: jax.Array, prev: jax.Array,
                   depths: Sequence[int]) -> jax.Array:
  """Logits `[N, T, ΣD]` given the previous tokens `prev` `[N, T, S]` and cond `[N, C]`."""
  prev = jnp.swapaxes(prev, 0, 1)  # time-major: only the narrow labels and logits are transposed
  proj = lstm.add_every_step(token_projection(w, prev, depths), cond_projection(w, cond, depths))
  hs, _ = lstm.scan_stack(w.cells, proj, initial_state(w, cond))
  return jnp.swapaxes(logits_of(w, hs), 0, 1)


def autoregressive(w: CoreWeights, cond: jax.Array, first: jax.Array, steps: int,
                   depths: Sequence[int], key: jax.Array, temperature: float | jax.Array,
                   teacher: jax.Array | None = None,
                   sampling_prob: float | jax.Array = 1.0) -> tuple[jax.Array, jax.Array]:
  """Step-by-step decoding feeding back its own tokens.

  cond `[N, C]`; first `[N, S]` the token before step 0 (NO_TOKEN for none); teacher
  `[N, T, S]` (optional): scheduled sampling, each example at each step feeds its own sample
  with probability `sampling_prob`, else the teacher token. Returns (labels `[N, T, S]` sampled,
  logits `[N, T, ΣD]`).
  """
  n = cond.shape[0]
  cproj = cond_projection(w, cond, depths)
  keys = jax.random.split(key, steps)
  teach = None if teacher is None else jnp.swapaxes(teacher, 0, 1)

  def step(carry, inp):
    states, prev = carry
    k = inp[0] if teach is not None else inp
    proj = token_projection(w, prev, depths) + cproj
    states, h = lstm.stack_step(w.cells, proj, states)
    logits = logits_of(w, h)
    k_tok, k_coin = jax.random.split(k)
    tok = sample_streams(k_tok, logits, depths, temperature)
    nxt = tok
    if teach is not None:
      use_own = jax.random.uniform(k_coin, (n,)) < sampling_prob
      nxt = jnp.where(use_own[:, None], tok, inp[1])
    return (states, nxt), (tok, logits)

  xs = keys if teach is None else (keys, teach)
  # When differentiated (scheduled sampling), keep only the matmuls' outputs per step and
  # recompute the gate math backward: the scan saved 27 `[T, B, H]` arrays of it (432 MiB at
  # cat-mel_2bar_small b512, zero-filled every step). A no-op when nothing is differentiated
  # (sampling); the demo's training was bit-identical with and without it over 300 steps on CPU.
  step = jax.checkpoint(step, policy=jax.checkpoint_policies.dots_with_no_batch_dims_saveable)
  _, (toks, logits) = jax.lax.scan(step, (initial_state(w, cond), first), xs)
  return jnp.swapaxes(toks, 0, 1), jnp.swapaxes(logits, 0, 1)


# --- conductor ---------------------------------------------------------------------------------


def conduct(cells, init_kernel, init_bias, z: jax.Array, num_bars: int) -> jax.Array:
  """Conductor embeddings `[B, U, H]`: state tanh(Dense(z)), input zeros, U steps."""
  sizes = [c.units for c in cells]
  states = lstm.initial_states(jnp.tanh(z.astype(init_kernel.dtype) @ init_kernel + init_bias),
                               sizes)
  b = z.shape[0]
  proj = jnp.broadcast_to(cells[0].bias, (num_bars, b, cells[0].bias.shape[-1]))  # 0 @ W + b
  hs, _ = lstm.scan_stack(cells, proj, states)
  return jnp.swapaxes(hs, 0, 1)


def split_bars(x: jax.Array, num_bars: int) -> jax.Array:
  """`[B, U*L, ...]` -> `[B*U, L, ...]`."""
  b, t = x.shape[:2]
  return x.reshape((b * num_bars, t // num_bars) + x.shape[2:])


def join_bars(x: jax.Array, batch: int) -> jax.Array:
  """`[B*U, L, ...]` -> `[B, U*L, ...]`."""
  return x.reshape((batch, -1) + x.shape[2:])
