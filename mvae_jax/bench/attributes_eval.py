"""The attribute-vector matrix (SPEC §6): 5×5 relative attribute change.

Definition (also in each report):
vectors are derived from the first half of the held-out
windows (mean μ of the top quartile minus the bottom quartile of each attribute,
`music.attributes.attribute_vectors`); on the other half, row i, column j is the mean relative
change Σ(after − before)/Σ|before| of attribute j when `scale`·vector i is added to μ, both
decoded by argmax (`generate.TrainedModel.attribute_table`). A good model has a large positive
diagonal. n/a: the unmodified decodes have none of that attribute (e.g. a model that decodes
only held notes has no notes), so no relative change is defined.
"""

from __future__ import annotations

import numpy as np

from mvae_jax.music import attributes


def matrix(tm, labels: np.ndarray, scale: float = 1.0) -> dict:
  """A trained model and held-out windows `[N, T, S]` (N >= 8) -> {'names', 'matrix' [5][5],
  'diagonal_mean', 'windows'}."""
  if len(labels) < 8:
    raise ValueError(f"{len(labels)} windows: the attribute matrix needs at least 8")
  half = len(labels) // 2
  labels = labels.astype(np.int32)
  vectors = tm.attribute_vectors(labels[:half])
  table = tm.attribute_table(labels[half:], vectors, scale)
  return {"names": list(attributes.NAMES),
          "matrix": [[None if np.isnan(x) else float(x) for x in row] for row in table],
          "diagonal_mean": float(np.nanmean(np.diag(table))) if np.isfinite(np.diag(table)).any()
          else None,
          "off_diagonal_mean_abs": float(np.nanmean(np.abs(table[~np.eye(5, dtype=bool)])))
          if np.isfinite(table[~np.eye(5, dtype=bool)]).any() else None,
          "windows": [half, len(labels) - half], "scale": scale}


__all__ = ["matrix"]
