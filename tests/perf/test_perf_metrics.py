"""Benchmark of the evaluation engine: N=300 embeddings -> distance matrix -> every metric + CIs.

Why: every configuration of a run is evaluated once, with 1000 subject resamples for the CIs; the
evaluation must stay negligible next to rendering and embedding (target: < 2 s for N=300 on one
core). ``[check]`` (CI) verifies the result; ``[perf]`` times it. Run with:

    pytest tests/perf/test_perf_metrics.py --run-perf --benchmark-enable
"""

from __future__ import annotations

import numpy as np

from defacebench.metrics import DistanceMatrix, evaluate_matrix

N, DIM = 300, 128


def _embeddings() -> tuple[list[str], np.ndarray, np.ndarray]:
    """Gallery and noisy probe embeddings of N subjects, a few probes without a face (NaN)."""
    rng = np.random.default_rng(0)
    gallery = rng.normal(size=(N, DIM))
    probe = gallery + 2.5 * rng.normal(size=(N, DIM))
    probe[::37] = np.nan
    return [f"sub-{i:03d}" for i in range(N)], gallery, probe


def _evaluate_all(ids: list[str], gallery: np.ndarray, probe: np.ndarray) -> dict:
    """The full per-configuration evaluation: matrix, split, thresholds, metrics, 1000 resamples."""
    matrix = DistanceMatrix.from_embeddings(ids, gallery, ids, probe, metric="cosine")
    return evaluate_matrix(matrix, n_bootstrap=1000).to_dict()


def test_perf_evaluate_n300(bench):
    ids, gallery, probe = _embeddings()
    result = bench(_evaluate_all, ids, gallery, probe)
    assert result["n"] == N and result["ci"]["rank1"][0] <= result["rank1"] <= result["ci"]["rank1"][1]
    assert result["detection_rate"] < 1.0  # the NaN probes are kept as +inf columns
    stats = getattr(bench, "stats", None)
    if stats is not None:  # only when benchmarking is enabled
        assert stats.stats.median < 2.0, f"N=300 evaluation took {stats.stats.median:.2f} s (target < 2 s)"
