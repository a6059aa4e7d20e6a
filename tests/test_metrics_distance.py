"""DistanceMatrix: construction from embeddings (deepface's definitions), CSV layouts, validation."""

from __future__ import annotations

import numpy as np
import pytest

from defacebench.errors import EvaluationError
from defacebench.metrics import DistanceMatrix


def _reference(a: np.ndarray, b: np.ndarray, metric: str) -> float:
    """deepface's formulas, one pair at a time."""
    if metric == "cosine":
        return 1.0 - float(a @ b) / (np.sqrt(a @ a) * np.sqrt(b @ b))
    if metric == "euclidean":
        return float(np.sqrt(((a - b) ** 2).sum()))
    a, b = a / np.sqrt(a @ a), b / np.sqrt(b @ b)
    return float(np.sqrt(((a - b) ** 2).sum()))


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "euclidean_l2"])
def test_from_embeddings_matches_pairwise_formulas_and_marks_missing_rows_inf(metric):
    rng = np.random.default_rng(3)
    g, p = rng.normal(size=(5, 7)), rng.normal(size=(4, 7))
    g[1] = np.nan  # gallery render without a face
    p[2] = np.nan  # defaced render without a face
    m = DistanceMatrix.from_embeddings(list("abcde"), g, list("abcd"), p, metric=metric)
    assert m.shape == (5, 4) and m.metric == metric
    for i in range(5):
        for j in range(4):
            if i == 1 or j == 2:
                assert m.values[i, j] == np.inf
            else:
                assert m.values[i, j] == pytest.approx(_reference(g[i], p[j], metric), abs=1e-12)


def test_zero_vector_has_no_direction_and_is_missing_under_cosine():
    g = np.array([[0.0, 0.0], [1.0, 0.0]])
    m = DistanceMatrix.from_embeddings(["a", "b"], g, ["a", "b"], g.copy(), metric="cosine")
    assert np.isinf(m.values[0]).all() and np.isinf(m.values[:, 0]).all()
    assert m.values[1, 1] == pytest.approx(0.0)


@pytest.mark.parametrize("layout", ["ours", "seed"])
def test_csv_round_trip_is_exact_in_both_layouts(tmp_path, layout):
    rng = np.random.default_rng(0)
    values = rng.random((3, 4))
    values[0, 2] = np.inf
    m = DistanceMatrix(("2", "4", "x y"), ("2", "4", "x y", "9"), values, "euclidean_l2")
    path = tmp_path / f"{layout}.csv"
    m.to_csv(path, layout=layout)
    back = DistanceMatrix.read_csv(path, metric=None if layout == "ours" else "euclidean_l2")
    assert back == m
    first = path.read_text().splitlines()[0]
    if layout == "seed":
        assert first.startswith(",2_d,4_d,")
        assert path.read_text().splitlines()[1].startswith("2_n,")
    else:
        assert first.startswith("metric=euclidean_l2,2,4,")


def test_seed_layout_without_metric_defaults_to_cosine_and_reads_blank_and_nan_as_inf(tmp_path):
    path = tmp_path / "study.csv"
    path.write_text(",2_d,4_d\n2_n,0.12,nan\n4_n,,0.3\n")
    with pytest.warns(UserWarning, match=r"study\.csv: 1 NaN cell"):
        m = DistanceMatrix.read_csv(path)
    assert m.metric == "cosine"
    assert m.gallery_ids == ("2", "4") and m.probe_ids == ("2", "4")
    assert m.values[0, 0] == 0.12 and np.isinf(m.values[0, 1]) and np.isinf(m.values[1, 0])


def test_read_csv_names_the_file_and_the_cell_on_bad_input(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("metric=cosine,a,b\na,0.1,zzz\nb,0.2,0.3\n")
    with pytest.raises(EvaluationError, match=r"bad\.csv.*row 2, column 3"):
        DistanceMatrix.read_csv(path)
    path.write_text("metric=cosine,a,b\na,0.1\n")
    with pytest.raises(EvaluationError, match="bad.csv"):
        DistanceMatrix.read_csv(path)
    path.write_text("metric=cosine,a,b\na,0.1,0.2\n")
    with pytest.raises(EvaluationError, match="euclidean"):
        DistanceMatrix.read_csv(path, metric="euclidean")


def test_validation_rejects_nan_duplicate_ids_and_wrong_shape():
    with pytest.raises(EvaluationError, match="NaN"):
        DistanceMatrix(("a",), ("a",), np.array([[np.nan]]), "cosine")
    with pytest.raises(EvaluationError, match="unique"):
        DistanceMatrix(("a", "a"), ("a",), np.zeros((2, 1)), "cosine")
    with pytest.raises(EvaluationError, match="shape"):
        DistanceMatrix(("a", "b"), ("a",), np.zeros((1, 2)), "cosine")
    with pytest.raises(EvaluationError, match="metric"):
        DistanceMatrix(("a",), ("a",), np.zeros((1, 1)), "manhattan")


def test_values_are_read_only():
    m = DistanceMatrix(("a",), ("a",), np.zeros((1, 1)), "cosine")
    with pytest.raises(ValueError):
        m.values[0, 0] = 1.0
