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

from dataclasses import dataclass, field
from typing import Any, Mapping

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


@dataclass(frozen=True)
class Identification:
    """One attack's rank-1 facts, enough to recompute its rank-1 under any relabelling of identities.

    ``gallery``: the gallery ids. ``nearest``: for every mated probe (its id is a gallery id), the
    gallery id strictly nearer to it than every other gallery entry, or None when there is none (no
    face, +inf column, or a tie at the minimum). A probe is a rank-1 hit exactly when its nearest
    entry is its own id (ties counted pessimistically, as :func:`rank_table` does); if identities were
    relabelled by a permutation ``pi`` of the gallery, it would be a hit when ``nearest == pi(id)``.
    That is what the max-T permutation test (:mod:`.maxt`) and the paired tests need, stored in
    ``metrics.json`` without the matrix.
    """

    gallery: tuple[str, ...]
    nearest: Mapping[str, str | None] = field(default_factory=dict)

    @classmethod
    def from_matrix(cls, matrix: DistanceMatrix) -> "Identification":
        values = matrix.values
        gallery = set(matrix.gallery_ids)
        if values.shape[0] == 0:
            return cls(tuple(matrix.gallery_ids), {p: None for p in matrix.probe_ids if p in gallery})
        best = np.argmin(values, axis=0)
        low = values[best, np.arange(values.shape[1])]
        unique = np.isfinite(low) & ((values == low[None, :]).sum(axis=0) == 1)
        nearest = {p: (matrix.gallery_ids[b] if u else None)
                   for p, b, u in zip(matrix.probe_ids, best.tolist(), unique.tolist()) if p in gallery}
        return cls(tuple(matrix.gallery_ids), nearest)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Identification":
        nearest = data.get("nearest") or {}
        return cls(tuple(str(g) for g in data.get("gallery") or ()),
                   {str(p): (None if g is None else str(g)) for p, g in nearest.items()})

    def to_dict(self) -> dict[str, Any]:
        return {"gallery": list(self.gallery), "nearest": dict(self.nearest)}

    @property
    def hits(self) -> dict[str, bool]:
        """Mated probe id -> identified at rank 1."""
        return {p: g == p for p, g in self.nearest.items()}

    @property
    def rank1(self) -> float:
        """Share of mated probes identified at rank 1 (NaN without mated probes)."""
        hits = self.hits
        return float(np.mean(list(hits.values()))) if hits else float("nan")


def hit_matrix(attacks: "list[Identification]") -> tuple[tuple[str, ...], np.ndarray]:
    """The probe ids (sorted union) and the (attacks, probes) hits: 1.0 hit, 0.0 miss, NaN where the
    attack has no such probe."""
    probes = tuple(sorted(set().union(*(a.nearest for a in attacks)))) if attacks else ()
    table = np.full((len(attacks), len(probes)), np.nan)
    column = {p: j for j, p in enumerate(probes)}
    for i, attack in enumerate(attacks):
        for probe, hit in attack.hits.items():
            table[i, column[probe]] = float(hit)
    return probes, table
