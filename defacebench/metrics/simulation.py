"""Simulated attacks on a defacer, for the property tests of the verdict's statistics and the power
table of docs/statistics.md (``scripts/verdict_power.py``).

Model: N subjects and A attacks. Every attack's distance matrix is standard normal per cell, with a
share ``rho`` of each cell's variance common to all attacks (the same defaced scans seen by related
attackers make attacks correlated). Nothing leaks: rank-1 sits at chance 1/N. A planted leak lowers
the genuine (diagonal) distances of one attack by ``delta``, chosen so that its expected rank-1 is
exactly the requested ``leak`` (:func:`leak_delta`).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from defacebench.metrics.distance import DistanceMatrix
from defacebench.metrics.identification import Identification


@lru_cache(maxsize=64)
def leak_delta(rank1: float, n: int) -> float:
    """The genuine-distance shift that gives an expected rank-1 of ``rank1`` among ``n`` subjects:
    solves P(G < min of n-1 impostors) = rank1 with G ~ N(-delta, 1), impostors N(0, 1)."""
    from scipy import integrate, optimize, stats

    def hit(delta: float) -> float:  # t: the genuine distance's standardised deviation, G = t - delta
        f = lambda t: stats.norm.pdf(t) * stats.norm.sf(t - delta) ** (n - 1)  # noqa: E731
        return integrate.quad(f, -10.0, 10.0, limit=200)[0]

    if rank1 <= 1.0 / n:
        return 0.0
    return float(optimize.brentq(lambda d: hit(d) - rank1, 0.0, 12.0, xtol=1e-6))


def simulate_attacks(rng: np.random.Generator, *, n: int, attacks: int = 36, rho: float = 0.5,
                     leak: float | None = None) -> list[Identification]:
    """``attacks`` correlated attacks on ``n`` subjects; attack 0 leaks with expected rank-1 ``leak``."""
    ids = tuple(f"s{i:03d}" for i in range(n))
    shared = rng.standard_normal((n, n))
    out = []
    for k in range(attacks):
        values = np.sqrt(rho) * shared + np.sqrt(1.0 - rho) * rng.standard_normal((n, n))
        if k == 0 and leak is not None:
            values[np.diag_indices(n)] -= leak_delta(leak, n)
        out.append(Identification.from_matrix(DistanceMatrix(ids, ids, values + 20.0, "euclidean")))
    return out

