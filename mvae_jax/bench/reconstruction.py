"""The reconstruction table (paper Table 1): per-step accuracy under teacher forcing and under
free-running argmax decoding from the posterior mean, r_loss and KL, per held-out window.

Definitions (also in each report):
* teacher-forced accuracy of a window: share of its steps where argmax of the logits, given
  z = μ and the true previous tokens, equals the target (every stream right);
* sampled accuracy: the same for the sequence decoded free-running from z = μ, each step fed the
  model's own argmax token (temperature 0);
* gap = teacher-forced − sampled, per window;
* r_loss: NLL summed over the window's steps (nats), teacher-forced, z = μ; KL bits:
  KL(N(μ, σ²) ‖ N(0, I)) / ln 2.
Means come with 95% intervals over windows (mean ± 1.96·sd/√n).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from mvae_jax import evaluate
from mvae_jax.train import objective as obj


def mean_ci(x) -> dict:
  """{'mean', 'lo', 'hi', 'n'}: the mean of `x` `[N]` and its 95% normal interval."""
  x = np.asarray(x, np.float64)
  n = len(x)
  m = float(x.mean()) if n else float("nan")
  half = 1.96 * float(x.std(ddof=1)) / math.sqrt(n) if n > 1 else float("nan")
  return {"mean": m, "lo": m - half, "hi": m + half, "n": n}


def step_accuracy(predicted: np.ndarray, labels: np.ndarray) -> np.ndarray:
  """`[N, T, S]` each -> `[N]`: share of steps where every stream is right."""
  return np.all(np.asarray(predicted) == np.asarray(labels), axis=-1).mean(axis=1)


def _forward_fn(model, conv):
  depths = tuple(conv.output_depths)

  def fn(params, labels, key):
    t = labels.shape[1]
    lengths = jnp.full((labels.shape[0],), t)
    mu, sigma = model.apply({"params": params}, conv.labels_to_inputs(labels, jnp), lengths,
                            method="encode")
    logits = model.apply({"params": params}, mu, labels, method="teacher_logits")
    sampled, _ = model.apply({"params": params}, mu, key, 0.0, t, method="sample")
    r = obj.reconstruction_loss(logits, labels, lengths, depths)
    kl = obj.kl_divergence(mu, sigma) / math.log(2.0)
    return obj.stream_argmax(logits, depths), sampled, r, kl

  return jax.jit(fn)


def decode_windows(tm, labels: np.ndarray, batch_size: int = 64, seed: int = 0) -> dict:
  """A trained model (`generate.TrainedModel`) on windows `[N, T, S]` -> per window arrays:
  teacher_forced, sampled `[N, T, S]` predictions; r_loss, kl_bits `[N]`."""
  fn = _forward_fn(tm.model, tm.conv)
  outs = []
  for a in range(0, len(labels), batch_size):
    chunk = labels[a:a + batch_size].astype(np.int32)
    n = len(chunk)
    if n < batch_size:  # one compiled shape: pad the last batch
      chunk = np.concatenate([chunk, np.zeros((batch_size - n,) + chunk.shape[1:], np.int32)])
    res = jax.device_get(fn(tm.params, jnp.asarray(chunk), jax.random.key(seed + a)))
    outs.append([np.asarray(r)[:n] for r in res])
  tf, sampled, r, kl = (np.concatenate(parts) for parts in zip(*outs))
  return {"teacher_forced": tf, "sampled": sampled, "r_loss": r, "kl_bits": kl}


def table_row(decoded: dict, labels: np.ndarray, train_labels: np.ndarray, kinds) -> dict:
  """One row of the table from `decode_windows`' output: means with 95% intervals, onset
  accuracies, and the trivial baselines (evaluate.reconstruction_report) on the same windows."""
  tf = step_accuracy(decoded["teacher_forced"], labels)
  sa = step_accuracy(decoded["sampled"], labels)
  base = evaluate.reconstruction_report(decoded["sampled"], labels, train_labels, kinds)
  return {
      "teacher_forced_accuracy": mean_ci(tf),
      "sampled_accuracy": mean_ci(sa),
      "gap": mean_ci(tf - sa),
      "r_loss": mean_ci(decoded["r_loss"]),
      "kl_bits": mean_ci(decoded["kl_bits"]),
      "teacher_forced_onset_accuracy": evaluate.accuracies(decoded["teacher_forced"], labels,
                                                           kinds)["onset"],
      "sampled_onset_accuracy": base["model"]["onset"],
      "baselines": {k: base[k] for k in ("majority_class", "repeat_previous")},
      "windows": int(len(labels)),
      # per window, in the suite's window order (the same for every config): paired comparisons
      "per_window": {"teacher_forced": np.round(tf, 6).tolist(),
                     "sampled": np.round(sa, 6).tolist()},
  }


def paired_difference(row_a: dict, row_b: dict, key: str) -> dict:
  """mean_ci of a − b per window, for `key` 'sampled' or 'gap' (teacher-forced − sampled) of two
  table rows made on the same windows."""
  def per(row):
    w = row["per_window"]
    sa = np.asarray(w["sampled"])
    return sa if key == "sampled" else np.asarray(w["teacher_forced"]) - sa
  a, b = per(row_a), per(row_b)
  if a.shape != b.shape:
    raise ValueError("rows made on different windows cannot be compared pairwise")
  return mean_ci(a - b)


__all__ = ["mean_ci", "step_accuracy", "decode_windows", "table_row", "paired_difference"]
