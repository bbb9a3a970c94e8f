"""The layer scan's hand-written backward pass equals JAX's derivative of the same recurrence."""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mvae_jax.nn import lstm
from mvae_jax.train import flops


CPU_HLO = pytest.mark.skipif(jax.default_backend() != "cpu",
                             reason="asserts what XLA's CPU backend compiles")


def _reference(w, x_proj, state, mask):
  """The recurrence written step by step with `lstm.cell`, differentiated by JAX (time-major)."""

  def step(carry, inp):
    xp, m = inp
    new = lstm.cell(w.w_h, xp, carry)
    new = lstm.State(jnp.where(m[:, None], new.c, carry.c), jnp.where(m[:, None], new.h, carry.h))
    return new, new.h

  final, hs = jax.lax.scan(step, state, (x_proj, mask))
  return hs, final


@pytest.mark.parametrize("dtypes", [{}, {"recurrent": "bfloat16"},
                                    {"inputs": "bfloat16", "recurrent": "bfloat16"}])
@pytest.mark.parametrize("ragged", [False, True])
def test_gradients_match_autodiff(ragged, dtypes):
  """Also in bfloat16 (`matmul_dtypes`): the scan and the step-by-step cell round alike."""
  t, b, d, h = 7, 5, 3, 4
  k = jax.random.split(jax.random.key(0), 5)
  w = lstm.LSTMWeights(jax.random.normal(k[0], (d + h, 4 * h)), jax.random.normal(k[1], (4 * h,)))
  x = jax.random.normal(k[2], (t, b, d))
  state = lstm.State(jax.random.normal(k[3], (b, h)), jax.random.normal(k[4], (b, h)))
  lengths = jnp.array([7, 3, 1, 6, 0]) if ragged else jnp.full((b,), t)
  mask = jnp.arange(t)[:, None] < lengths[None, :]
  weights = jnp.linspace(-1, 2, h)

  def loss(run, w, x, state):
    hs, fin = run(w, lstm.project(w, x), state, mask)
    return jnp.sum(jnp.sin(hs) * weights) + jnp.sum(fin.c ** 2) - jnp.sum(fin.h * weights)

  with lstm.matmul_dtypes(**dtypes):
    ours = jax.grad(lambda *a: loss(lstm.scan_layer, *a), argnums=(0, 1, 2))(w, x, state)
    ref = jax.grad(lambda *a: loss(_reference, *a), argnums=(0, 1, 2))(w, x, state)
    # and the forward values agree
    np.testing.assert_allclose(lstm.scan_layer(w, lstm.project(w, x), state, mask)[0],
                               _reference(w, lstm.project(w, x), state, mask)[0], atol=1e-6)
  for a, r in zip(jax.tree.leaves(ours), jax.tree.leaves(ref)):
    np.testing.assert_allclose(a, r, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("setting", [{"recurrent": "bfloat16"},
                                     {"inputs": "bfloat16", "recurrent": "bfloat16"}])
def test_bfloat16_matmuls_stay_close_to_float32(setting):
  """`matmul_dtypes` (train.recurrent_dtype / train.compute_dtype) changes only the rounding of
  the layers' matmuls: outputs and gradients within bfloat16's precision of float32's, yet not
  equal; every gradient is a float32 array."""
  t, b, d, h = 9, 4, 3, 16
  k = jax.random.split(jax.random.key(1), 4)
  w = lstm.LSTMWeights(0.3 * jax.random.normal(k[0], (d + h, 4 * h)),
                       jax.random.normal(k[1], (4 * h,)))
  x = jax.random.normal(k[2], (t, b, d))
  state = lstm.zero_state(b, h)
  mask = jnp.arange(t)[:, None] < jnp.array([9, 5, 1, 7])[None, :]

  def loss(w, x):
    hs, fin = lstm.scan_layer(w, lstm.project(w, x), state, mask)
    s = state  # and step by step, as the scheduled-sampling decoders run
    for step in range(3):
      s = lstm.stack_step([w], lstm.project(w, x[step]), [s])[0][0]
    return jnp.sum(jnp.sin(hs)) + jnp.sum(fin.c ** 2) + jnp.sum(jnp.cos(s.h))

  f32 = jax.value_and_grad(loss, argnums=(0, 1))(w, x)
  with lstm.matmul_dtypes(**setting):
    bf16 = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(w, x)
  for a, r in zip(jax.tree.leaves(bf16), jax.tree.leaves(f32)):
    assert a.dtype == r.dtype == jnp.float32
    np.testing.assert_allclose(a, r, rtol=3e-2, atol=3e-2)
  assert abs(float(bf16[0]) - float(f32[0])) > 1e-6  # the setting took effect
  with lstm.matmul_dtypes("float32", "float32"):
    np.testing.assert_array_equal(jax.grad(loss)(w, x).kernel, f32[1][0].kernel)


@pytest.mark.parametrize("lead", [(3, 2), (6,)])
def test_bfloat16_inputs_round_the_input_projection(lead):
  """`inputs="bfloat16"` rounds x and W_x (forward), g and W_x (x's cotangent), and x and g
  for W_x's and b's gradients (Σ xᵀg, Σ g, accumulated in float32); over steps `[T, B, in]`
  and for one step `[B, in]`."""
  k = jax.random.split(jax.random.key(2), 3)
  w = lstm.LSTMWeights(jax.random.normal(k[0], (5 + 4, 16)), jax.random.normal(k[1], (16,)))
  x = jax.random.normal(k[2], lead + (5,))
  g = jnp.cos(jnp.arange(6 * 16, dtype=jnp.float32)).reshape(lead + (16,))
  r = lambda a: a.astype(jnp.bfloat16).astype(jnp.float32)  # noqa: E731
  with lstm.matmul_dtypes(inputs="bfloat16"):
    y, vjp = jax.vjp(lambda x, w: lstm.project(w, x), x, w)
  np.testing.assert_allclose(y, r(x) @ r(w.w_x) + w.bias, rtol=1e-5, atol=1e-5)
  dx, dw = vjp(g)
  np.testing.assert_allclose(dx, r(g) @ r(w.w_x).T, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(dw.kernel[:5], jnp.einsum("...i,...o->io", r(x), r(g)), rtol=1e-5,
                             atol=1e-5)
  np.testing.assert_allclose(dw.bias, r(g).reshape(-1, 16).sum(0), rtol=1e-5, atol=1e-5)
  assert dw.kernel.dtype == dw.bias.dtype == jnp.float32
  assert not np.allclose(dx, g @ w.w_x.T, rtol=1e-6, atol=1e-6)
  assert not np.allclose(dw.kernel[:5], jnp.einsum("...i,...o->io", x, g), rtol=1e-6, atol=1e-6)


def test_bfloat16_recurrent_rounds_the_step_by_step_cell():
  """`recurrent="bfloat16"` reaches `cell` (the scheduled-sampling decoders' step): h·W_h from
  rounded operands, h's cotangent from rounded ones too, and W_h's gradient the float32
  hᵀ·(the gates' cotangent)."""
  k = jax.random.split(jax.random.key(3), 4)
  h, units = jax.random.normal(k[0], (3, 8)), 8
  w_h = jax.random.normal(k[1], (units, 4 * units))
  xp = jax.random.normal(k[2], (3, 4 * units))
  c = jax.random.normal(k[3], (3, units))
  rnd = lambda a: a.astype(jnp.bfloat16).astype(jnp.float32)  # noqa: E731
  f = lambda w_h, xp, h: jnp.sum(jnp.sin(lstm.cell(w_h, xp, lstm.State(c, h)).h))  # noqa: E731
  with lstm.matmul_dtypes(recurrent="bfloat16"):
    out = lstm.cell(w_h, xp, lstm.State(c, h))
    d_w_h, d_xp, d_h = jax.grad(f, argnums=(0, 1, 2))(w_h, xp, h)
  ref = lstm.cell(rnd(w_h), xp, lstm.State(c, rnd(h)))
  np.testing.assert_allclose(out.h, ref.h, rtol=1e-5, atol=1e-6)
  assert not np.allclose(out.h, lstm.cell(w_h, xp, lstm.State(c, h)).h, rtol=1e-7, atol=1e-7)
  assert d_w_h.dtype == jnp.float32
  np.testing.assert_allclose(d_w_h, h.T @ d_xp, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(d_h, rnd(d_xp) @ rnd(w_h).T, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("ragged", [False, True])
@pytest.mark.parametrize("dtypes", [{}, {"inputs": "bfloat16", "recurrent": "bfloat16"}])
def test_narrow_inputs_projected_inside_the_step(dtypes, ragged):
  """`run_layer` projects an input narrower than the layer (an encoder's one-hot steps) inside
  the scan's step: the same outputs and gradients (x's too) as projecting all steps first,
  bit-equal for one-hot inputs; where x is data (not differentiated) no matmul forms its
  cotangent; a wide input keeps the projection outside."""
  t, b, d, h = 7, 5, 3, 8
  k = jax.random.split(jax.random.key(4), 5)
  w = lstm.LSTMWeights(jax.random.normal(k[0], (d + h, 4 * h)), jax.random.normal(k[1], (4 * h,)))
  x = jax.random.normal(k[2], (t, b, d))
  one_hot = jax.nn.one_hot(jax.random.randint(k[3], (t, b), 0, d), d)
  state = lstm.State(jax.random.normal(k[4], (b, h)), jnp.zeros((b, h)))
  mask = jnp.arange(t)[:, None] < jnp.array([7, 3, 1, 6, 0])[None, :] if ragged else None
  hoisted = lambda w, x: lstm.scan_layer(w, lstm.project(w, x), state, mask)  # noqa: E731
  inside = lambda w, x: lstm.run_layer(w, x, state, mask)  # noqa: E731

  def loss(run, w, x):
    hs, fin = run(w, x)
    return jnp.sum(jnp.sin(hs)) + jnp.sum(fin.c ** 2) - jnp.sum(fin.h)

  with lstm.matmul_dtypes(**dtypes):
    for xs in (x, one_hot):
      for argnums in ((0, 1), 0):  # x differentiated, and x as data
        grad = lambda run: jax.value_and_grad(functools.partial(loss, run), argnums)  # noqa: E731
        ours, ref = jax.jit(grad(inside))(w, xs), jax.jit(grad(hoisted))(w, xs)
        for a, r in zip(jax.tree.leaves(ours), jax.tree.leaves(ref)):
          np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-5)
        assert flops.jaxpr_flops(grad(inside), w, xs) == flops.jaxpr_flops(grad(hoisted), w, xs)
    np.testing.assert_array_equal(jax.jit(inside)(w, one_hot)[0], jax.jit(hoisted)(w, one_hot)[0])
    calls = lambda f, w, x: sum("custom_vjp" in e.primitive.name  # noqa: E731
                                for e in jax.make_jaxpr(f)(w, x).eqns)
    assert calls(inside, w, x) == 1  # the scan alone: nothing projected before it
    wide = jax.random.normal(k[2], (t, b, h))
    w_wide = lstm.LSTMWeights(jax.random.normal(k[0], (2 * h, 4 * h)), w.bias)
    assert calls(inside, w_wide, wide) == 2 and calls(hoisted, w, x) == 2
    np.testing.assert_array_equal(inside(w_wide, wide)[0], hoisted(w_wide, wide)[0])


@pytest.mark.parametrize("width", [24, 32])  # projected inside the step, and before the scan
@CPU_HLO
def test_bfloat16_backward_compiles_to_bfloat16_matmuls_written_in_place(width):
  """Under `matmul_dtypes("bfloat16", "bfloat16")` (train.compute_dtype) every matmul of a
  layer's forward and backward pass, weight gradients included, reaches XLA with bfloat16
  operands (a transposed operand made XLA convert both back to float32), and the backward
  scan's stacked bfloat16 dg_t are written in place (a bfloat16 dynamic-update-slice made
  XLA's CPU backend convert the whole `[T, B, 4H]` array at every step)."""
  t, b, h = 6, 16, 32
  k = jax.random.split(jax.random.key(5), 2)
  w = lstm.LSTMWeights(jax.random.normal(k[0], (width + h, 4 * h)), jnp.zeros((4 * h,)))
  x = jax.random.normal(k[1], (t, b, width))

  def loss(w, x):
    with lstm.matmul_dtypes("bfloat16", "bfloat16"):
      return jnp.sum(jnp.sin(lstm.run_layer(w, x, lstm.zero_state(b, h))[0]))

  hlo = jax.jit(jax.grad(loss, argnums=(0, 1))).lower(w, x).compile().as_text()
  dtypes = dict(re.findall(r"%([\w.-]+) = (\w+)\[", hlo))  # instruction names are unique
  dtypes.update(re.findall(r"([\w.-]+): (\w+)\[", hlo))  # and computations' parameters
  dots = re.findall(r"= (\w+)\[[^\]]*\]\S* dot\(%([\w.-]+), %([\w.-]+)\)", hlo)
  assert len(dots) >= 4  # h·W_hᵀ, dg·W_h, Σ hᵀdg, Σ xᵀdg at least
  for out, lhs, rhs in dots:
    assert (out, dtypes[lhs], dtypes[rhs]) == ("f32", "bf16", "bf16"), (lhs, rhs)
  assert not re.search(r"dynamic-update-slice\(%convert|convert\(%dynamic.update.slice", hlo)
  # the dg_t stacked as bfloat16 bits where only weight gradients and x's cotangent take them
  stacked = re.findall(rf"= (\w+)\[{t},{b},{4 * h}\]\S* dynamic-update-slice\(", hlo)
  assert stacked and ("u16" in stacked) == (width < h), stacked


@pytest.mark.parametrize("width", [5, 40])
@CPU_HLO
def test_float32_backward_writes_the_gates_cotangents_over_their_activations(width):
  """In float32 the backward loop writes each dg_t over the gate activations a_t it was
  computed from, and the forward writes a_t over the projected inputs x_t where it is given
  them: one `[T, B, 4H]` buffer in all, none copied (a second one for the dg_t cost a copy of
  zeros; reading a_t from the buffer being overwritten made XLA copy it whole twice per step:
  1.7x the step time of cat-mel_2bar_small at batch 512)."""
  t, b, h = 6, 16, 32
  k = jax.random.split(jax.random.key(7), 2)
  w = lstm.LSTMWeights(jax.random.normal(k[0], (width + h, 4 * h)), jnp.zeros((4 * h,)))
  x = jax.random.normal(k[1], (t, b, width))
  mask = jnp.arange(t)[:, None] < jnp.arange(b)[None, :] % t + 1

  def loss(w, x):
    return jnp.sum(jnp.sin(lstm.run_layer(w, x, lstm.zero_state(b, h), mask)[0]))

  hlo = jax.jit(jax.grad(loss, argnums=(0, 1))).lower(w, x).compile().as_text()
  made = re.findall(rf"%([\w.-]+) = f32\[{t},{b},{4 * h}\]\S* (\w[\w-]*)\(", hlo)  # anywhere
  assert not [name for name, op in made if op == "copy"], made
  # projected inputs (a wide input) are themselves overwritten by the activations: no buffer
  # is filled with zeros; an input projected inside the step leaves one for the activations
  zeroed = [name for name, _ in made if name.startswith("wrapped_broadcast")]  # zeros
  assert len(zeroed) == (0 if width >= h else 1), made


def test_bfloat16_keeps_the_cotangent_of_projected_inputs_float32():
  """Under `matmul_dtypes("bfloat16", "bfloat16")` the cotangent a layer hands back to its
  projected inputs `[T, B, 4H]` is float32, as differentiating the step-by-step cell gives it:
  whatever else built them (a decoder's conditioning projection, in float32) is not rounded."""
  t, b, h = 5, 3, 8
  k = jax.random.split(jax.random.key(6), 3)
  w = lstm.LSTMWeights(jax.random.normal(k[0], (h + h, 4 * h)), jnp.zeros((4 * h,)))
  x_proj = jax.random.normal(k[1], (t, b, 4 * h))
  state = lstm.State(jax.random.normal(k[2], (b, h)), jnp.zeros((b, h)))
  mask = jnp.ones((t, b), bool)
  loss = lambda run, xp: jnp.sum(jnp.sin(run(w, xp, state, mask)[0]))  # noqa: E731
  with lstm.matmul_dtypes("bfloat16", "bfloat16"):
    ours = jax.grad(functools.partial(loss, lstm.scan_layer))(x_proj)
    ref = jax.grad(functools.partial(loss, _reference))(x_proj)
  assert ours.dtype == jnp.float32
  np.testing.assert_allclose(ours, ref, rtol=2e-5, atol=2e-6)


@CPU_HLO
def test_add_every_step_sums_the_cotangent_over_steps_without_reducing_the_leading_axis():
  """`add_every_step` (a teacher-forced decoder's conditioning, added at every step) has the
  gradient of `xs + c[None]`, and its c-cotangent compiles to no reduction of the leading axis
  alone (XLA's CPU backend ran that at about 1 GB/s: 138 ms of a teacher-forced
  cat-mel_2bar_small step at batch 512) and to no dot (FLOPs counters would count it)."""
  k = jax.random.split(jax.random.key(8), 3)
  xs, c = jax.random.normal(k[0], (7, 5, 12)), jax.random.normal(k[1], (5, 12))
  u = jax.random.normal(k[2], (7, 5, 12))
  loss = lambda add, xs, c: jnp.sum(u * jnp.sin(add(xs, c)))  # noqa: E731
  plain = lambda xs, c: xs + c[None]  # noqa: E731
  ours = jax.grad(functools.partial(loss, lstm.add_every_step), argnums=(0, 1))(xs, c)
  ref = jax.grad(functools.partial(loss, plain), argnums=(0, 1))(xs, c)
  for a, b in zip(ours, ref):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
  grad_c = lambda add: jax.jit(jax.grad(functools.partial(loss, add), argnums=1))  # noqa: E731
  reduces_t = r"= f32\[5,12\]\S* reduce\(.*dimensions=\{0\}"  # [7, 5, 12] summed over axis 0
  assert re.search(reduces_t, grad_c(plain).lower(xs, c).compile().as_text())  # the judge
  hlo = grad_c(lstm.add_every_step).lower(xs, c).compile().as_text()
  assert not re.search(reduces_t, hlo) and " dot(" not in hlo
  assert flops.jaxpr_flops(grad_c(lstm.add_every_step), xs, c) == 0
