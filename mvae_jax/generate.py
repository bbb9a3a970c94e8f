"""Using a trained model: encode, decode, sample, reconstruct, interpolate.

    model = TrainedModel.load("runs/mel2")            # a workdir (latest checkpoint) or workdir/step
    seqs = model.sample(4, temperature=0.5, seed=0)   # -> NoteSequences
    z, mu, sigma = model.encode([ns])                 # the first window of each input by default
    model.windows(ns)                                 # how many windows an input has
    model.interpolate(a, b, num_steps=7)              # slerp on mu, endpoints included

Batching is internal (any number of inputs). An input with several windows is not an error:
`encode(..., window=k)` picks one (Magenta raised here, which broke decode-then-encode); a
sequence that starts at time 0 and is one window long, such as `decode`'s output, is encoded as
it is (`converter.encode_window`).
"""

from __future__ import annotations

import os
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mvae_jax import checkpoints
from mvae_jax import model as model_lib
from mvae_jax.music._note_seq import NoteSequence


class ModelError(ValueError):
  """A model or input that cannot be used; str() is one line with the fix."""


def _batches(n: int, size: int):
  for start in range(0, n, size):
    yield start, min(start + size, n)


def _padded(x: np.ndarray, size: int) -> np.ndarray:
  """x `[n, ...]` with n <= size, padded with copies of its last row to `[size, ...]`: every
  call then has one shape, compiled once (a short last chunk, 8 samples, 2 inputs)."""
  return np.concatenate([x, np.repeat(x[-1:], size - len(x), axis=0)]) if len(x) < size else x


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
  """Spherical interpolation between vectors a and b (linear when they are parallel)."""
  na, nb = a / np.linalg.norm(a), b / np.linalg.norm(b)
  omega = np.arccos(np.clip(np.dot(na, nb), -1.0, 1.0))
  if omega < 1e-6:
    return (1 - t) * a + t * b
  return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


class TrainedModel:
  """A trained MusicVAE and its converter, its parameters on this host's first device.

  Holds parameters only: no optimizer, no training state (see `checkpoints.restore_params`).
  """

  def __init__(self, cfg, params, step: int, batch_size: int = 64, workdir: str = ""):
    self.cfg = cfg
    self.step = step
    self.conv = model_lib.converter_of(cfg)
    self.model = model_lib.model_of(cfg, self.conv)
    self.params = params
    self.batch_size = batch_size
    self.workdir = workdir
    self._encode = jax.jit(lambda p, x, l: self.model.apply({"params": p}, x, l, method="encode"))
    self._sample = jax.jit(
        lambda p, z, k, t: self.model.apply({"params": p}, z, k, t, self.conv.window_steps,
                                            method="sample"))

  @classmethod
  def load(cls, workdir_or_checkpoint: str, batch_size: int = 64) -> "TrainedModel":
    """From a workdir (its latest checkpoint), `workdir/checkpoints/<step>`, or an inference
    bundle (`mvae export --format bundle`)."""
    from mvae_jax.interop import bundle as bundle_lib  # noqa: PLC0415
    full = os.path.abspath(os.path.expanduser(workdir_or_checkpoint))
    if bundle_lib.is_bundle(full):
      try:
        b = bundle_lib.read(full)
      except bundle_lib.BundleError as e:
        raise ModelError(str(e)) from None
      return cls(b.cfg, b.params, b.step, batch_size, full)
    path, step = checkpoints.resolve(workdir_or_checkpoint)
    try:
      out = cls(checkpoints.read_config(path), None, -1, batch_size, path)
      device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
      abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=device),
                              model_lib.abstract_params(out.model, out.conv))
      out.params, out.step = checkpoints.restore_params(path, abstract, step)
    except checkpoints.MismatchError as e:
      raise ModelError(f"{e}; its {checkpoints.CONFIG_FILE} describes another model than its "
                       "checkpoints: give the --workdir of the run that wrote them") from None
    except (checkpoints.CheckpointError, ValueError) as e:
      raise ModelError(str(e)) from None
    return out

  # --- encoding ----------------------------------------------------------------------------

  def windows(self, ns: NoteSequence) -> np.ndarray:
    """Labels `[N, T, S]` of every window of `ns` this model can encode."""
    labels = self.conv.to_labels(ns)
    if len(labels) == 0 and abs(ns.total_time - self._window_seconds(ns)) < 1e-6:
      labels = self.conv.encode_window(ns)[None]  # exactly one window long, e.g. decode's output
    return labels

  def _window_seconds(self, ns: NoteSequence) -> float:
    qpm = ns.tempos[0].qpm if ns.tempos else 120.0
    return self.conv.window_steps / self.conv.steps_per_quarter * 60.0 / qpm

  def _labels(self, seqs: Sequence[NoteSequence], window: int | Sequence[int]) -> np.ndarray:
    out = []
    for i, ns in enumerate(seqs):
      w = self.windows(ns)
      k = window if isinstance(window, int) else window[i]
      if len(w) == 0:
        reason = self.conv.extract(ns).reason
        raise ModelError(f"input {i} ({ns.filename or ns.id or 'sequence'}): no "
                         f"{self.conv.slice_bars}-bar {self.conv.kind} window ({reason}); give "
                         f"{self.conv.kind} music of at least {self.conv.slice_bars} bars in 4/4")
      if not 0 <= k < len(w):
        raise ModelError(f"input {i} has {len(w)} windows; window={k} is out of range")
      out.append(w[k])
    return np.stack(out).astype(np.int32)

  def encode_labels(self, labels: np.ndarray):
    """labels `[N, T, S]` -> (z, mu, sigma) `[N, z]` (z sampled from the posterior, seed 0)."""
    mus, sigmas = [], []
    for a, b in _batches(len(labels), self.batch_size):
      chunk = jnp.asarray(_padded(np.asarray(labels[a:b]), self.batch_size))
      x = self.conv.labels_to_inputs(chunk, jnp)
      mu, sigma = self._encode(self.params, x, jnp.full((len(chunk),), labels.shape[1]))
      mus.append(np.asarray(mu)[:b - a])
      sigmas.append(np.asarray(sigma)[:b - a])
    mu, sigma = np.concatenate(mus), np.concatenate(sigmas)
    eps = np.asarray(jax.random.normal(jax.random.key(0), mu.shape))
    return mu + sigma * eps, mu, sigma

  def encode(self, seqs: Sequence[NoteSequence], window: int | Sequence[int] = 0):
    """NoteSequences -> (z, mu, sigma) `[N, z]`; `window` picks among an input's windows."""
    return self.encode_labels(self._labels(seqs, window))

  # --- decoding ----------------------------------------------------------------------------

  def decode_labels(self, z: np.ndarray, temperature: float = 0.5, seed: int = 0) -> np.ndarray:
    """z `[N, z]` -> labels `[N, T, S]` (temperature 0: argmax)."""
    out = []
    for a, b in _batches(len(z), self.batch_size):
      chunk = _padded(np.asarray(z[a:b], np.float32), self.batch_size)
      toks, _ = self._sample(self.params, jnp.asarray(chunk),
                             jax.random.fold_in(jax.random.key(seed), a), float(temperature))
      out.append(np.asarray(toks)[:b - a])
    return np.concatenate(out)

  def decode(self, z: np.ndarray, temperature: float = 0.5, seed: int = 0,
             length: int | None = None) -> list[NoteSequence]:
    if length not in (None, self.conv.window_steps):
      raise ModelError(f"length {length}: this model decodes {self.conv.window_steps} steps")
    seqs = [self.conv.to_sequence(l) for l in self.decode_labels(z, temperature, seed)]
    for ns in seqs:  # a window is a window long, even when it ends in silence
      ns.total_time = self._window_seconds(ns)
    return seqs

  def sample(self, n: int, temperature: float = 0.5, seed: int = 0) -> list[NoteSequence]:
    z = np.asarray(jax.random.normal(jax.random.key(seed), (n, self.cfg.model.z_size)))
    return self.decode(z, temperature, seed)

  def reconstruct(self, seqs, temperature: float = 0.0, window=0) -> list[NoteSequence]:
    _, mu, _ = self.encode(seqs, window)
    return self.decode(mu, temperature)

  def interpolate(self, a: NoteSequence, b: NoteSequence, num_steps: int = 7,
                  method: str = "slerp", temperature: float = 0.0, window=(0, 0),
                  seed: int = 0) -> list[NoteSequence]:
    """`num_steps` sequences from A to B (endpoints included), interpolating μ."""
    if num_steps < 2:
      raise ModelError("num_steps must be at least 2 (the endpoints)")
    if method not in ("slerp", "linear"):
      raise ModelError(f"method {method!r}: use slerp or linear")
    _, mu, _ = self.encode([a, b], list(window))
    ts = np.linspace(0.0, 1.0, num_steps)
    f = slerp if method == "slerp" else (lambda x, y, t: (1 - t) * x + t * y)
    z = np.stack([f(mu[0], mu[1], t) for t in ts])
    return self.decode(z, temperature, seed)


  def similar(self, seq: NoteSequence, n: int, similarity: float = 0.8, temperature: float = 0.5,
              seed: int = 0, window: int = 0) -> list[NoteSequence]:
    """n variations of `seq`: z = similarity·μ + (1 − similarity)·ε (as magenta.js)."""
    if not 0.0 <= similarity <= 1.0:
      raise ModelError(f"similarity {similarity}: must be in [0, 1]")
    _, mu, _ = self.encode([seq], window)
    eps = np.asarray(jax.random.normal(jax.random.key(seed), (n, mu.shape[-1])))
    return self.decode(similarity * mu + (1 - similarity) * eps, temperature, seed)

  # --- attribute vectors -------------------------------------------------------------------

  def attribute_vectors(self, labels: np.ndarray) -> np.ndarray:
    """`[5, Z]`: top-quartile minus bottom-quartile mean μ, per attribute of `labels`."""
    from mvae_jax.music import attributes  # noqa: PLC0415
    self._require_melody()
    _, mu, _ = self.encode_labels(labels)
    return attributes.attribute_vectors(mu, attributes.batch_attributes(labels))

  def attribute_table(self, labels: np.ndarray, vectors: np.ndarray,
                      scale: float = 1.0) -> np.ndarray:
    """`[5, 5]`: row i = mean relative change of each attribute when scale·vector i is added to
    the μ of held-out `labels`, both decoded by argmax."""
    from mvae_jax.music import attributes  # noqa: PLC0415
    _, mu, _ = self.encode_labels(labels)
    base = attributes.batch_attributes(self.decode_labels(mu, 0.0))
    rows = [attributes.relative_change(
        base, attributes.batch_attributes(self.decode_labels(mu + scale * v, 0.0)))
            for v in vectors]
    return np.stack(rows)

  def apply_attribute(self, seqs, vector: np.ndarray, scale: float = 1.0, window=0,
                      temperature: float = 0.0, seed: int = 0) -> list[NoteSequence]:
    """μ + scale·vector of each input, decoded at `temperature`."""
    _, mu, _ = self.encode(seqs, window)
    return self.decode(mu + scale * vector, temperature, seed)

  def _require_melody(self):
    if self.conv.kind == "drums":
      raise ModelError(f"{self.cfg.name} is a drum model: the attributes are melodic; use a "
                       "melody or trio model")


__all__ = ["TrainedModel", "ModelError", "slerp"]
