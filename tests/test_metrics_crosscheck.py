"""Cross-checks of the metrics against scikit-learn and brute-force loops on random matrices."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from defacebench.metrics import DistanceMatrix, apply_threshold, evaluate_matrix, fit_threshold
from defacebench.metrics.bootstrap import curve_bins, weighted_curve_metrics, weighted_rank_metrics
from defacebench.metrics.identification import rank_table
from defacebench.metrics.pairs import genuine_mask, make_pairs


def _random_matrix(seed: int, n: int = 25, decimals: int | None = None, n_inf: int = 3) -> DistanceMatrix:
    rng = np.random.default_rng(seed)
    values = rng.random((n, n))
    values[np.diag_indices(n)] *= 0.6  # genuine pairs a bit nearer
    if decimals is not None:
        values = np.round(values, decimals)  # ties, like the study's rounded files
    for k in range(n_inf):
        values[:, (3 * k + 1) % n] = np.inf
    ids = [f"sub-{i:03d}" for i in rng.permutation(n)]
    return DistanceMatrix(ids, ids, values, "cosine")


def _labels_scores(m: DistanceMatrix) -> tuple[np.ndarray, np.ndarray]:
    finite = m.values[np.isfinite(m.values)]
    d = np.where(np.isfinite(m.values), m.values, finite.max() + 1.0)
    return genuine_mask(m).ravel(), -d.ravel()


@pytest.mark.parametrize("seed,decimals", [(0, None), (1, 2), (2, 1), (3, None)])
def test_auc_and_ap_agree_with_sklearn(seed, decimals):
    m = _random_matrix(seed, decimals=decimals)
    y, s = _labels_scores(m)
    ev = evaluate_matrix(m, n_bootstrap=0)
    assert abs(ev.roc_auc - roc_auc_score(y, s)) < 1e-9
    assert abs(ev.average_precision - average_precision_score(y, s)) < 1e-9


@pytest.mark.parametrize("seed,decimals", [(4, None), (5, 2), (6, 1)])
def test_bootstrap_weighted_curves_agree_with_sklearn_sample_weights(seed, decimals):
    m = _random_matrix(seed, n=15, decimals=decimals)
    y, s = _labels_scores(m)
    rng = np.random.default_rng(seed)
    w = rng.integers(0, 4, size=(4, 15)).astype(float)
    w[0] = 1.0  # identity resample = the plain metric
    got = weighted_curve_metrics(curve_bins(make_pairs(m)), w, w)
    for b in range(4):
        sw = np.outer(w[b], w[b])
        np.fill_diagonal(sw, w[b])  # a genuine pair counts once per drawn subject
        assert abs(got["roc_auc"][b] - roc_auc_score(y, s, sample_weight=sw.ravel())) < 1e-9
        assert abs(got["average_precision"][b] - average_precision_score(y, s, sample_weight=sw.ravel())) < 1e-9
    assert abs(got["eer"][0] - evaluate_matrix(m, n_bootstrap=0).eer) < 1e-12


def test_ranks_agree_with_a_brute_force_loop_and_ties_are_pessimistic():
    m = _random_matrix(7, n=20, decimals=1)
    table = rank_table(m)
    gen = genuine_mask(m)
    for j in range(20):
        i = int(np.flatnonzero(gen[:, j])[0])
        d = m.values[i, j]
        expected = np.inf if np.isinf(d) else 1 + sum(m.values[k, j] <= d for k in range(20) if k != i)
        assert table.ranks[j] == expected
    rates = weighted_rank_metrics(table, np.ones((1, 20)))
    assert rates["rank1"][0] == pytest.approx(np.mean(table.ranks <= 1))


def _f1_at(m: DistanceMatrix, value: float) -> float:
    gen = genuine_mask(m)
    match = np.isfinite(m.values) & (m.values <= value)
    tp, fp, fn = (match & gen).sum(), (match & ~gen).sum(), (~match & gen).sum()
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


@pytest.mark.parametrize("seed,decimals", [(8, None), (9, 2)])
def test_f1_threshold_is_the_exact_maximum_over_every_observed_distance(seed, decimals):
    m = _random_matrix(seed, decimals=decimals)
    t = fit_threshold(m, m.subject_ids(), policy="f1")
    finite = np.unique(m.values[np.isfinite(m.values)])
    best = max(_f1_at(m, v) for v in finite)
    assert _f1_at(m, t.value) == pytest.approx(best)
    assert t.value in finite  # exact: an observed distance, not a grid point
    c = apply_threshold(m, t, m.subject_ids())
    assert c.f1 == pytest.approx(best)


def test_far_policy_respects_the_false_accept_rate_on_calibration():
    m = _random_matrix(10, n=30)
    for far in (0.1, 0.01):
        t = fit_threshold(m, m.subject_ids(), policy=f"far={far}")
        c = apply_threshold(m, t, m.subject_ids())
        assert c.fp / (c.fp + c.tn) <= far
        nxt = np.min(m.values[np.isfinite(m.values) & (m.values > t.value)])
        looser = apply_threshold(m, type(t)(float(nxt), t.policy, t.metric, t.fitted_on), m.subject_ids())
        # one step looser either breaks the FAR or adds no true accept
        assert looser.fp / (looser.fp + looser.tn) > far or looser.tp == c.tp
