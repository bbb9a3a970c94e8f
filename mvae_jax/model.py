"""From a config to the model: its converter, the Flax module, and its parameters.

Training and inference both start here. Only this module (and the model's `from_config`) reads
the config's data and model sections; everything it builds takes explicit arguments.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax.linen import meta

from mvae_jax.music import converters
from mvae_jax.nn import vae


def converter_of(cfg) -> converters.Converter:
  return converters.get_converter(cfg.data.converter)


def model_of(cfg, converter: converters.Converter | None = None) -> vae.MusicVAE:
  converter = converter or converter_of(cfg)
  if cfg.model.decoder == "hierarchical":
    u, l = cfg.model.level_lengths
    if u * l != converter.window_steps:
      raise ValueError(f"config {cfg.name}: model.level_lengths {u}x{l} != the converter's "
                       f"{converter.window_steps} steps; set --config.model.level_lengths")
  return vae.from_config(cfg.model, converter.input_depth, converter.output_depths)


def inputs_fn_of(converter: converters.Converter):
  """labels `[B, T, S]` -> encoder inputs `[B, T, D_in]` float32, on device."""
  return lambda labels: converter.labels_to_inputs(labels, jnp)


def dummy_batch(converter: converters.Converter, batch: int = 1) -> dict:
  t, s = converter.window_steps, converter.num_streams
  return {"labels": jnp.zeros((batch, t, s), jnp.int32),
          "lengths": jnp.full((batch,), t, jnp.int32), "mask": jnp.ones((batch,), jnp.float32)}


def init_params(model: vae.MusicVAE, converter: converters.Converter, key: jax.Array,
                boxed: bool = False):
  """Initial parameters, traced once on a batch of one: plain arrays, or with `boxed` the
  `nn.LogicallyPartitioned` boxes naming each dimension's logical axis (shardings derive
  from them)."""
  b = dummy_batch(converter)
  x = converter.labels_to_inputs(b["labels"], jnp)
  params = model.init(key, x, b["labels"], b["lengths"], jax.random.key(0))["params"]
  return params if boxed else meta.unbox(params)


def abstract_params(model: vae.MusicVAE, converter: converters.Converter, boxed: bool = False):
  """Shapes and dtypes of the parameters (`init_params`), without allocating them."""
  return jax.eval_shape(lambda k: init_params(model, converter, k, boxed), jax.random.key(0))


def count_params(tree) -> int:
  return int(sum(x.size for x in jax.tree.leaves(tree)))


__all__ = ["converter_of", "model_of", "inputs_fn_of", "dummy_batch", "init_params",
           "abstract_params", "count_params"]
