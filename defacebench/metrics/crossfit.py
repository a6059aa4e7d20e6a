"""A worst case that is not inflated by selection: choose the attack on half the probes, score it on
the other half.

The in-sample maximum rank-1 over many attacks is biased upward (the attack that looks worst was
partly chosen for its luck on these very probes). Cross-fitting on probes removes that: split the
probes at random into halves A and B (the gallery stays whole), pick the attack with the highest
rank-1 on A, score it on B; swap; every probe is then scored once by an attack chosen without it.
The estimate averages the hit rate over seeded random splits. When one attack really leaks it wins
the choice on most halves and the estimate approaches its true rank-1 (from below, never above);
when nothing leaks the estimate stays at chance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from defacebench.errors import EvaluationError
from defacebench.metrics.binomial import exact_interval


@dataclass(frozen=True, eq=False)
class CrossFit:
    """``rank1``: mean held-out rank-1 over the repeats; ``interval``: exact binomial interval at
    the mean hit count over ``n`` probes; ``chosen`` (A,): how often each attack was chosen."""

    rank1: float
    interval: tuple[float, float]
    n: int
    chosen: np.ndarray
    repeats: int
    seed: int


def cross_fit_worst(hits: np.ndarray, *, repeats: int = 200, seed: int = 0, confidence: float = 0.95) -> CrossFit:
    """Cross-fitted worst-case rank-1 of attacks ``hits`` (A, n): 1.0 hit, 0.0 miss, NaN where the
    attack has no such probe. Ties in the choice go to the first attack (a rule that never looks at
    the held-out half). Needs at least 2 probes."""
    hits = np.asarray(hits, dtype=float)
    if hits.ndim != 2 or hits.shape[0] == 0:
        raise EvaluationError(f"hits must be (attacks, probes) with at least one attack, got shape {hits.shape}")
    n = hits.shape[1]
    if n < 2:
        raise EvaluationError(f"cross-fitting needs at least 2 probes, got {n}")
    if repeats < 1:
        raise EvaluationError(f"repeats must be >= 1, got {repeats}")
    present = np.isfinite(hits)
    value = np.where(present, hits, 0.0)
    order = np.argsort(np.random.default_rng(seed).random((repeats, n)), axis=1)
    half_a = np.zeros((repeats, n), bool)
    np.put_along_axis(half_a, order[:, : n // 2], True, axis=1)
    scored_hits, scored_n = np.zeros(repeats), np.zeros(repeats)
    chosen = np.zeros(hits.shape[0], int)
    for pick, score in ((half_a, ~half_a), (~half_a, half_a)):
        rate = _rates(value, present, pick)                       # (A, R)
        best = np.argmax(np.where(np.isnan(rate), -np.inf, rate), axis=0)  # (R,)
        chosen += np.bincount(best, minlength=hits.shape[0])
        scored_hits += (value[best] * score).sum(axis=1)
        scored_n += (present[best] * score).sum(axis=1)
    with np.errstate(invalid="ignore"):
        per_repeat = scored_hits / scored_n
    rank1 = float(np.nanmean(per_repeat)) if np.isfinite(per_repeat).any() else float("nan")
    mean_n = int(round(float(np.mean(scored_n))))
    mean_hits = min(float(np.mean(scored_hits)), float(mean_n))
    interval = exact_interval(mean_hits, mean_n, confidence=confidence) if mean_n else (float("nan"),) * 2
    return CrossFit(rank1=rank1, interval=interval, n=mean_n, chosen=chosen, repeats=repeats, seed=seed)


def _rates(value: np.ndarray, present: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(A, R) hit rate of each attack on the probes of each repeat's mask (NaN where it has none)."""
    total = value @ mask.T.astype(float)
    count = present.astype(float) @ mask.T.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)
