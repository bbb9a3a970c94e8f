"""Encoders: stacked bidirectional LSTM (flat) and the hierarchical variant -> (μ, σ).

Parameter paths follow Magenta's TF variables, e.g.
`encoder/cell_0/bidirectional_rnn/fw/multi_rnn_cell/cell_0/lstm_cell/kernel`, `encoder/mu/kernel`.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mvae_jax.nn import lstm

DENSE_INIT = nn.initializers.normal(stddev=0.001)  # Magenta's dense kernels: N(0, 0.001)


def dense(features: int, name: str, axes=("embed", "mlp"), param_dtype=jnp.float32) -> nn.Dense:
  return nn.Dense(features, name=name, param_dtype=param_dtype,
                  kernel_init=nn.with_logical_partitioning(DENSE_INIT, axes),
                  bias_init=nn.with_logical_partitioning(nn.initializers.zeros, (axes[1],)))


class _Direction(nn.Module):
  """TF scope `fw` or `bw`: one `multi_rnn_cell` with a single cell."""

  input_dim: int
  units: int
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self) -> lstm.LSTMWeights:
    return lstm.LSTMStack(self.input_dim, (self.units,), self.param_dtype,
                          name="multi_rnn_cell")()[0]


class _BidirectionalRNN(nn.Module):
  """TF scope `bidirectional_rnn` with `fw` and `bw`."""

  input_dim: int
  units: int
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self):
    return (_Direction(self.input_dim, self.units, self.param_dtype, name="fw")(),
            _Direction(self.input_dim, self.units, self.param_dtype, name="bw")())


class _BidirectionalLayer(nn.Module):
  """TF scope `cell_l` of the encoder."""

  input_dim: int
  units: int
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self):
    return _BidirectionalRNN(self.input_dim, self.units, self.param_dtype,
                             name="bidirectional_rnn")()


def bidirectional_stack(input_dim: int, sizes: Sequence[int], param_dtype, x: jax.Array,
                        lengths: jax.Array) -> jax.Array:
  """Stacked BiLSTM layers `cell_0..` in the calling module's scope.

  x `[B, T, D]`, lengths `[B]` -> the top layer's [h_fw ‖ h_bw] `[B, 2*sizes[-1]]`.
  """
  d, final = input_dim, None
  x = jnp.swapaxes(x, 0, 1)  # time-major: the layers' wide projections are never transposed
  for l, units in enumerate(sizes):
    fw, bw = _BidirectionalLayer(d, units, param_dtype, name=f"cell_{l}")()
    x, final = lstm.bidirectional_layer(fw, bw, x, lengths)
    d = 2 * units
  return final


class BidirectionalStack(nn.Module):
  """`bidirectional_stack` in a scope of its own (the levels of the hierarchical encoder)."""

  input_dim: int
  sizes: Sequence[int]
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, lengths: jax.Array) -> jax.Array:
    return bidirectional_stack(self.input_dim, self.sizes, self.param_dtype, x, lengths)


def _mu_sigma(h: jax.Array, z_size: int, param_dtype):
  """Dense layers `mu` and `sigma` in the calling module's scope."""
  mu = dense(z_size, "mu", param_dtype=param_dtype)(h)
  sigma = jax.nn.softplus(dense(z_size, "sigma", param_dtype=param_dtype)(h))
  return mu.astype(jnp.float32), sigma.astype(jnp.float32)


class BidirectionalEncoder(nn.Module):
  """Magenta's BidirectionalLstmEncoder: μ = Dense(h), σ = softplus(Dense(h))."""

  input_dim: int
  sizes: Sequence[int]
  z_size: int
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, lengths: jax.Array):
    """x `[B, T, D]`, lengths `[B]` -> μ, σ `[B, z]`."""
    h = bidirectional_stack(self.input_dim, self.sizes, self.param_dtype, x, lengths)
    return _mu_sigma(h, self.z_size, self.param_dtype)


class HierarchicalEncoder(nn.Module):
  """Magenta's HierarchicalLstmEncoder with two levels: a BiLSTM stack over each bar
  (`hierarchical_level_0`), then a BiLSTM stack over the bars' embeddings
  (`hierarchical_level_1`). Sequences must be whole: `level_lengths` = (bars, steps per bar)."""

  input_dim: int
  sizes: Sequence[int]
  z_size: int
  level_lengths: Sequence[int] = (16, 16)
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, lengths: jax.Array):
    """x `[B, U*L, D]`, lengths `[B]` -> μ, σ `[B, z]`."""
    b = x.shape[0]
    u, l = self.level_lengths
    bars = x.reshape(b * u, l, x.shape[-1])
    bar_len = jnp.clip(lengths[:, None] - l * jnp.arange(u)[None, :], 0, l).reshape(b * u)
    emb = BidirectionalStack(self.input_dim, self.sizes, self.param_dtype,
                             name="hierarchical_level_0")(bars, bar_len)
    emb = emb.reshape(b, u, -1)
    num_bars = jnp.ceil(lengths / l).astype(jnp.int32)
    h = BidirectionalStack(emb.shape[-1], self.sizes, self.param_dtype,
                           name="hierarchical_level_1")(emb, num_bars)
    return _mu_sigma(h, self.z_size, self.param_dtype)
