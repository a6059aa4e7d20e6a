"""Property tests (hypothesis) of the metrics: invariances, extremes, monotonicity, no leakage."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from defacebench.metrics import DistanceMatrix, evaluate_matrix, fit_threshold, make_split
from defacebench.metrics.pairs import make_pairs
from defacebench.metrics.verification import tar_at_far, roc_points

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# a small value set makes ties frequent; inf = no face
CELL = st.sampled_from([0.0, 0.1, 0.25, 0.25, 0.5, 0.7, 0.9, 1.3, math.inf])


@st.composite
def matrices(draw, min_n=4, max_n=9):
    """Square matrices with string ids (not sorted) and tie-rich values, some +inf."""
    n = draw(st.integers(min_n, max_n))
    values = np.array(draw(st.lists(CELL, min_size=n * n, max_size=n * n))).reshape(n, n)
    # keep at least one finite genuine and impostor pair so the curves are defined
    values[0, 0] = draw(st.sampled_from([0.0, 0.1, 0.5]))
    values[0, 1] = draw(st.sampled_from([0.2, 0.6, 1.0]))
    ids = [f"s{(7 * i) % 11}-{i}" for i in range(n)]
    return DistanceMatrix(ids, ids, values, "cosine")


def _assert_same(a, b, path="") -> None:
    """Recursive comparison of two to_dict outputs (floats to 1e-9, id lists as sets)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list) and a and isinstance(a[0], str):
        assert sorted(a) == sorted(b), path
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, abs=1e-9), path
    else:
        assert a == b, path


@SETTINGS
@given(matrices(), st.randoms(use_true_random=False))
def test_permuting_subjects_leaves_every_metric_unchanged(matrix, rnd):
    rows, cols = list(range(matrix.shape[0])), list(range(matrix.shape[1]))
    rnd.shuffle(rows)
    rnd.shuffle(cols)
    permuted = DistanceMatrix(
        [matrix.gallery_ids[i] for i in rows], [matrix.probe_ids[j] for j in cols],
        matrix.values[np.ix_(rows, cols)], matrix.metric,
    )
    a = evaluate_matrix(matrix, n_bootstrap=60, seed=3).to_dict()
    b = evaluate_matrix(permuted, n_bootstrap=60, seed=3).to_dict()
    _assert_same(a, b)


@SETTINGS
@given(st.integers(2, 12), st.floats(0.0, 0.4), st.floats(0.5, 1.5))
def test_perfect_matrix_gives_rank1_one_auc_one_eer_zero(n, genuine, impostor):
    ids = [str(i) for i in range(n)]
    values = np.full((n, n), impostor)
    np.fill_diagonal(values, genuine)
    ev = evaluate_matrix(DistanceMatrix(ids, ids, values, "cosine"), calibration=1.0, n_bootstrap=50)
    assert ev.rank1 == 1.0 and ev.rank5 == 1.0
    assert ev.roc_auc == 1.0 and ev.average_precision == 1.0 and ev.eer == 0.0
    assert ev.ci["rank1"] == (1.0, 1.0) and ev.ci["roc_auc"] == (1.0, 1.0) and ev.ci["eer"] == (0.0, 0.0)
    assert all(v == 1.0 for v in ev.tar_at_far.values())
    assert (ev.counts.tp, ev.counts.fp, ev.counts.fn) == (n, 0, 0)


@SETTINGS
@given(st.integers(2, 12), st.floats(0.0, 2.0))
def test_constant_matrix_gives_chance_level_results(n, c):
    ids = [f"id{i}" for i in range(n)]
    ev = evaluate_matrix(DistanceMatrix(ids, ids, np.full((n, n), c), "cosine"), calibration=1.0, n_bootstrap=50)
    assert ev.roc_auc == pytest.approx(0.5) and ev.eer == pytest.approx(0.5)
    assert ev.average_precision == pytest.approx(1.0 / n)  # = prevalence of genuine pairs
    assert ev.rank1_tie_shared == pytest.approx(ev.chance["rank1"]) == pytest.approx(1.0 / n)
    assert ev.rank1 == 0.0  # ties are pessimistic: nobody is told apart
    assert all(v == 0.0 for v in ev.tar_at_far.values())


def test_all_inf_probe_column_is_a_miss_at_every_rank():
    ids = ["a", "b"]
    values = np.array([[0.1, np.inf], [0.9, np.inf]])
    ev = evaluate_matrix(DistanceMatrix(ids, ids, values, "cosine"), calibration=1.0, n_bootstrap=0)
    assert ev.rank1 == 0.5 and ev.cmc == (0.5, 0.5)
    one = DistanceMatrix(["a", "b"], ["a", "b"], np.array([[np.inf, 0.2], [0.3, 0.1]]), "cosine")
    assert evaluate_matrix(one, calibration=1.0, n_bootstrap=0).rank1 == 0.5


@SETTINGS
@given(matrices(), st.lists(st.floats(0.0, 1.0), min_size=2, max_size=6))
def test_tar_is_monotone_in_far(matrix, fars):
    pairs = make_pairs(matrix)
    fpr, tpr, thr = roc_points(pairs)
    fars = sorted(fars)
    tars = [tar_at_far(fpr, tpr, thr, f, pairs.standin) for f in fars]
    assert tars == sorted(tars)
    ev = evaluate_matrix(matrix, n_bootstrap=0)
    assert ev.tar_at_far["0.001"] <= ev.tar_at_far["0.01"] <= ev.tar_at_far["0.1"]


@SETTINGS
@given(matrices(min_n=5, max_n=10), st.sampled_from(["f1", "youden", "far=0.1"]), st.integers(0, 5))
def test_threshold_fitted_on_one_split_never_sees_the_other_splits_ids(matrix, policy, seed):
    split = make_split(matrix.subject_ids(), calibration=0.6, seed=seed)
    assert not set(split.calibration_ids) & set(split.heldout_ids)
    threshold = fit_threshold(matrix, split.calibration_ids, policy=policy)
    assert set(threshold.fitted_on) == set(split.calibration_ids)
    # scramble every cell that touches a held-out id: the fitted threshold must not move
    held = set(split.heldout_ids)
    touched = np.array([[g in held or p in held for p in matrix.probe_ids] for g in matrix.gallery_ids])
    rng = np.random.default_rng(seed)
    scrambled = np.where(touched, rng.random(matrix.shape), matrix.values)
    other = DistanceMatrix(matrix.gallery_ids, matrix.probe_ids, scrambled, matrix.metric)
    assert fit_threshold(other, split.calibration_ids, policy=policy) == threshold
    ev = evaluate_matrix(matrix, split=split, policy=policy, n_bootstrap=0)
    assert ev.threshold == threshold
    assert ev.counts.tp + ev.counts.fn == len(split.heldout_ids)  # counts come from held-out only


def test_split_is_seeded_order_free_and_fit_on_all_at_one():
    ids = [f"p{i}" for i in range(20)]
    a = make_split(ids, seed=1)
    assert a == make_split(list(reversed(ids)), seed=1)
    assert a != make_split(ids, seed=2)
    assert len(a.calibration_ids) == 14 and len(a.heldout_ids) == 6
    full = make_split(ids, calibration=1.0)
    assert full.fit_on_all and set(full.heldout_ids) == set(ids)
