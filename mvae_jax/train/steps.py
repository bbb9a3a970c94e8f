"""Pure train and eval steps over a `TrainState` of arrays.

`train_step(state, batch, rng) -> (state, metrics)`: the step's key is `fold_in(rng, step)`;
gradients are clipped to global norm `grad_clip`; an update whose gradient norm reaches
`grad_norm_clip_to_zero`, or whose loss or gradients are not finite, is skipped entirely (the
parameters and Adam's moments stay as they were) and counted. The learning rate follows the
train state's step, as Magenta's follows `global_step`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import flax
import jax
import jax.numpy as jnp
import optax

from mvae_jax.nn import lstm
from mvae_jax.train import objective as obj


class TrainState(flax.struct.PyTreeNode):
  """step, params, opt_state, skipped updates in all and in a row (arrays: Orbax saves it)."""

  step: jax.Array
  params: Any
  opt_state: Any
  skipped: jax.Array
  streak: jax.Array

  @classmethod
  def create(cls, params, tx: optax.GradientTransformation, step: int = 0) -> "TrainState":
    return cls(step=jnp.asarray(step, jnp.int32), params=params, opt_state=tx.init(params),
               skipped=jnp.zeros((), jnp.int32), streak=jnp.zeros((), jnp.int32))


@dataclasses.dataclass(frozen=True)
class StepConfig:
  """What the steps need to know, read once from the config (hashable: static under jit)."""

  depths: Sequence[int]
  free_bits: float
  max_beta: float
  beta_rate: float
  learning_rate: float = 1e-3
  decay_rate: float = 0.9999
  min_learning_rate: float = 1e-5
  grad_clip: float = 1.0
  grad_norm_clip_to_zero: float = 10000.0
  sampling_schedule: str = "constant"
  sampling_rate: float = 0.0
  compute_dtype: str = "float32"
  recurrent_dtype: str = "float32"

  @property
  def matmul_dtypes(self) -> tuple[str, str]:
    """(inputs, recurrent) for `lstm.matmul_dtypes`: compute_dtype sets both, recurrent_dtype
    only the second (and is ignored when compute_dtype is not float32)."""
    if self.compute_dtype != "float32":
      return self.compute_dtype, self.compute_dtype
    return "float32", self.recurrent_dtype

  @property
  def scheduled(self) -> bool:
    return not (self.sampling_schedule == "constant" and self.sampling_rate == 0.0)


def step_config_of(cfg, converter) -> StepConfig:
  """The steps' settings from a config's loss, optim, sampling and train sections."""
  return StepConfig(
      depths=tuple(converter.output_depths), free_bits=cfg.loss.free_bits,
      max_beta=cfg.loss.max_beta, beta_rate=cfg.loss.beta_rate,
      learning_rate=cfg.optim.learning_rate, decay_rate=cfg.optim.decay_rate,
      min_learning_rate=cfg.optim.min_learning_rate, grad_clip=cfg.optim.grad_clip,
      grad_norm_clip_to_zero=cfg.optim.grad_norm_clip_to_zero,
      sampling_schedule=cfg.sampling.schedule, sampling_rate=cfg.sampling.rate,
      compute_dtype=dtype_setting(cfg.train, "compute_dtype"),
      recurrent_dtype=dtype_setting(cfg.train, "recurrent_dtype"))


def dtype_setting(train_cfg, key: str) -> str:
  """`train.compute_dtype` or `train.recurrent_dtype` (float32 where absent); a wrong value is
  one line naming the flag."""
  value = train_cfg.get(key, "float32")
  if value not in ("float32", "bfloat16"):
    raise ValueError(f"--config.train.{key}={value}: use float32 or bfloat16")
  return value


def scale_by_tf_adam(b1: float = 0.9, b2: float = 0.999,
                     eps: float = 1e-8) -> optax.GradientTransformation:
  """Adam's direction as TensorFlow computes it (and so Magenta's checkpoints were trained):
  √(1−b2^t)/(1−b1^t)·m/(√v + ε), i.e. ε is added to the *uncorrected* √v. optax's
  `scale_by_adam` adds ε to the corrected √v̂, which differs for gradients near ε (e.g. 0.07
  versus 0.7 of the step for a clipped gradient of 2e-8)."""

  def init(params):
    zeros = jax.tree.map(jnp.zeros_like, params)
    return optax.ScaleByAdamState(count=jnp.zeros([], jnp.int32), mu=zeros,
                                  nu=jax.tree.map(jnp.zeros_like, params))

  def update(updates, state, params=None):
    del params
    count = state.count + 1
    mu = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, updates)
    nu = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, state.nu, updates)
    t = count.astype(jnp.float32)
    scale = jnp.sqrt(1 - b2**t) / (1 - b1**t)
    direction = jax.tree.map(lambda m, v: scale * m / (jnp.sqrt(v) + eps), mu, nu)
    return direction, optax.ScaleByAdamState(count=count, mu=mu, nu=nu)

  return optax.GradientTransformation(init, update)


def make_optimizer(sc: StepConfig) -> optax.GradientTransformation:
  """Clip to global norm, then Adam's direction; the step scales by −lr(step) itself."""
  return optax.chain(optax.clip_by_global_norm(sc.grad_clip), scale_by_tf_adam())


def train_step(state: TrainState, batch: dict, rng: jax.Array, *, model, sc: StepConfig,
               inputs_fn: Callable, tx: optax.GradientTransformation,
               eps_scale: float = 1.0) -> tuple[TrainState, dict]:
  """One update. batch: labels `[B, T, S]`, lengths `[B]`, mask `[B]`.

  inputs_fn: labels -> encoder inputs `[B, T, D_in]` (the converter's, on device).
  eps_scale: 0 gives z = μ (used to compare with Magenta's fixtures), 1 normally.
  """
  key = jax.random.fold_in(rng, state.step)
  labels, lengths = batch["labels"], batch["lengths"]
  x = inputs_fn(labels)
  p = obj.sampling_probability(state.step, sc.sampling_schedule, sc.sampling_rate)

  def loss_fn(params):
    with lstm.matmul_dtypes(*sc.matmul_dtypes):
      out = model.apply({"params": params}, x, labels, lengths, key, p, sc.scheduled, eps_scale)
    loss, terms = obj.vae_loss(out, labels, lengths, sc.depths, state.step,
                               free_bits=sc.free_bits, max_beta=sc.max_beta,
                               beta_rate=sc.beta_rate, weights=batch.get("mask"))
    return loss, (terms, out["logits"])

  (loss, (terms, logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  gnorm = optax.global_norm(grads)
  ok = jnp.isfinite(loss) & jnp.isfinite(gnorm) & (gnorm < sc.grad_norm_clip_to_zero)
  lr = obj.learning_rate(state.step, sc.learning_rate, sc.decay_rate, sc.min_learning_rate)
  direction, opt_state = tx.update(grads, state.opt_state, state.params)
  params = jax.tree.map(lambda p_, d: p_ - lr * d, state.params, direction)
  keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)  # noqa: E731
  new_state = state.replace(step=state.step + 1, params=keep(params, state.params),
                            opt_state=keep(opt_state, state.opt_state),
                            skipped=state.skipped + (~ok).astype(jnp.int32),
                            streak=jnp.where(ok, 0, state.streak + 1))
  pred = obj.stream_argmax(logits, sc.depths)
  metrics = {k: v for k, v in terms.items() if not k.startswith("per_example")}
  metrics.update(learning_rate=lr, grad_norm=gnorm, sampling_prob=p, skipped=new_state.skipped,
                 skip_streak=new_state.streak,
                 update_ok=ok.astype(jnp.float32),
                 accuracy=obj.accuracy(pred, labels, lengths, batch.get("mask")))
  return new_state, metrics


def eval_step(params, batch: dict, rng: jax.Array, *, model, sc: StepConfig, inputs_fn: Callable,
              step: jax.Array | int = 0) -> dict:
  """Held-out metrics with z = μ: loss terms, teacher-forced accuracy, and the accuracy of
  free-running argmax decoding (the model fed its own tokens)."""
  labels, lengths, mask = batch["labels"], batch["lengths"], batch["mask"]
  k_fwd, k_sample = jax.random.split(rng)
  out = model.apply({"params": params}, inputs_fn(labels), labels, lengths, k_fwd, eps_scale=0.0)
  mu, logits = out["mu"], out["logits"]
  _, terms = obj.vae_loss(out, labels, lengths, sc.depths, step, free_bits=sc.free_bits,
                          max_beta=sc.max_beta, beta_rate=sc.beta_rate, weights=mask)
  sampled, _ = model.apply({"params": params}, mu, k_sample, 0.0, labels.shape[1],
                           method="sample")
  tf_acc = obj.accuracy(obj.stream_argmax(logits, sc.depths), labels, lengths, mask)
  return {"r_loss": terms["r_loss"], "kl_loss": terms["kl_loss"], "kl_bits": terms["kl_bits"],
          "loss": terms["loss"], "accuracy": tf_acc,
          "sampled_accuracy": obj.accuracy(sampled, labels, lengths, mask),
          "weight": jnp.sum(mask)}


__all__ = ["TrainState", "StepConfig", "step_config_of", "make_optimizer", "scale_by_tf_adam",
           "train_step", "eval_step"]
