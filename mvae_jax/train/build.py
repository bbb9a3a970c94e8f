"""From a config to the objects a run needs: converter, model, step config, optimizer, state.

Only this module (and the model's `from_config`) reads the config; everything it builds takes
explicit arguments.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax.linen import meta

from mvae_jax.music import converters
from mvae_jax.nn import vae
from mvae_jax.train import steps


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


def step_config_of(cfg, converter: converters.Converter | None = None) -> steps.StepConfig:
  converter = converter or converter_of(cfg)
  return steps.StepConfig(
      depths=tuple(converter.output_depths), free_bits=cfg.loss.free_bits,
      max_beta=cfg.loss.max_beta, beta_rate=cfg.loss.beta_rate,
      learning_rate=cfg.optim.learning_rate, decay_rate=cfg.optim.decay_rate,
      min_learning_rate=cfg.optim.min_learning_rate, grad_clip=cfg.optim.grad_clip,
      grad_norm_clip_to_zero=cfg.optim.grad_norm_clip_to_zero,
      sampling_schedule=cfg.sampling.schedule, sampling_rate=cfg.sampling.rate,
      compute_dtype=cfg.train.compute_dtype)


def inputs_fn_of(converter: converters.Converter):
  """labels `[B, T, S]` -> encoder inputs `[B, T, D_in]` float32, on device."""
  return lambda labels: converter.labels_to_inputs(labels, jnp)


def dummy_batch(converter: converters.Converter, batch: int = 1) -> dict:
  t, s = converter.window_steps, converter.num_streams
  return {"labels": jnp.zeros((batch, t, s), jnp.int32),
          "lengths": jnp.full((batch,), t, jnp.int32), "mask": jnp.ones((batch,), jnp.float32)}


def init_params(model: vae.MusicVAE, converter: converters.Converter, key: jax.Array):
  """Initial parameters (unboxed: plain arrays), traced once on a batch of one."""
  b = dummy_batch(converter)
  x = converter.labels_to_inputs(b["labels"], jnp)
  variables = model.init(key, x, b["labels"], b["lengths"], jax.random.key(0))
  return meta.unbox(variables["params"])


def abstract_params(model, converter):
  """Shapes and dtypes of the parameters, without allocating them."""
  return jax.eval_shape(lambda k: init_params(model, converter, k), jax.random.key(0))


def count_params(tree) -> int:
  return int(sum(x.size for x in jax.tree.leaves(tree)))
