"""`mvae export --format bundle`: a portable inference bundle (parameters only).

    OUT/bundle.json   {"format": "mvae-bundle", "version": 1, "mvae_jax": "...", "step": N,
                       "converter": {...settings}, "parameters": count, "sha256": of params.npz}
    OUT/config.json   the resolved config (as in a training workdir)
    OUT/params.npz    float32 arrays named by parameter path (= Magenta's variable names)

No optimizer state, no data-iterator state, no Orbax: NumPy reads it anywhere. `load(path)` gives
a `generate.TrainedModel`; `mvae export` accepts a bundle as its source.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import numpy as np

FORMAT = "mvae-bundle"
VERSION = 1
MANIFEST = "bundle.json"


class BundleError(ValueError):
  """A bundle that cannot be read; str() is one line."""


@dataclasses.dataclass
class Bundle:
  cfg: object
  flat: dict
  step: int
  manifest: dict

  @property
  def params(self):
    from flax import traverse_util  # noqa: PLC0415
    import jax.numpy as jnp  # noqa: PLC0415
    return traverse_util.unflatten_dict({k: jnp.asarray(v) for k, v in self.flat.items()},
                                        sep="/")


def is_bundle(path: str) -> bool:
  return os.path.isfile(os.path.join(path, MANIFEST))


def _converter_settings(conv) -> dict:
  return {"kind": conv.kind, "window_steps": conv.window_steps, "slice_bars": conv.slice_bars,
          "steps_per_quarter": conv.steps_per_quarter, "input_depth": conv.input_depth,
          "output_depths": list(conv.output_depths)}


def write(out_dir: str, cfg, flat: dict, step: int) -> None:
  """Writes a bundle into the existing, empty folder `out_dir`."""
  import mvae_jax  # noqa: PLC0415
  from mvae_jax.music import converters  # noqa: PLC0415
  conv = converters.get_converter(cfg.data.converter)
  path = os.path.join(out_dir, "params.npz")
  np.savez(path, **{k: np.asarray(v, np.float32) for k, v in sorted(flat.items())})
  with open(path, "rb") as f:
    digest = hashlib.sha256(f.read()).hexdigest()
  manifest = {"format": FORMAT, "version": VERSION, "mvae_jax": mvae_jax.__version__,
              "config": cfg.name, "step": int(step), "converter": cfg.data.converter,
              "converter_settings": _converter_settings(conv),
              "parameters": int(sum(np.asarray(v).size for v in flat.values())),
              "params_sha256": digest}
  with open(os.path.join(out_dir, "config.json"), "w") as f:
    f.write(cfg.to_json(indent=1))
  with open(os.path.join(out_dir, MANIFEST), "w") as f:
    json.dump(manifest, f, indent=1)


def read(path: str) -> Bundle:
  import ml_collections  # noqa: PLC0415

  from mvae_jax.interop import magenta_names  # noqa: PLC0415
  try:
    with open(os.path.join(path, MANIFEST)) as f:
      manifest = json.load(f)
    with open(os.path.join(path, "config.json")) as f:
      cfg = ml_collections.ConfigDict(json.load(f))
  except (OSError, json.JSONDecodeError) as e:
    raise BundleError(f"{path}: not a readable mvae bundle ({e})") from None
  if manifest.get("format") != FORMAT or manifest.get("version", 0) > VERSION:
    raise BundleError(f"{path}: bundle format {manifest.get('format')} version "
                      f"{manifest.get('version')} is not one this mvae_jax reads (version "
                      f"<= {VERSION}); upgrade mvae-jax")
  for k in ("transpose_range", "enc_rnn_size", "dec_rnn_size", "level_lengths"):
    for section in (cfg.data, cfg.model):
      if k in section:
        section[k] = list(section[k])
  p = os.path.join(path, "params.npz")
  try:
    with open(p, "rb") as f:
      raw = f.read()
  except OSError as e:
    raise BundleError(f"{p}: missing ({e.strerror})") from None
  if hashlib.sha256(raw).hexdigest() != manifest.get("params_sha256"):
    raise BundleError(f"{p}: corrupted or truncated (checksum differs from bundle.json)")
  with np.load(p) as z:
    flat = {k: z[k] for k in z.files}
  want = magenta_names.expected_for(cfg)
  got = {k: tuple(v.shape) for k, v in flat.items()}
  if got != want:
    bad = sorted(set(got.items()) ^ set(want.items()))[0][0]
    raise BundleError(f"{path}: parameter {bad} does not fit config {cfg.name}")
  return Bundle(cfg, flat, int(manifest["step"]), manifest)


