"""The interpolation study (paper §5, Fig. 5): latent interpolation against data-space
interpolation, judged by Hamming distance to A and by an n-gram language model's cost.

Definitions (also in each report):
* Hamming distance of x to A: share of the T steps where x differs from A (any stream), so it
  runs from 0 (x = A) to d(A, B);
* latent interpolation at α: decode (argmax) slerp(μ_A, μ_B, α) (or linear), so α = 0 is A's
  reconstruction, not A itself;
* data interpolation at α: each step copied from B with probability α, else from A (one
  Bernoulli(α) draw per step);
* LM cost of x: −log2 P(x) per n-gram under an interpolated Kneser-Ney n-gram model of the
  training windows (`nltk.lm.KneserNeyInterpolated`; sequences padded at both ends, so bits per
  step including the end-of-sequence events), a step's token being its labels joined;
* normalised cost at α: C_α / ((C_A + C_B) / 2), the cost over the mean cost of the true
  endpoints (1 = as musical as the endpoints). SPEC §6's (C_α − C_A)/(C_B − C_A) is reported too,
  as a median over pairs: its denominator is near 0 for pairs of similar cost, so its mean is
  dominated by a few pairs.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from mvae_jax.generate import slerp


def hamming(x: np.ndarray, a: np.ndarray) -> np.ndarray:
  """Share of steps where `x` differs from `a` (any stream): `[..., T, S]` each -> `[...]`."""
  return np.any(np.asarray(x) != np.asarray(a), axis=-1).mean(axis=-1)


def data_interpolation(a: np.ndarray, b: np.ndarray, alpha: float,
                       rng: np.random.Generator) -> np.ndarray:
  """`[T, S]`: each step from `b` with probability α, else from `a`."""
  take_b = rng.random(a.shape[0]) < alpha
  return np.where(take_b[:, None], b, a)


def latent_path(mu_a: np.ndarray, mu_b: np.ndarray, alphas: Sequence[float],
                method: str = "slerp") -> np.ndarray:
  """`[A, Z]`: points from μ_A (α = 0) to μ_B (α = 1)."""
  if method == "slerp":
    return np.stack([slerp(mu_a, mu_b, t) for t in alphas])
  return np.stack([(1 - t) * mu_a + t * mu_b for t in alphas])


def pick_pairs(n_windows: int, pieces: np.ndarray, pairs: int,
               rng: np.random.Generator) -> np.ndarray:
  """`[P, 2]` window indices (A, B) of different pieces, drawn without repeating a window where
  the windows allow."""
  out, order = [], rng.permutation(n_windows)
  for i in range(0, len(order) - 1, 2):
    a, b = order[i], order[i + 1]
    if pieces[a] != pieces[b]:
      out.append((a, b))
    if len(out) == pairs:
      break
  while len(out) < pairs:  # fewer windows than pairs: draw with repetition
    a, b = rng.choice(n_windows, 2, replace=False)
    if pieces[a] != pieces[b] or len(np.unique(pieces)) == 1:
      out.append((a, b))
  return np.array(out, np.int64)


def tokens(labels: np.ndarray) -> list[str]:
  """One window `[T, S]` -> one token per step ('62', or '62|33|0' for several streams)."""
  labels = np.asarray(labels)
  return ["|".join(map(str, row)) for row in labels.reshape(labels.shape[0], -1)]


class NgramLM:
  """An interpolated Kneser-Ney n-gram model (nltk.lm) over `tokens` of windows; `cost` in
  bits per n-gram, memoised (nltk scores each n-gram recursively, slowly)."""

  def __init__(self, order: int, windows: np.ndarray, alphabet: Sequence[str] = ()):
    """windows `[N, T, S]`; `alphabet`: tokens added once as one more sentence, so that every
    token the model can output has a nonzero unigram (continuation) count."""
    try:
      from nltk.lm import KneserNeyInterpolated  # noqa: PLC0415
      from nltk.lm.preprocessing import padded_everygram_pipeline  # noqa: PLC0415
    except ImportError:
      raise ImportError("the interpolation study's language model needs nltk: pip install "
                        "'mvae-jax[bench]' (or drop interpolation from --config.eval.evaluations)"
                        ) from None
    self.order = order
    sents = [tokens(w) for w in windows] + ([list(alphabet)] if len(alphabet) else [])
    train, vocab = padded_everygram_pipeline(order, sents)
    self.lm = KneserNeyInterpolated(order)
    self.lm.fit(train, vocab)
    self._memo: dict = {}

  def cost(self, labels: np.ndarray) -> float:
    """−log2 P per n-gram of one window `[T, S]` (padded at both ends)."""
    from nltk.lm.preprocessing import pad_both_ends  # noqa: PLC0415
    from nltk.util import ngrams  # noqa: PLC0415
    total, n = 0.0, 0
    for g in ngrams(pad_both_ends(tokens(labels), self.order), self.order):
      v = self._memo.get(g)
      if v is None:
        v = self._memo[g] = -self.lm.logscore(g[-1], g[:-1])
      total += v
      n += 1
    return total / n

  def costs(self, windows: np.ndarray) -> np.ndarray:
    """`[..., T, S]` -> `[...]`."""
    windows = np.asarray(windows)
    flat = windows.reshape((-1,) + windows.shape[-2:])
    return np.array([self.cost(w) for w in flat]).reshape(windows.shape[:-2])


def alphabet_of(converter) -> list[str]:
  """Every label a single-stream converter can emit, as tokens (multi-stream: each stream's)."""
  return ["|".join([str(k)] * converter.num_streams) for k in range(max(converter.output_depths))]


def normalised(costs: np.ndarray, ca: np.ndarray, cb: np.ndarray) -> dict:
  """costs `[P, A]` of the interpolations, ca, cb `[P]` of the true endpoints -> per α: the
  mean over pairs of C_α / ((C_A + C_B) / 2), and the median of (C_α − C_A)/(C_B − C_A)."""
  ca, cb = ca[:, None], cb[:, None]
  ratio = costs / ((ca + cb) / 2)
  with np.errstate(divide="ignore", invalid="ignore"):
    spec = (costs - ca) / (cb - ca)
  spec = np.where(np.isfinite(spec), spec, np.nan)
  return {"mean_over_endpoints": ratio.mean(0).tolist(),
          "spec_median": np.nanmedian(spec, 0).tolist()}


def data_study(a: np.ndarray, b: np.ndarray, alphas: Sequence[float], lm: NgramLM,
               seed: int) -> dict:
  """Data-space interpolation of pairs a, b `[P, T, S]` -> Hamming to A and LM cost `[P, A]`."""
  rng = np.random.default_rng(seed)
  x = np.stack([np.stack([data_interpolation(a[p], b[p], t, rng) for t in alphas])
                for p in range(len(a))])
  return summarise(x, a, b, lm)


def latent_study(tm, a: np.ndarray, b: np.ndarray, alphas: Sequence[float], lm: NgramLM,
                 method: str = "slerp") -> dict:
  """Latent interpolation of pairs a, b `[P, T, S]` with trained model `tm`
  (`generate.TrainedModel`): decode (argmax) the path from μ_A to μ_B."""
  _, mu_a, _ = tm.encode_labels(a.astype(np.int32))
  _, mu_b, _ = tm.encode_labels(b.astype(np.int32))
  z = np.concatenate([latent_path(mu_a[p], mu_b[p], alphas, method) for p in range(len(a))])
  x = tm.decode_labels(z, 0.0).reshape((len(a), len(alphas)) + a.shape[1:])
  return summarise(x, a, b, lm)


def summarise(x: np.ndarray, a: np.ndarray, b: np.ndarray, lm: NgramLM) -> dict:
  """x `[P, A, T, S]` interpolations of pairs a, b `[P, T, S]` -> the per-α figures (means
  over pairs)."""
  h = hamming(x, a[:, None])
  ca, cb, cost = lm.costs(a), lm.costs(b), lm.costs(x)
  return {
      "hamming_to_a": h.mean(0).tolist(),
      "hamming_to_a_sd": h.std(0).tolist(),
      "hamming_a_b": float(hamming(b, a).mean()),
      "lm_cost_bits": cost.mean(0).tolist(),
      "lm_cost_endpoints_bits": [float(ca.mean()), float(cb.mean())],
      "normalised_cost": normalised(cost, ca, cb),
  }


__all__ = ["hamming", "data_interpolation", "latent_path", "pick_pairs", "tokens", "NgramLM",
           "alphabet_of", "normalised", "data_study", "latent_study", "summarise"]
