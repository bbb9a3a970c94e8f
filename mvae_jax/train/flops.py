"""FLOPs of a training step, counted two independent ways, and the machine's matmul rate.

XLA's `compiled.cost_analysis()` counts the body of a `while` loop once, not once per iteration;
every recurrence here is a `lax.scan` (a while loop after lowering), so it understates a train
step's work by roughly the number of steps (`xla_flops` keeps it, to show the difference). This
module counts instead:

* `train_step_flops(cfg, batch)`: analytic, from the config alone. Matmul FLOPs (2·m·n·k per
  product) of the forward pass, layer by layer (encoder BiLSTM input projections and recurrences,
  μ/σ, conductor, core decoder(s), initial-state and output projections), then ×3 for the
  backward pass (gradients with respect to both operands of every product), less the one
  gradient that is never formed: that of the encoder's input data.
* `jaxpr_flops(fn, *args)`: the same quantity read off the traced program: every `dot_general`
  of the step's jaxpr (forward, backward, optimizer), scan bodies multiplied by their trip count.

Both count matrix products only (gathers, elementwise gate math and the softmax are not FLOPs
here; they are under 2% of a step at the paper's sizes): the figure MFU is quoted in.
`tests/train/test_flops.py` checks that the two agree.

    from mvae_jax.train import flops
    f = flops.train_step_flops(cfg, 512)        # int, per step, whole global batch
    rate = flops.matmul_rate()                  # FLOP/s of this device's float32 GEMM
"""

from __future__ import annotations

import time
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mvae_jax.music import converters


# --- analytic ---------------------------------------------------------------------------------


def _mm(m: int, k: int, n: int) -> int:
  """FLOPs of `[m, k] @ [k, n]`."""
  return 2 * m * k * n


def _lstm_stack(n: int, t: int, d_in: int, sizes: Sequence[int], first_proj: bool = True) -> int:
  """A stack of LSTM layers over n sequences of t steps: input projections and recurrences.

  first_proj False: layer 0's input projection is not a matmul (a row gather of one-hot
  tokens, or the zero input of the conductor)."""
  f, d = 0, d_in
  for k, h in enumerate(sizes):
    if k > 0 or first_proj:
      f += _mm(n * t, d, 4 * h)
    f += _mm(n * t, h, 4 * h)
    d = h
  return f


def _bidirectional(n: int, t: int, d_in: int, sizes: Sequence[int]) -> tuple[int, int]:
  """(all FLOPs, those of layer 0's input projection) of a stacked BiLSTM."""
  f, d = 0, d_in
  for h in sizes:
    f += 2 * (_mm(n * t, d, 4 * h) + _mm(n * t, h, 4 * h))
    d = 2 * h
  return f, 2 * _mm(n * t, d_in, 4 * sizes[0])


def _core(n: int, t: int, cond: int, sizes: Sequence[int], depth: int) -> int:
  """One core decoder over n segments of t steps: initial state, constant conditioning term of
  layer 0, the stack (token inputs gathered), output projection."""
  return (_mm(n, cond, 2 * sum(sizes)) + _mm(n, cond, 4 * sizes[0])
          + _lstm_stack(n, t, depth + cond, sizes, first_proj=False)
          + _mm(n * t, sizes[-1], depth))


def forward_flops(cfg, batch_size: int) -> dict:
  """Matmul FLOPs of one forward pass of `cfg`'s model on `batch_size` windows, by part:
  {'encoder', 'encoder_data_projection', 'latent', 'decoder'} (ints)."""
  m = cfg.model
  conv = converters.get_converter(cfg.data.converter)
  b, t, z = batch_size, conv.window_steps, m.z_size
  enc, sizes = list(m.enc_rnn_size), list(m.dec_rnn_size)
  u, l = m.level_lengths
  if m.encoder == "hierarchical":
    f0, data0 = _bidirectional(b * u, l, conv.input_depth, enc)
    f1, _ = _bidirectional(b, u, 2 * enc[-1], enc)
    encoder = f0 + f1
  else:
    encoder, data0 = _bidirectional(b, t, conv.input_depth, enc)
  latent = 2 * _mm(b, 2 * enc[-1], z)  # mu and sigma
  depths = list(conv.output_depths)
  if m.decoder == "flat":
    decoder = _core(b, t, z, sizes, sum(depths))
  else:
    conductor = _mm(b, z, 2 * sum(sizes)) + _lstm_stack(b, u, 1, sizes, first_proj=False)
    per_core = depths if m.core_per_stream else [sum(depths)]
    decoder = conductor + sum(_core(b * u, l, sizes[-1], sizes, d) for d in per_core)
  return {"encoder": encoder, "encoder_data_projection": data0, "latent": latent,
          "decoder": decoder}


def train_step_flops(cfg, batch_size: int | None = None) -> int:
  """Matmul FLOPs of one training step (forward + backward) on the global batch
  (`cfg.train.batch_size` by default): 3 × forward, less the gradient with respect to the
  encoder's input data, which is never formed."""
  f = forward_flops(cfg, batch_size or cfg.train.batch_size)
  return 3 * (f["encoder"] + f["latent"] + f["decoder"]) - f["encoder_data_projection"]


# --- from the traced program ------------------------------------------------------------------


def _dot_flops(eqn) -> int:
  (lc, _), _ = eqn.params["dimension_numbers"]
  lhs = eqn.invars[0].aval.shape
  contract = int(np.prod([lhs[i] for i in lc])) if lc else 1
  return 2 * contract * int(np.prod(eqn.outvars[0].aval.shape))


def _sub_jaxprs(params: dict):
  for v in params.values():
    for x in (v if isinstance(v, (list, tuple)) else (v,)):
      j = getattr(x, "jaxpr", x)  # ClosedJaxpr -> Jaxpr
      if hasattr(j, "eqns"):
        yield j


def count_jaxpr(jaxpr) -> int:
  """Matmul FLOPs of a (closed) jaxpr: dot_general everywhere, a scan's body × its length,
  a cond's most expensive branch. A while loop of unknown trip count is an error."""
  jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
  total = 0
  for eqn in jaxpr.eqns:
    name = eqn.primitive.name
    if name == "dot_general":
      total += _dot_flops(eqn)
    elif name == "scan":
      total += eqn.params["length"] * count_jaxpr(eqn.params["jaxpr"])
    elif name == "while":
      body = count_jaxpr(eqn.params["body_jaxpr"])
      if body:
        raise ValueError("a while loop with matmuls and no static trip count: cannot count it")
    elif name == "cond":
      total += max(count_jaxpr(br) for br in eqn.params["branches"])
    else:
      total += sum(count_jaxpr(j) for j in _sub_jaxprs(eqn.params))
  return total


def jaxpr_flops(fn, *args, **kwargs) -> int:
  """Matmul FLOPs of `fn(*args, **kwargs)` (arrays or ShapeDtypeStructs), traced, not run."""
  return count_jaxpr(jax.make_jaxpr(fn)(*args, **kwargs))


def xla_flops(compiled) -> float:
  """XLA's own `cost_analysis()` FLOPs of a compiled function: loop bodies counted ONCE, so for
  a scan-based model this understates the work (kept to show by how much)."""
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get("flops", 0.0)) if cost else 0.0


# --- the machine ------------------------------------------------------------------------------


def matmul_rate(n: int = 2048, reps: int = 10, dtype=jnp.float32,
                device: jax.Device | None = None) -> float:
  """Measured FLOP/s of an `[n, n] @ [n, n]` product of `dtype` operands (float32 accumulation
  and result, as the model's matmuls) on `device` (default: the first), best of `reps` timed
  calls after a warm-up."""
  device = device or jax.devices()[0]
  a = jax.device_put(jax.random.normal(jax.random.key(0), (n, n), jnp.float32).astype(dtype),
                     device)
  f = jax.jit(lambda x: jnp.matmul(x, x, preferred_element_type=jnp.float32))
  f(a).block_until_ready()
  best = float("inf")
  for _ in range(reps):
    t = time.perf_counter()
    f(a).block_until_ready()
    best = min(best, time.perf_counter() - t)
  return 2 * n**3 / best


def device_name(device: jax.Device | None = None) -> str:
  """E.g. 'cpu (2 cores)' or 'NVIDIA H200 (gpu) x1'."""
  import os  # noqa: PLC0415
  device = device or jax.devices()[0]
  if device.platform == "cpu":
    return f"cpu ({os.cpu_count()} cores), {jax.device_count()} JAX device(s)"
  return f"{device.device_kind} ({device.platform}) x{jax.device_count()}"


__all__ = ["forward_flops", "train_step_flops", "count_jaxpr", "jaxpr_flops", "xla_flops",
           "matmul_rate", "device_name"]
