"""Pairs of a distance matrix: which (gallery, probe) cells are genuine, and AUC-safe distances.

Every verification metric sees the matrix as a list of pairs (one per cell) labelled genuine when the
gallery id equals the probe id. +inf cells stay in the list: for rank-free curves (ROC, PR) they get
a finite stand-in larger than every finite distance, so they sort last (they are the least similar)
and ties among them are handled like any other tie.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from defacebench.errors import EvaluationError
from defacebench.metrics.distance import DistanceMatrix


@dataclass(frozen=True, eq=False)
class Pairs:
    """Flattened cells (row-major): distance with +inf replaced by ``standin``, genuine flag, indices."""

    distance: np.ndarray
    genuine: np.ndarray
    finite: np.ndarray
    row: np.ndarray
    col: np.ndarray
    standin: float


def genuine_mask(matrix: DistanceMatrix) -> np.ndarray:
    """Boolean (n_g, n_p): True where the gallery id equals the probe id."""
    g = np.asarray(matrix.gallery_ids, dtype=object)[:, None]
    p = np.asarray(matrix.probe_ids, dtype=object)[None, :]
    return g == p


def finite_standin(values: np.ndarray) -> float:
    """A finite distance larger than every finite value (max + 1; 1.0 when nothing is finite)."""
    finite = values[np.isfinite(values)]
    return float(finite.max() + 1.0) if finite.size else 1.0


def make_pairs(matrix: DistanceMatrix) -> Pairs:
    """All cells of ``matrix`` as pairs; raises when there is no genuine or no impostor pair."""
    values = matrix.values
    gen = genuine_mask(matrix)
    if not gen.any():
        raise EvaluationError(
            "the distance matrix has no genuine pair (no gallery id equals a probe id): "
            "label rows and columns with the same subject ids"
        )
    if gen.all():
        raise EvaluationError("the distance matrix has no impostor pair: it needs at least two subjects")
    standin = finite_standin(values)
    finite = np.isfinite(values)
    rows, cols = np.indices(values.shape)
    return Pairs(
        distance=np.where(finite, values, standin).ravel(),
        genuine=gen.ravel(),
        finite=finite.ravel(),
        row=rows.ravel(),
        col=cols.ravel(),
        standin=standin,
    )
