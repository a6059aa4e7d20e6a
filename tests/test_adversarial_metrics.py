"""Adversarial cases of ``defacebench evaluate`` (issue 11, item 16): NaN cells are announced,
negative distances are refused (cosine tolerates rounding), each in one line naming the file."""

from __future__ import annotations

import numpy as np
import pytest

from defacebench.cli import main
from defacebench.errors import EvaluationError
from defacebench.metrics import DistanceMatrix
from defacebench.metrics.distance import NonMatchWarning

IDS = ["1", "2", "3", "4", "5"]


def matrix_csv(path, metric: str, cells: dict[tuple[int, int], str]) -> str:
    rng = np.random.default_rng(0)
    values = rng.uniform(0.5, 0.9, (5, 5))
    np.fill_diagonal(values, 0.1)
    rows = [f"metric={metric}," + ",".join(IDS)]
    for i, g in enumerate(IDS):
        rows.append(g + "," + ",".join(cells.get((i, j), repr(float(values[i, j]))) for j in range(5)))
    path.write_text("\n".join(rows) + "\n")
    return str(path)


def test_nan_cells_are_announced_in_one_line_naming_the_file_and_count(tmp_path, capsys):
    path = matrix_csv(tmp_path / "d.csv", "cosine", {(0, 1): "nan", (2, 3): "NaN", (4, 4): ""})
    assert main(["evaluate", path, "--split", "1.0", "--bootstrap", "0", "--json"]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "NaN" in line]
    assert err == [f"defacebench evaluate: warning: {path}: 2 NaN cell(s) read as non-matches "
                   "(+inf, no comparison possible); if NaN means an error upstream, fix the file"]
    with pytest.warns(NonMatchWarning, match="2 NaN cell"):
        DistanceMatrix.read_csv(path)


@pytest.mark.parametrize("metric", ["euclidean", "euclidean_l2", "cosine"])
def test_negative_distances_are_refused_naming_file_and_cell(tmp_path, capsys, metric):
    path = matrix_csv(tmp_path / "d.csv", metric, {(1, 3): "-0.25"})
    assert main(["evaluate", path, "--split", "1.0", "--bootstrap", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and path in err
    assert "row 3, column 5 (2 x 4)" in err and "-0.25" in err and "is negative" in err and "Fix:" in err


def test_cosine_rounding_below_zero_is_tolerated(tmp_path):
    path = matrix_csv(tmp_path / "d.csv", "cosine", {(0, 0): "-2e-16", (1, 1): "-9e-7"})
    assert DistanceMatrix.read_csv(path).values[1, 1] == -9e-7
    with pytest.raises(EvaluationError, match="gallery '1', probe '1'"):
        DistanceMatrix(IDS[:2], IDS[:2], np.array([[-2e-6, 1.0], [1.0, 0.0]]), "cosine")
