"""`mvae export --format magenta-js`: a checkpoint `@magenta/music`'s `MusicVAE(url)` loads.

    OUT/config.json            {"type": "MusicVAE", "dataConverter": {"type": ..., "args": ...}}
    OUT/weights_manifest.json  [{"paths": [...shards], "weights": [{name, shape, dtype, ...}]}]
    OUT/group1-shardKofN.bin   the weights in manifest order, cut into <= 4 MiB files

What magenta.js 1.23 builds (music/src/music_vae/model.ts, `initialize`) decides what can be
exported, and `check_structure` refuses the rest with one line before anything is written:
* without `numSegments` it builds `BidirectionalLstmEncoder` from exactly one BiLSTM layer
  (`encoder/cell_0/...`; more is an error there) and a flat decoder `decoder/...`;
* with `numSegments` it builds a 2-level `HierarchicalEncoder` whose levels read only `cell_0`
  (extra layers would be ignored *silently*, giving a wrong μ) and a `ConductorDecoder`
  over `core_decoder/decoder/...` (or `core_decoder/core_decoder_k/...` for a trio);
* so flat-*_16bar (2 encoder layers), hierdec-* (flat encoder with a conductor) and a flat trio
  (magenta.js splits a TrioConverter model into 3 decoders) cannot load.
magenta.js adds the forget bias +1.0 at run time and ignores sequence lengths, as ours does for
full windows. `encoder/sigma` is left out (magenta.js uses μ only).
"""

from __future__ import annotations

import json
import os

import numpy as np

SHARD_BYTES = 4 * 1024 * 1024  # tensorflowjs's shard size
QUANTIZE = ("uint8", "uint16", "float16")


class MagentaJsError(ValueError):
  """A model magenta.js cannot load correctly; str() is one line saying why."""


def check_structure(cfg, conv) -> None:
  """Raises MagentaJsError when magenta.js 1.23 would not build this model correctly."""
  m = cfg.model
  enc = list(m.enc_rnn_size)
  name = cfg.name
  if conv.kind not in ("melody", "drums", "trio"):
    raise MagentaJsError(f"{name}: converter {conv.kind!r} has no magenta.js counterpart")
  if m.encoder == "bidirectional" and m.decoder == "hierarchical":
    raise MagentaJsError(
        f"{name}: magenta.js cannot load a hierarchical decoder with a flat encoder (hierdec-*): "
        "it builds the conductor only together with the 2-level hierarchical encoder")
  if m.encoder == "hierarchical" and m.decoder != "hierarchical":
    raise MagentaJsError(f"{name}: magenta.js builds a hierarchical encoder only with a "
                         "hierarchical (conductor) decoder")
  if len(enc) != 1:
    what = "each hierarchical encoder level" if m.encoder == "hierarchical" else "the encoder"
    consequence = ("it would ignore the extra layers silently and give a wrong mu"
                   if m.encoder == "hierarchical" else
                   "it stops with 'Only single-layer bidirectional encoders are supported'")
    raise MagentaJsError(f"{name}: magenta.js supports one bidirectional LSTM layer in {what}, "
                         f"this model has {len(enc)} ({consequence})")
  if m.decoder == "flat" and conv.kind == "trio":
    raise MagentaJsError(f"{name}: magenta.js splits a Trio model into 3 decoders "
                         "(core_decoder_k); a flat trio decoder has one")
  if m.decoder == "hierarchical":
    u, l = m.level_lengths
    if u * l != conv.window_steps:
      raise MagentaJsError(f"{name}: level_lengths {u}x{l} != {conv.window_steps} steps")
    if conv.kind == "trio" and not m.core_per_stream:
      raise MagentaJsError(f"{name}: magenta.js decodes a trio with one core decoder per "
                           "instrument (core_per_stream)")
    if conv.kind != "trio" and m.core_per_stream:
      raise MagentaJsError(f"{name}: core_per_stream is only for trio models")


def converter_spec(cfg, conv) -> dict:
  """config.json's dataConverter for our converter (magenta.js core/data.ts)."""
  args: dict = {"numSteps": conv.window_steps}
  if conv.kind == "melody":
    spec = {"type": "MelodyConverter",
            "args": args | {"minPitch": conv.min_pitch, "maxPitch": conv.max_pitch}}
  elif conv.kind == "drums":
    spec = {"type": "DrumsConverter", "args": args}
  else:
    spec = {"type": "TrioConverter",
            "args": args | {"melArgs": {"minPitch": 21, "maxPitch": 108},
                            "bassArgs": {"minPitch": 21, "maxPitch": 108}, "drumsArgs": {}}}
  if cfg.model.decoder == "hierarchical":
    spec["args"]["numSegments"] = int(cfg.model.level_lengths[0])
  return {"type": "MusicVAE", "dataConverter": spec}


def exported_names(flat: dict) -> list[str]:
  return sorted(n for n in flat if not n.startswith("encoder/sigma/"))


def quantize(a: np.ndarray, dtype: str) -> tuple[bytes, dict, np.ndarray]:
  """(bytes, manifest "quantization" entry, the float32 values magenta.js will see)."""
  a = np.asarray(a, np.float32)
  if dtype == "float16":
    h = a.astype(np.float16)
    return h.tobytes(), {"dtype": "float16"}, h.astype(np.float32)
  qmax = np.iinfo(dtype).max
  lo, hi = float(a.min()), float(a.max())
  scale = (hi - lo) / qmax if hi > lo else 1.0
  q = np.clip(np.round((a.astype(np.float64) - lo) / scale), 0, qmax).astype(dtype)
  deq = (q.astype(np.float64) * scale + lo).astype(np.float32)
  return q.tobytes(), {"dtype": dtype, "min": lo, "scale": scale}, deq


def write(out_dir: str, cfg, conv, flat: dict, quantize_dtype: str | None = None) -> dict:
  """Writes the export into the (existing, empty) folder `out_dir`; returns
  {"files": [...], "bytes": n, "dequantized": name -> float32 array magenta.js will use}."""
  if quantize_dtype not in (None, *QUANTIZE):
    raise MagentaJsError(f"--quantize {quantize_dtype}: choose one of {', '.join(QUANTIZE)}")
  names = exported_names(flat)
  weights, blobs, seen = [], [], {}
  for n in names:
    a = np.ascontiguousarray(np.asarray(flat[n], np.float32))
    entry = {"name": n, "shape": list(a.shape), "dtype": "float32"}
    if quantize_dtype:
      raw, qinfo, deq = quantize(a, quantize_dtype)
      entry["quantization"] = qinfo
    else:
      raw, deq = a.astype("<f4").tobytes(), a
    seen[n] = deq
    weights.append(entry)
    blobs.append(raw)
  data = b"".join(blobs)
  n_shards = max(1, -(-len(data) // SHARD_BYTES))
  paths = [f"group1-shard{k + 1}of{n_shards}.bin" for k in range(n_shards)]
  for k, p in enumerate(paths):
    with open(os.path.join(out_dir, p), "wb") as f:
      f.write(data[k * SHARD_BYTES:(k + 1) * SHARD_BYTES])
  with open(os.path.join(out_dir, "weights_manifest.json"), "w") as f:
    json.dump([{"paths": paths, "weights": weights}], f, indent=1)
  with open(os.path.join(out_dir, "config.json"), "w") as f:
    json.dump(converter_spec(cfg, conv), f, indent=1)
  return {"files": ["config.json", "weights_manifest.json"] + paths, "bytes": len(data),
          "dequantized": seen}
