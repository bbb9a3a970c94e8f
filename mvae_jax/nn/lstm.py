"""The one recurrence primitive: Magenta's LSTM cell, as weights (Flax) and pure scans (JAX).

Cell (TF `LSTMBlockCell`, as Magenta and magenta.js use it): one kernel `[in + units, 4*units]`
applied to [x ‖ h], plus a bias; gates in the order i, j (candidate), f, o; the forget bias +1.0
is added at run time and not stored; no peepholes, no clipping:
    c' = σ(f + 1)·c + σ(i)·tanh(j),   h' = σ(o)·tanh(c').

Flax modules here only declare parameters, named like Magenta's TF variables
(`.../cell_k/lstm_cell/{kernel,bias}`), so checkpoints map one to one. The recurrences are pure
functions of arrays under `jax.lax.scan`: a layer projects its inputs for all steps in one matmul
before the scan and keeps only `h @ W_h` inside it; an input narrower than the layer (an
encoder's one-hot steps) is projected inside the step instead (`run_layer`).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from typing import NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

FORGET_BIAS = 1.0

# (inputs, recurrent): the operand dtypes of the LSTM layers' matmuls; None: as the weights are
_MATMUL_DTYPES = contextvars.ContextVar("matmul_dtypes", default=(None, None))


@contextlib.contextmanager
def matmul_dtypes(inputs: str | None = None, recurrent: str | None = None):
  """While tracing inside this context, the LSTM layers' matmuls (`project`, `cell`, the scans
  `scan_layer`, `run_layer`, `scan_stack`, `bidirectional_layer`) multiply in these dtypes
  ("bfloat16"), accumulating in float32:

  * `inputs`: x·W_x, the input projections, and their input cotangents g·W_xᵀ;
  * `recurrent`: h·W_h, and dg·W_hᵀ in the backward pass;
  * with `inputs` set, also the weight gradients (Σ xᵀg for W_x and b, Σ hᵀdg for W_h, the
    gates' cotangents rounded once for all three), so that `train.compute_dtype` puts every
    LSTM matmul in it; with only `recurrent` set they take float32 operands. (`inputs` without
    `recurrent`, which no setting gives, would round the scans' W_h gradients but not the
    step-by-step `cell`'s.)

  Gate math, the dense layers (and a decoder's once-per-segment projection of its conditioning
  vector, whose cotangent a layer hands back in float32), parameters, gradients and the
  optimizer stay float32 (`train.compute_dtype` sets both, `train.recurrent_dtype` only
  `recurrent`). "float32" or None leaves a matmul as it is.

  The dtypes are read while tracing, and no jit cache key holds them: enter the context inside
  the jitted function (as `train.steps.train_step` does, its static config carrying them).

  At batch 16 with 2,048 units the recurrent matmul reads the whole `[2048, 8192]` W_h for 16
  rows of h: its speed is the memory's, and bfloat16 halves the bytes read
  (`bench/recurrent_matmul.py`); on CPUs with AVX512-BF16 a large matmul runs about twice as
  fast in bfloat16, with AMX about five times (`flops.matmul_rate(dtype="bfloat16")`).
  """
  token = _MATMUL_DTYPES.set((_dtype_name(inputs), _dtype_name(recurrent)))
  try:
    yield
  finally:
    _MATMUL_DTYPES.reset(token)


def _dtype_name(dtype) -> str | None:
  """"bfloat16" for bfloat16 (a name or a dtype); None for float32 or None (as stored)."""
  name = None if dtype is None else jnp.dtype(dtype).name
  return None if name in (None, "float32") else name


class LSTMWeights(NamedTuple):
  """kernel `[in + units, 4*units]`, bias `[4*units]`."""

  kernel: jax.Array
  bias: jax.Array

  @property
  def units(self) -> int:
    return self.kernel.shape[-1] // 4

  @property
  def w_x(self) -> jax.Array:
    return self.kernel[:-self.units]

  @property
  def w_h(self) -> jax.Array:
    return self.kernel[-self.units:]


class State(NamedTuple):
  """One layer's state: c, h `[B, units]`."""

  c: jax.Array
  h: jax.Array


def _kernel_init(key, shape, dtype=jnp.float32):
  # TF's default for LSTMBlockCell kernels: Glorot uniform over the whole [in + units, 4*units].
  return nn.initializers.glorot_uniform()(key, shape, dtype)


class _LSTMCellVars(nn.Module):
  """The TF `lstm_cell` scope: `kernel` and `bias`."""

  input_dim: int
  units: int
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self) -> LSTMWeights:
    kernel = self.param("kernel", nn.with_logical_partitioning(_kernel_init, ("lstm_in", "gates")),
                        (self.input_dim + self.units, 4 * self.units), self.param_dtype)
    bias = self.param("bias", nn.with_logical_partitioning(nn.initializers.zeros, ("gates",)),
                      (4 * self.units,), self.param_dtype)
    return LSTMWeights(kernel, bias)


class LSTMCell(nn.Module):
  """The TF `cell_k` scope around one `lstm_cell`."""

  input_dim: int
  units: int
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self) -> LSTMWeights:
    return _LSTMCellVars(self.input_dim, self.units, self.param_dtype, name="lstm_cell")()


class LSTMStack(nn.Module):
  """Cells `cell_0..cell_{L-1}` of sizes `sizes`, the first taking `input_dim` inputs."""

  input_dim: int
  sizes: Sequence[int]
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self) -> list[LSTMWeights]:
    weights, d = [], self.input_dim
    for k, units in enumerate(self.sizes):
      weights.append(LSTMCell(d, units, self.param_dtype, name=f"cell_{k}")())
      d = units
    return weights


# --- pure functions -------------------------------------------------------------------------------


def _matmul_nt(a: jax.Array, b: jax.Array) -> jax.Array:
  """a `[..., K]` times bᵀ for b `[N, K]` -> `[..., N]`: both operands contiguous along K.

  Inside the scans every recurrent matmul takes this form (W_hᵀ materialised once before the
  forward scan, W_h as stored in the backward one): on XLA's CPU backend the plain `h @ W_h`
  and `dg @ W_hᵀ` forms ran 1.8x slower at batch 16 with 2,048 units, the backward one
  transposing the 64 MiB W_h again at every step (bench/step_profile.py hierdec-mel_16bar 16).
  """
  return jax.lax.dot_general(a.astype(b.dtype), b, (((a.ndim - 1,), (1,)), ((), ())),
                             preferred_element_type=jnp.float32)


def _cast(a: jax.Array, dtype: str | None) -> jax.Array:
  """`a` in `dtype`; as it is for None."""
  return a if dtype is None else a.astype(dtype)


def _activations(gates: jax.Array) -> jax.Array:
  """σ(i), tanh(j), σ(f + 1), σ(o) `[B, 4H]` (float32) from the gates' pre-activations."""
  i, j, f, o = jnp.split(gates.astype(jnp.float32), 4, axis=-1)
  return jnp.concatenate([jax.nn.sigmoid(i), jnp.tanh(j), jax.nn.sigmoid(f + FORGET_BIAS),
                          jax.nn.sigmoid(o)], axis=-1)


def _update(acts: jax.Array, c: jax.Array) -> State:
  i, j, f, o = jnp.split(acts, 4, axis=-1)
  c = f * c + i * j
  return State(c, o * jnp.tanh(c))


def cell(w_h: jax.Array, x_proj: jax.Array, state: State) -> State:
  """One step given the projected input `x_proj` = x @ W_x + b `[B, 4H]`.

  (Step-by-step decoding keeps the plain `h @ W_h` in float32, where the scans use
  `_matmul_nt`: at its sizes both forms ran alike; with a recurrent dtype set, h·W_h goes
  through `_project_steps`, its W_h gradient in the inputs' dtype.)"""
  h, (di, rd) = state.h.astype(w_h.dtype), _MATMUL_DTYPES.get()
  hw = h @ w_h if rd is None else _project_steps(rd, di, h, w_h, None)
  return _update(_activations(x_proj + hw), state.c)


def project(w: LSTMWeights, x: jax.Array) -> jax.Array:
  """x `[..., in]` -> x @ W_x + b `[..., 4H]` (one matmul over all steps)."""
  x, dtype = x.astype(w.kernel.dtype), _MATMUL_DTYPES.get()[0]
  if x.ndim < 3 and dtype is None:
    return x @ w.w_x + w.bias
  return _project_steps(dtype, dtype, x, w.w_x, w.bias)


def _matmul_nn(dtype: str | None, x: jax.Array, w: jax.Array,
               out: jnp.dtype | None = None) -> jax.Array:
  """x `[..., K]` @ w `[K, N]` from operands in `dtype` (None: as they are), accumulated in
  float32, returned in `out` (default: w's dtype)."""
  y = jnp.matmul(_cast(x, dtype), _cast(w, dtype), preferred_element_type=jnp.float32)
  return y.astype(w.dtype if out is None else out)


def _affine(dtype: str | None, x: jax.Array, w_x: jax.Array, b: jax.Array | None,
            out: jnp.dtype | None = None) -> jax.Array:
  """x `[..., in]` @ W_x `[in, 4H]` (+ b `[4H]` unless None), multiplied as `_matmul_nn`."""
  y = _matmul_nn(dtype, x, w_x, out)
  return y if b is None else y + b


def _instantiate(g):
  """A cotangent as an array: zeros for a symbolic zero."""
  return jnp.zeros(g.shape, g.dtype) if isinstance(g, jax.custom_derivatives.SymbolicZero) else g


def _is_primal(a) -> bool:
  return isinstance(a, jax.custom_derivatives.CustomVJPPrimal)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _project_steps(dtype: str | None, wdtype: str | None, x: jax.Array, w_x: jax.Array,
                   b: jax.Array | None) -> jax.Array:
  """x `[..., in]` @ W_x (+ b unless None), operands in `dtype` (None: as they are) with
  float32 accumulation; W_x's gradient is one contraction over the leading axes, its operands
  in `wdtype`, accumulated in float32. (Also h `[B, H]` @ W_h for `cell` with a recurrent
  dtype, b None.)

  What differentiating `x @ W_x` gives made XLA's CPU backend copy the `[T, B, 4H]` cotangent
  into a transposed layout first (two 128 MiB copies per step in `bench/step_profile.py
  cat-mel_2bar_small 512`); flattening T and B into one axis instead needs the batch axis
  gathered onto every device when it is sharded. This form does neither (`_contract_steps`).
  """
  return _affine(dtype, x, w_x, b)


def _project_steps_fwd(dtype, wdtype, x, w_x, b):
  # symbolic zeros: each primal says whether it is differentiated; x is not when it is data (an
  # encoder's input), and then its cotangent is not computed. The residuals' tree structure
  # carries the flags: (None,) where x is differentiated and where there is a bias.
  flags = ((None,) if x.perturbed else (), () if b is None else (None,))
  return (_affine(dtype, x.value, w_x.value, None if b is None else b.value),
          (x.value, w_x.value, flags))


def _project_steps_bwd(dtype, wdtype, res, g):
  x, w_x, (needs_dx, has_bias) = res
  g = _instantiate(g)
  dx = db = None
  if needs_dx:
    dx = (g @ w_x.T if dtype is None else _matmul_nt(g, w_x.astype(dtype))).astype(x.dtype)
  if has_bias:
    db = _cast(g, wdtype).sum(tuple(range(g.ndim - 1)), dtype=jnp.float32).astype(w_x.dtype)
  return dx, _contract_steps(x, g, wdtype).astype(w_x.dtype), db


_project_steps.defvjp(_project_steps_fwd, _project_steps_bwd, symbolic_zeros=True)


def _contract_steps(a: jax.Array, g: jax.Array, dtype: str | None = None) -> jax.Array:
  """Σ over the leading axes of aᵀ·g: a `[..., M]`, g `[..., N]` -> `[M, N]` float32 (a
  weight's gradient over all steps and examples), operands in `dtype` (None: as they are).

  With more than one device, an einsum: a sharded batch axis stays sharded and the sum ends in
  the gradients' all-reduce (flattening the leading axes first would gather the whole batch
  onto every device: 4 all-gathers per step at 8 devices, each device then computing every
  weight gradient in full). With one device nothing is sharded, and the flattened matmul reads
  both operands as they lie, where the einsum lays `a` out anew first.
  """
  if jax.device_count() > 1:
    return jnp.einsum("...m,...n->mn", _cast(a, dtype), _cast(g, dtype),
                      preferred_element_type=jnp.float32)
  return _weight_matmul(a.reshape(-1, a.shape[-1]).T, g.reshape(-1, g.shape[-1]), dtype)


def _weight_matmul(a_t: jax.Array, g: jax.Array, dtype: str | None) -> jax.Array:
  """a_t `[M, K]` @ g `[K, N]` -> `[M, N]` float32, operands in `dtype` (None: as they are);
  a_t made row-major first where a bfloat16 matmul needs it (`_row_major_wanted`)."""
  a_t, g = _cast(a_t, dtype), _cast(g, dtype)
  if _row_major_wanted(dtype):
    a_t = _row_major(a_t)
  return jnp.matmul(a_t, g, preferred_element_type=jnp.float32)


def _row_major(a: jax.Array) -> jax.Array:
  """`a` laid out row-major in memory (a transposed operand copied, not folded into the dot).

  XLA's CPU backend runs a bfloat16 matmul in YNNPACK (AMX or AVX512-BF16) only when its left
  operand is a row-major `[M, K]`; given `xᵀ` it folds the transpose into the dot, which then
  converts both operands back to float32 (a `[512, 16384] x [16384, 2048]` weight gradient on
  a 2-core Xeon with AMX: 147-199 ms from float32 operands cast and transposed, 62-69 ms with
  this copy, casts included). Flattening through an optimization barrier makes the layout
  physical."""
  return jax.lax.optimization_barrier(a.reshape(-1)).reshape(a.shape)


@jax.custom_vjp
def add_every_step(xs: jax.Array, c: jax.Array) -> jax.Array:
  """xs `[T, ...]` + c at every step, c shaped as one step `xs[0]` (a decoder's constant
  conditioning term).

  c's cotangent, Σ_t g_t, is summed step by step in a loop: XLA's CPU backend summed a leading
  axis alone at about 1 GB/s (a `[32, 512, 1024]` float32 array: 74 ms, 138 ms of a
  teacher-forced cat-mel_2bar_small step at batch 512 in bench/step_profile.py; this loop 2.6
  ms; a product with a vector of ones ran in 1.6 ms but would count as matmul FLOPs)."""
  assert c.shape == xs.shape[1:], (c.shape, xs.shape)
  return xs + c[None]


def _add_every_step_fwd(xs, c):
  return add_every_step(xs, c), (jnp.zeros((0,), xs.dtype), jnp.zeros((0,), c.dtype))


def _add_every_step_bwd(dtypes, g):  # dtypes: empty arrays of xs' and c's dtypes
  total = jax.lax.fori_loop(1, g.shape[0], lambda t, acc: acc + g[t], g[0])
  return g.astype(dtypes[0].dtype), total.astype(dtypes[1].dtype)


add_every_step.defvjp(_add_every_step_fwd, _add_every_step_bwd)


def zero_state(batch: int, units: int) -> State:
  return State(jnp.zeros((batch, units), jnp.float32), jnp.zeros((batch, units), jnp.float32))


def _forward(w_h, xs, c0, h0, ms, rd, w_x=None, b=None, di=None):
  """The recurrence, time-major: xs `[T, B, 4H]` projected inputs, or with `w_x` (and `b`)
  the inputs `[T, B, in]` themselves, projected inside the step as `project` would (`di` the
  inputs' matmul dtype); ms `[T, B]` bool or None.

  Returns hs, cs `[T, B, H]` (the state after each step; a masked step repeats the previous
  one), the gate activations `[T, B, 4H]`, the final c, h, and h_{t-1}ᵀ `[T, H, B]` in `di`
  where W_h's gradient wants a row-major operand (`_row_major_wanted`; else None). Float32
  projected xs are consumed: the activations are written over them (XLA copies xs first where
  the caller still uses them).
  """

  w_h_t = _cast(w_h.T, rd)  # once, outside the scan
  w_x_di = None if w_x is None else _cast(w_x, di)
  emit_t = _row_major_wanted(di)

  # float32 projected inputs are overwritten by the gate activations, step by step (no
  # second `[T, B, 4H]` array, nor its initialisation); x_{t+1} is read after acts_t's write
  in_place = w_x is None and xs.dtype == jnp.float32
  last = xs.shape[0] - 1

  def step(carry, inp):
    t, x, m = inp
    state, buf, x = carry if in_place else (carry, None, x)
    xp = x if w_x is None else _affine(di, x, w_x_di, b, w_x.dtype)  # as `project`
    acts = _activations(xp + _matmul_nt(state.h, w_h_t))
    new = _update(acts, state.c)
    if m is not None:
      new = State(jnp.where(m[:, None], new.c, state.c), jnp.where(m[:, None], new.h, state.h))
    out = (new.h, new.c) + ((_stackable(_cast(state.h, di).T),) if emit_t else ())
    if not in_place:
      return new, out + (acts,)
    buf = jax.lax.dynamic_update_index_in_dim(buf, acts, t, 0)
    return (new, buf, jax.lax.dynamic_index_in_dim(buf, jnp.minimum(t + 1, last), 0, False)), out

  init = (State(c0, h0), xs, xs[0]) if in_place else State(c0, h0)
  seq = (jnp.arange(xs.shape[0]), None if in_place else xs, ms)
  final, outs = jax.lax.scan(step, init, seq)
  (final, acts, _), outs = (final, outs) if in_place else ((final, outs[-1], None), outs[:-1])
  hs, cs = outs[:2]
  return hs, cs, acts, final, (_unstack(outs[2]) if emit_t else None)


def _row_major_wanted(dtype) -> bool:
  """Whether weight gradients in `dtype` need row-major copies of a transposed operand."""
  return dtype is not None and jax.default_backend() == "cpu" and jax.device_count() == 1


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6))
def _recurrence(w_h, inputs, c0, h0, ms, rd, di):
  """hs `[T, B, H]`, final c, final h: `_forward` with a hand-written backward pass.

  inputs: the projected xs `[T, B, 4H]`, or (x `[T, B, in]`, w_x `[in, 4H]`, b `[4H]`) to
  project inside the step; ms `[T, B]` bool or None; `rd`, `di`: the dtypes of the recurrent
  and the input matmuls (static)."""
  xs, w_x, b = _split_inputs(inputs)
  hs, _, _, final, _ = _forward(w_h, xs, c0, h0, ms, rd, w_x, b, di)
  return hs, final.c, final.h


def _split_inputs(inputs):
  """xs `[T, B, 4H]` or `[T, B, in]`, then w_x and b (None for projected xs), as `_forward`
  takes them."""
  xs, w_x, b = inputs if isinstance(inputs, tuple) else (inputs, None, None)
  return xs, w_x, b


def _recurrence_fwd(w_h, inputs, c0, h0, ms, rd, di):
  # symbolic zeros: x's cotangent is formed only where x is differentiated (not an encoder's
  # input data); `needs_dx` travels in the residuals' tree structure, as in `_project_steps`
  needs_dx = isinstance(inputs, tuple) and inputs[0].perturbed
  w_h, inputs, c0, h0, ms = jax.tree.map(lambda a: a.value, (w_h, inputs, c0, h0, ms),
                                         is_leaf=_is_primal)
  xs, w_x, b = _split_inputs(inputs)
  hs, cs, acts, final, h_prev_t = _forward(w_h, xs, c0, h0, ms, rd, w_x, b, di)
  if w_x is None:
    kept = jnp.zeros((0,), xs.dtype)  # xs' dtype, for their cotangent
  else:
    kept = (xs, w_x, (None,) if needs_dx else ())
  return (hs, final.c, final.h), (w_h, kept, hs, cs, acts, c0, h0, ms, h_prev_t)


def _stackable(a: jax.Array) -> jax.Array:
  """A scan step's bfloat16 output as uint16 bits (others as they are), `_unstack` after.

  XLA's CPU backend runs a bfloat16 dynamic-update-slice in float32, converting the whole
  stacked `[T, ...]` array at every step (an O(T²) copy: 0.75-1.2 s per scan of
  hierdec-mel_16bar's 256 steps in bench/step_profile.py); 16-bit integers are written in
  place."""
  return jax.lax.bitcast_convert_type(a, jnp.uint16) if a.dtype == jnp.bfloat16 else a


def _unstack(a: jax.Array) -> jax.Array:
  """The stacked outputs of `_stackable` steps: uint16 bits back as bfloat16."""
  return a if a.dtype != jnp.uint16 else jax.lax.bitcast_convert_type(a, jnp.bfloat16)


def _recurrence_bwd(rd, di, res, cts):
  """Backward through time keeping only dh @ W_hᵀ inside the scan.

  The gates' cotangents dg_t are the input projection's cotangents; W_h's is then one large
  matmul over all steps, Σ_t h_{t-1}ᵀ dg_t, instead of a [H, 4H] accumulator carried and
  updated at every step (what differentiating the scan would do). Inputs projected inside the
  step get W_x's, b's and x's cotangents from the dg_t as `project`'s backward gives them.
  """
  w_h, kept, hs, cs, acts, c0, h0, ms, h_prev_t = res
  d_hs, d_c, d_h = (_instantiate(g) for g in cts)
  w_h_rd = _cast(w_h, rd)  # once, outside the scan
  # the dg_t leave the scan in the weight gradients' dtype where only weight gradients and x's
  # cotangent (rounded as `project` rounds it) take them; projected inputs get them in float32
  dg_dtype = di if isinstance(kept, tuple) else None
  # float32 dg_t overwrite the gate activations they come from, step by step: no second
  # `[T, B, 4H]` array, nor its initialisation (a copy of zeros); bfloat16 ones (stacked as
  # uint16 bits, `_stackable`) get their own narrower array
  in_place = jnp.dtype(dg_dtype or acts.dtype) == acts.dtype

  def step(k, carry):
    dc, dh, out, a = carry  # a: a_t, read before its slot of `out` was overwritten
    t = acts.shape[0] - 1 - k  # backward in time
    at = functools.partial(jax.lax.dynamic_index_in_dim, index=t, keepdims=False)
    before = functools.partial(jax.lax.dynamic_index_in_dim, index=jnp.maximum(t - 1, 0),
                               keepdims=False)
    c, cp = at(cs), jnp.where(t > 0, before(cs), c0)
    dh = dh + at(d_hs)
    i, j, f, o = jnp.split(a, 4, axis=-1)
    tc = jnp.tanh(c)
    dc_tot = dc + dh * o * (1 - tc * tc)
    dg = jnp.concatenate([dc_tot * j * i * (1 - i), dc_tot * i * (1 - j * j),
                          dc_tot * cp * f * (1 - f), dh * tc * o * (1 - o)], axis=-1)
    dh_prev = _matmul_nt(dg, w_h_rd)  # dg @ W_hᵀ
    dc_prev = dc_tot * f
    if ms is not None:  # a masked step passed its state through unchanged
      m = at(ms)[:, None]
      dg = jnp.where(m, dg, 0.0)
      dh_prev, dc_prev = jnp.where(m, dh_prev, dh), jnp.where(m, dc_prev, dc)
    out = jax.lax.dynamic_update_index_in_dim(out, _stackable(_cast(dg, dg_dtype)), t, 0)
    # a_{t-1} from the updated buffer: every read of a slot follows the writes before it, so
    # the buffer is updated in place (reading a_t inside the step's fusions, XLA copied the
    # whole buffer twice per step)
    return dc_prev, dh_prev, out, before(out if in_place else acts)

  out = acts if in_place else _stackable(jnp.zeros(acts.shape, dg_dtype or acts.dtype))
  d_c0, d_h0, dgs, _ = jax.lax.fori_loop(0, acts.shape[0], step, (d_c, d_h, out, acts[-1]))
  dgs = _unstack(dgs)
  if h_prev_t is None:
    h_prev = jnp.concatenate([h0[None], hs[:-1]], 0).astype(w_h.dtype)
    d_w_h = _contract_steps(h_prev, dgs, di).astype(w_h.dtype)
  else:  # h_{t-1}ᵀ `[T, H, B]` from the forward scan: `[H, T·B]` after a copy of B-long rows
    a_t = jnp.transpose(h_prev_t, (1, 0, 2)).reshape(h_prev_t.shape[1], -1)
    d_w_h = _weight_matmul(a_t, dgs.reshape(-1, dgs.shape[-1]), di).astype(w_h.dtype)
  if isinstance(kept, tuple):
    x, w_x, needs_dx = kept
    d_inputs = _project_steps_bwd(di, di, (x, w_x, (needs_dx, (None,))), dgs)
  else:
    d_inputs = dgs.astype(kept.dtype)
  return d_w_h, d_inputs, d_c0.astype(c0.dtype), d_h0.astype(h0.dtype), None


_recurrence.defvjp(_recurrence_fwd, _recurrence_bwd, symbolic_zeros=True)


def scan_layer(w: LSTMWeights, x_proj: jax.Array, state: State,
               mask: jax.Array | None = None) -> tuple[jax.Array, State]:
  """Runs one layer over time, time-major (no transposes of the wide [., 4H] arrays).

  x_proj: `[T, B, 4H]` projected inputs; state: initial `State`; mask: optional `[T, B]` bool,
  where False steps leave the state unchanged (sequence lengths).
  Returns outputs h `[T, B, H]` and the final state.
  """
  return _scan(w, x_proj, state, mask)


def _scan(w: LSTMWeights, inputs, state: State, mask: jax.Array | None):
  """`_recurrence` for a layer: inputs as it takes them, under the current `matmul_dtypes`."""
  d = _MATMUL_DTYPES.get()
  hs, c, h = _recurrence(w.w_h, inputs, state.c.astype(jnp.float32),
                         state.h.astype(jnp.float32), mask, d[1], d[0])
  return hs, State(c, h)


def run_layer(w: LSTMWeights, x: jax.Array, state: State,
              mask: jax.Array | None = None) -> tuple[jax.Array, State]:
  """`scan_layer(w, project(w, x), state, mask)` for inputs x `[T, B, in]`, the same values.

  An input narrower than the layer (a one-hot step: 90 values into 512 units) is projected
  inside the step instead, from x_t `[B, in]`: projected over all steps at once it would be
  a `[T, B, 4H]` array (128 MiB per direction at batch 512) written by a matmul with K = 90
  that ran at 30-50 GFLOP/s, then read back by the scan (bench/step_profile.py
  cat-mel_2bar_small 512). Wide inputs (a layer above another) keep the one large matmul.
  (The width rule was measured with 90 inputs into 512 units at batch 512 and 64; the trio
  configs' 692 into 2,048 take the same path unmeasured.)
  """
  if x.shape[-1] >= w.units:
    return scan_layer(w, project(w, x), state, mask)
  return _scan(w, (x.astype(w.kernel.dtype), w.w_x, w.bias), state, mask)


def stack_step(weights: Sequence[LSTMWeights], first_proj: jax.Array,
               states: Sequence[State]) -> tuple[list[State], jax.Array]:
  """One time step of a stack: `first_proj` `[B, 4H_0]` is layer 0's projected input.

  Returns the new states and the top h `[B, H_top]`.
  """
  new_states, proj = [], first_proj
  for k, (w, s) in enumerate(zip(weights, states)):
    if k > 0:
      proj = project(w, new_states[-1].h)
    new_states.append(cell(w.w_h, proj, s))
  return new_states, new_states[-1].h


def scan_stack(weights: Sequence[LSTMWeights], first_proj: jax.Array,
               states: Sequence[State]) -> tuple[jax.Array, list[State]]:
  """A stack over time, layer by layer (teacher forcing: inputs known in advance).

  first_proj: `[T, B, 4H_0]` (time-major); returns top outputs `[T, B, H_top]` and final states.
  """
  finals, proj, hs = [], first_proj, None
  for k, (w, s) in enumerate(zip(weights, states)):
    if k > 0:
      proj = project(w, hs)
    hs, final = scan_layer(w, proj, s)
    finals.append(final)
  return hs, finals


def reverse_within_lengths(x: jax.Array, lengths: jax.Array) -> jax.Array:
  """Reverses each sequence of time-major `x` `[T, B, ...]` within its length `lengths` `[B]`;
  steps past it stay put."""
  t = jnp.arange(x.shape[0])[:, None]
  idx = jnp.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)
  return jnp.take_along_axis(x, idx.reshape(idx.shape + (1,) * (x.ndim - 2)), axis=0)


def bidirectional_layer(fw: LSTMWeights, bw: LSTMWeights, x: jax.Array,
                        lengths: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Forward and backward LSTM over time-major `x` `[T, B, D]` honouring `lengths` `[B]`.

  The backward direction reads each sequence reversed within its length, as TF's
  bidirectional_dynamic_rnn does. (The directions run as two scans: vmapping one scan over the
  direction was 2.7x slower in the backward pass on CPU, measured in bench/.)
  Returns outputs `[T, B, 2H]` ([fw ‖ bw] in natural time order) and the final h of each
  direction `[B, 2H]` ([h_fw after the last valid step ‖ h_bw after step 0]).
  """
  t, b = x.shape[:2]
  mask = jnp.arange(t)[:, None] < lengths[None, :]
  out_fw, fin_fw = run_layer(fw, x, zero_state(b, fw.units), mask)
  out_bw, fin_bw = run_layer(bw, reverse_within_lengths(x, lengths), zero_state(b, bw.units),
                             mask)
  out_bw = reverse_within_lengths(out_bw, lengths)
  return (jnp.concatenate([out_fw, out_bw], axis=-1),
          jnp.concatenate([fin_fw.h, fin_bw.h], axis=-1))


def initial_states(flat: jax.Array, sizes: Sequence[int]) -> list[State]:
  """Splits `flat` `[B, 2*Σunits]` as Magenta does: [c_0, h_0, c_1, h_1, ...]."""
  states, start = [], 0
  for units in sizes:
    c = flat[..., start:start + units]
    h = flat[..., start + units:start + 2 * units]
    states.append(State(c.astype(jnp.float32), h.astype(jnp.float32)))
    start += 2 * units
  return states
