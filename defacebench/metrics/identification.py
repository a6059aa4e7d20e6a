"""Closed-set identification: rank-k, the CMC curve and chance levels.

For each probe column whose id is also a gallery id, the rank of its genuine gallery row is
``1 + (number of impostor gallery rows at a distance <= the genuine distance)``. Ties are counted
**pessimistically**: an impostor exactly as near as the genuine row beats it, so a recognizer that
cannot separate people (a constant matrix) identifies nobody at rank 1. ``rank1_tie_shared`` gives
the tie-neutral reading (a tie among t+1 candidates earns 1/(t+1)), which equals the chance level
1/N on a constant matrix. A probe whose genuine distance is +inf (no face, failed defacing) is never
identified, at any rank; its rank is +inf, so the CMC may stay below 1.

Probes without a gallery row of the same id cannot be identified by construction and are left out
of identification (they still count as impostor pairs for verification).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from defacebench.metrics.distance import DistanceMatrix
from defacebench.metrics.pairs import genuine_mask


@dataclass(frozen=True, eq=False)
class RankTable:
    """Per-probe identification facts, computed once and reused by the bootstrap."""

    has_mate: np.ndarray  # (n_p,) bool: the probe id is a gallery id
    genuine_finite: np.ndarray  # (n_p,) bool: the genuine distance is finite
    at_or_nearer: np.ndarray  # (n_g, n_p) bool: impostor row at distance <= genuine distance
    strictly_nearer: np.ndarray  # (n_g, n_p) bool: impostor row strictly nearer than genuine
    n_gallery: int

    @property
    def ranks(self) -> np.ndarray:
        """(n_p,) rank of the genuine row; +inf when never identifiable; NaN without a mate."""
        rank = 1.0 + self.at_or_nearer.sum(axis=0)
        rank = np.where(self.genuine_finite, rank, np.inf)
        return np.where(self.has_mate, rank, np.nan)


def rank_table(matrix: DistanceMatrix) -> RankTable:
    """Compare each probe's genuine distance with every impostor row of its column."""
    gen = genuine_mask(matrix)
    values = matrix.values
    has_mate = gen.any(axis=0)
    genuine_d = np.where(gen, values, 0.0).sum(axis=0, where=gen)
    genuine_d = np.where(has_mate, genuine_d, np.inf)
    impostor = ~gen
    return RankTable(
        has_mate=has_mate,
        genuine_finite=has_mate & np.isfinite(genuine_d),
        at_or_nearer=impostor & (values <= genuine_d[None, :]),
        strictly_nearer=impostor & (values < genuine_d[None, :]),
        n_gallery=values.shape[0],
    )


def cmc(table: RankTable) -> np.ndarray:
    """CMC curve: entry k-1 = fraction of mated probes whose rank is <= k, k = 1..n_gallery."""
    ranks = table.ranks[table.has_mate]
    if ranks.size == 0:
        return np.full(table.n_gallery, np.nan)
    ks = np.arange(1, table.n_gallery + 1)
    return (ranks[None, :] <= ks[:, None]).mean(axis=1)


def rank_k(table: RankTable, k: int) -> float:
    """Fraction of mated probes identified within the first ``k`` gallery candidates."""
    ranks = table.ranks[table.has_mate]
    return float((ranks <= k).mean()) if ranks.size else float("nan")


def rank1_tie_shared(table: RankTable) -> float:
    """Rank-1 rate when a tie among t+1 nearest candidates earns 1/(t+1) instead of 0."""
    mated = table.has_mate
    if not mated.any():
        return float("nan")
    ties = table.at_or_nearer.sum(axis=0) - table.strictly_nearer.sum(axis=0)
    none_nearer = table.strictly_nearer.sum(axis=0) == 0
    credit = np.where(none_nearer & table.genuine_finite, 1.0 / (1.0 + ties), 0.0)
    return float(credit[mated].mean())


def chance_levels(n_gallery: int) -> dict[str, float]:
    """What a random guess achieves: rank-1 1/N, rank-5 min(5, N)/N, ROC AUC 0.5."""
    return {"rank1": 1.0 / n_gallery, "rank5": min(5, n_gallery) / n_gallery, "roc_auc": 0.5}
