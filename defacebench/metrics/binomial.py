"""Exact binomial statistics of per-probe hits: Clopper-Pearson intervals and McNemar's paired test.

Why exact: with 16-50 subjects (the usual defacing study) a normal approximation or a percentile
bootstrap collapses to a point when every probe agrees (0/16 would read "[0, 0]"); the
Clopper-Pearson interval never does (0/16 gives [0, 0.206], 16/16 gives [0.794, 1]).
"""

from __future__ import annotations

import math

import numpy as np


def exact_interval(hits: float, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson interval of a proportion ``hits / n``.

    ``hits`` may be a non-integer (an average of hit counts, as the cross-fitted worst case is): the
    interval is then the beta-quantile form of the same definition, which equals scipy's
    ``binomtest(k, n).proportion_ci(method="exact")`` at integer ``k``. (nan, nan) when ``n`` is 0.
    """
    from scipy.stats import beta, binomtest

    if n <= 0:
        return (math.nan, math.nan)
    if not 0.0 <= hits <= n:
        raise ValueError(f"hits {hits} outside [0, {n}]")
    if float(hits).is_integer():
        ci = binomtest(int(hits), int(n)).proportion_ci(confidence_level=confidence, method="exact")
        return (float(ci.low), float(ci.high))
    tail = (1.0 - confidence) / 2.0
    lo = float(beta.ppf(tail, hits, n - hits + 1))
    hi = float(beta.ppf(1.0 - tail, hits + 1, n - hits))
    return (lo, hi)


def mcnemar_exact(hits_a: np.ndarray, hits_b: np.ndarray) -> float:
    """Two-sided exact McNemar p-value of paired binary outcomes (same probes, two conditions).

    ``hits_a``, ``hits_b``: (n,) bool, probe i under condition a and b. Only discordant probes
    carry information: under the null each is equally likely to favour either side, so the count
    favouring ``a`` is Binomial(discordant, 1/2). 1.0 when no probe is discordant.
    """
    from scipy.stats import binomtest

    a, b = np.asarray(hits_a, bool), np.asarray(hits_b, bool)
    if a.shape != b.shape:
        raise ValueError(f"paired hits need the same shape, got {a.shape} and {b.shape}")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_a, only_a + only_b, 0.5).pvalue)
