"""evaluate_matrix on shapes the pipeline may produce: distractors, mate-less probes, failures."""

from __future__ import annotations

import numpy as np
import pytest

from defacebench.errors import EvaluationError
from defacebench.metrics import DistanceMatrix, evaluate_matrix, make_kfold, make_split


def test_distractor_gallery_rows_and_mateless_probes():
    gallery = ["a", "b", "c", "x"]  # x: a distractor with no probe
    probe = ["a", "b", "c", "y"]  # y: a probe with no gallery mate
    values = np.array([
        [0.1, 0.9, 0.9, 0.5],
        [0.9, 0.6, 0.9, 0.5],
        [0.9, 0.9, 0.2, 0.5],
        [0.9, 0.3, 0.9, 0.5],  # the distractor beats b's genuine row
    ])
    ev = evaluate_matrix(DistanceMatrix(gallery, probe, values, "cosine"), calibration=1.0, n_bootstrap=50)
    assert ev.n == 5 and ev.n_gallery == 4 and ev.n_probe == 4
    assert ev.rank1 == pytest.approx(2 / 3)  # y is left out of identification
    assert ev.cmc[:2] == pytest.approx((2 / 3, 1.0))
    assert ev.identified_ids == ("a", "c")
    assert ev.chance["rank1"] == 0.25
    assert ev.counts.tp + ev.counts.fn == 3  # three genuine pairs


def test_detection_rate_from_matrix_or_given():
    ids = [f"s{i}" for i in range(6)]
    values = np.full((6, 6), 0.7)
    np.fill_diagonal(values, 0.2)
    values[:, 1] = np.inf
    m = DistanceMatrix(ids, ids, values, "euclidean_l2")
    assert evaluate_matrix(m, n_bootstrap=0).detection_rate == pytest.approx(5 / 6)
    given = evaluate_matrix(m, n_bootstrap=0, detection={"gallery": 1.0, "probe": 0.5})
    assert given.detection_rate == 0.5 and given.to_dict()["detection"] == {"gallery": 1.0, "probe": 0.5}


def test_errors_are_explained():
    with pytest.raises(EvaluationError, match="no genuine pair"):
        evaluate_matrix(DistanceMatrix(["a", "b"], ["c", "d"], np.zeros((2, 2)), "cosine"), calibration=1.0)
    ids = [f"s{i}" for i in range(6)]
    m = DistanceMatrix(ids, ids, np.eye(6), "cosine")
    with pytest.raises(EvaluationError, match="absent from the matrix"):
        evaluate_matrix(m, split=make_split(ids + ["zz"]))
    with pytest.raises(EvaluationError, match="protocol"):
        evaluate_matrix(m, protocol="study")
    with pytest.raises(EvaluationError, match="at least 4"):
        make_split(["a", "b", "c"])


def test_kfold_partitions_the_subjects():
    ids = [f"s{i}" for i in range(11)]
    folds = make_kfold(ids, k=3, seed=2)
    held = [set(f.heldout_ids) for f in folds]
    assert set().union(*held) == set(ids) and sum(map(len, held)) == 11
    for f in folds:
        assert not set(f.calibration_ids) & set(f.heldout_ids)
        assert set(f.calibration_ids) | set(f.heldout_ids) == set(ids)
