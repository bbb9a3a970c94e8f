"""The TF variables Magenta's MusicVAE builds for a config, and how to read a checkpoint's list.

Our parameter paths are Magenta's variable names joined with '/', so a config's expected variables
(name -> shape) are derived here from the config alone, as Magenta's `lstm_models` builds them:

* flat encoder: `encoder/cell_l/bidirectional_rnn/{fw,bw}/multi_rnn_cell/cell_0/lstm_cell/*`
  (input Din, then 2·E of the layer below), `encoder/{mu,sigma}` [2·E_last, Z];
* hierarchical encoder: the same stack under `encoder/hierarchical_level_{0,1}/` (level 1 reads the
  2·E_last bar embeddings);
* flat decoder: `decoder/multi_rnn_cell/cell_l/lstm_cell/*` (cell 0 reads [previous output ‖ z]),
  `decoder/z_to_initial_state` [Z, 2·ΣH], `decoder/output_projection` [H_last, ΣDout];
* hierarchical decoder: the conductor `decoder/hierarchical_level_0/cell_k/lstm_cell/*` (input
  zeros [B, 1]) and `.../initial_state` [Z, 2·ΣH]; the core `core_decoder/decoder/...` as a flat
  decoder conditioned on the conductor's output (trio: `core_decoder/core_decoder_k/decoder/...`).

Every LSTM kernel is [input + units, 4·units] with gate blocks i, j, f, o; biases exclude the
forget bias +1.0. Besides these, Magenta's checkpoints hold `global_step` and Adam's state
(`<var>/Adam`, `<var>/Adam_1`, `beta1_power`, `beta2_power`).
"""

from __future__ import annotations

import re

OPTIMIZER_SUFFIXES = ("/Adam", "/Adam_1")
OPTIMIZER_GLOBALS = ("beta1_power", "beta2_power")
GLOBAL_STEP = "global_step"


def _lstm(prefix: str, in_dim: int, units: int) -> dict:
  return {f"{prefix}lstm_cell/kernel": (in_dim + units, 4 * units),
          f"{prefix}lstm_cell/bias": (4 * units,)}


def _dense(prefix: str, in_dim: int, out_dim: int) -> dict:
  return {f"{prefix}/kernel": (in_dim, out_dim), f"{prefix}/bias": (out_dim,)}


def _bidi_stack(prefix: str, in_dim: int, sizes) -> tuple[dict, int]:
  out, d = {}, in_dim
  for l, units in enumerate(sizes):
    for direction in ("fw", "bw"):
      out |= _lstm(f"{prefix}cell_{l}/bidirectional_rnn/{direction}/multi_rnn_cell/cell_0/", d,
                   units)
    d = 2 * units
  return out, d


def _core(prefix: str, depth: int, cond_dim: int, sizes) -> dict:
  out, d = {}, depth + cond_dim
  for l, units in enumerate(sizes):
    out |= _lstm(f"{prefix}multi_rnn_cell/cell_{l}/", d, units)
    d = units
  out |= _dense(f"{prefix}z_to_initial_state", cond_dim, 2 * sum(sizes))
  out |= _dense(f"{prefix}output_projection", sizes[-1], depth)
  return out


def expected_variables(model_cfg, input_depth: int, stream_depths) -> dict[str, tuple]:
  """name -> shape of every trainable variable Magenta builds for a config's `model` section."""
  z = model_cfg.z_size
  enc, dec = list(model_cfg.enc_rnn_size), list(model_cfg.dec_rnn_size)
  out: dict[str, tuple] = {}
  if model_cfg.encoder == "hierarchical":
    level0, d = _bidi_stack("encoder/hierarchical_level_0/", input_depth, enc)
    level1, d = _bidi_stack("encoder/hierarchical_level_1/", d, enc)
    out |= level0 | level1
  else:
    stack, d = _bidi_stack("encoder/", input_depth, enc)
    out |= stack
  out |= _dense("encoder/mu", d, z) | _dense("encoder/sigma", d, z)
  if model_cfg.decoder == "hierarchical":
    c = 1
    for k, units in enumerate(dec):
      out |= _lstm(f"decoder/hierarchical_level_0/cell_{k}/", c, units)
      c = units
    out |= _dense("decoder/hierarchical_level_0/initial_state", z, 2 * sum(dec))
    if model_cfg.core_per_stream:
      for k, depth in enumerate(stream_depths):
        out |= _core(f"core_decoder/core_decoder_{k}/decoder/", depth, c, dec)
    else:
      out |= _core("core_decoder/decoder/", sum(stream_depths), c, dec)
  else:
    out |= _core("decoder/", sum(stream_depths), z, dec)
  return out


def expected_for(cfg) -> dict[str, tuple]:
  """`expected_variables` for a whole config (its converter gives the depths)."""
  from mvae_jax.music import converters  # noqa: PLC0415
  conv = converters.get_converter(cfg.data.converter)
  return expected_variables(cfg.model, conv.input_depth, conv.output_depths)


def is_optimizer_variable(name: str) -> bool:
  return name in OPTIMIZER_GLOBALS or name.endswith(OPTIMIZER_SUFFIXES)


def split_checkpoint(shapes: dict[str, tuple]) -> tuple[dict, dict, dict]:
  """(model variables, optimizer variables, other) of a checkpoint's name -> shape."""
  model, opt, other = {}, {}, {}
  for n, s in shapes.items():
    if is_optimizer_variable(n):
      opt[n] = s
    elif n == GLOBAL_STEP:
      other[n] = s
    elif n.startswith(("encoder/", "decoder/", "core_decoder/")):
      model[n] = s
    else:
      other[n] = s
  return model, opt, other


def infer_model(shapes: dict[str, tuple]) -> dict:
  """The `model` settings a checkpoint's variables imply (z_size, enc/dec sizes, structure)."""
  def sizes(pattern):
    found = {}
    for n, s in shapes.items():
      m = re.fullmatch(pattern, n)
      if m:
        found[int(m.group(1))] = s[0] // 4
    return [found[k] for k in sorted(found)]

  hier_enc = any(n.startswith("encoder/hierarchical_level_") for n in shapes)
  hier_dec = any(n.startswith("decoder/hierarchical_level_0/") for n in shapes)
  enc_prefix = "encoder/hierarchical_level_0/" if hier_enc else "encoder/"
  enc = sizes(re.escape(enc_prefix) + r"cell_(\d+)/bidirectional_rnn/fw/multi_rnn_cell/cell_0/"
              r"lstm_cell/bias")
  if hier_dec:
    dec = sizes(r"decoder/hierarchical_level_0/cell_(\d+)/lstm_cell/bias")
  else:
    dec = sizes(r"decoder/multi_rnn_cell/cell_(\d+)/lstm_cell/bias")
  z = shapes.get("encoder/mu/bias", (None,))[0]
  return {"encoder": "hierarchical" if hier_enc else "bidirectional",
          "decoder": "hierarchical" if hier_dec else "flat", "z_size": z, "enc_rnn_size": enc,
          "dec_rnn_size": dec,
          "core_per_stream": any(n.startswith("core_decoder/core_decoder_") for n in shapes)}


def matching_experiments(model_shapes: dict[str, tuple]) -> list[str]:
  """The experiments in `experiments/` whose expected variables equal a checkpoint's."""
  from mvae_jax.experiments import common  # noqa: PLC0415
  out = []
  for name in common.names():
    try:
      cfg = common.load(name)
      exp = expected_for(cfg)
    except Exception:  # noqa: BLE001  (a broken experiment file is not this checkpoint's fault)
      continue
    if exp == model_shapes:
      out.append(name)
  return out


def override_hint(model_cfg, inferred: dict) -> str:
  """`--config.model.k=v` flags that turn `model_cfg` into the checkpoint's structure."""
  flags = []
  for k in ("encoder", "decoder", "z_size", "enc_rnn_size", "dec_rnn_size", "core_per_stream"):
    v = inferred.get(k)
    if v in (None, []):
      continue
    cur = model_cfg[k]
    cur = list(cur) if isinstance(cur, (list, tuple)) else cur
    if cur != v:
      text = str(v).replace(" ", "") if isinstance(v, list) else str(v).lower() \
          if isinstance(v, bool) else str(v)
      flags.append(f"--config.model.{k}={text}")
  return " ".join(flags)
