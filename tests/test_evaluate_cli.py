"""``defacebench evaluate``: the seed protocol on a hand-made study-layout CSV, JSON keys, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from defacebench.cli import main

# The study's layout: originals ({id}_n) in rows, defaced ({id}_d) in columns, 2-decimal distances.
IDS = ["2", "4", "7", "11", "12", "15", "21", "30", "31", "40"]
VALUES = [
    [0.12, 0.55, 0.61, 0.70, 0.33, 0.48, 0.91, 0.62, 0.57, 0.44],
    [0.52, 0.20, 0.43, 0.66, 0.71, 0.15, 0.58, 0.49, 0.60, 0.77],
    [0.64, 0.47, 0.31, 0.59, 0.62, 0.53, 0.35, 0.68, 0.72, 0.50],
    [0.45, 0.60, 0.52, 0.40, 0.57, 0.61, 0.49, 0.55, 0.38, 0.66],
    [0.58, 0.71, 0.66, 0.49, 0.25, 0.63, 0.70, 0.52, 0.61, 0.59],
    [0.69, 0.33, 0.57, 0.62, 0.54, 0.27, 0.61, 0.58, 0.49, 0.73],
    [0.75, 0.62, 0.36, 0.55, 0.68, 0.60, 0.50, 0.64, 0.59, 0.51],
    [0.61, 0.57, 0.63, 0.52, 0.47, 0.66, 0.59, 0.30, 0.55, 0.62],
    [0.56, 0.69, 0.58, 0.37, 0.60, 0.52, 0.65, 0.57, 0.42, 0.29],
    [0.48, 0.74, 0.55, 0.64, 0.51, 0.70, 0.53, 0.61, 0.67, 0.36],
]


@pytest.fixture
def study_csv(tmp_path):
    path = tmp_path / "study_matrix.csv"
    lines = [",".join([""] + [f"{i}_d" for i in IDS])]
    lines += [",".join([f"{i}_n"] + [f"{v:.2f}" for v in row]) for i, row in zip(IDS, VALUES)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _independent_seed(fit_idx: list[int], report_idx: list[int]) -> dict:
    """The study's computation written out with plain loops (FIELD.md 1.7-1.8)."""
    grid = [k / 99 for k in range(100)]  # linspace(0, 1, 100)
    fit = [(VALUES[i][j], i == j) for i in fit_idx for j in fit_idx]
    prec, rec, f1, youden = [], [], [], []
    for t in grid:
        tp = sum(1 for d, g in fit if g and d <= t)
        fp = sum(1 for d, g in fit if not g and d <= t)
        fn = sum(1 for d, g in fit if g and d > t)
        tn = sum(1 for d, g in fit if not g and d > t)
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn)
        prec.append(p)
        rec.append(r)
        f1.append(2 * p * r / (p + r) if p + r else 0.0)
        youden.append(r - fp / (fp + tn))
    best = grid[f1.index(max(f1))]
    auprc = sum((rec[k + 1] - rec[k]) * (prec[k + 1] + prec[k]) / 2 for k in range(99))
    gen = [d for d, g in fit if g]
    imp = [d for d, g in fit if not g]
    # roc_auc_score(identity, distances) = P(genuine distance > impostor distance) + ties / 2
    auc_of_distances = sum((a > b) + 0.5 * (a == b) for a in gen for b in imp) / (len(gen) * len(imp))
    rep = [(VALUES[i][j], i == j) for i in report_idx for j in report_idx]
    return {
        "threshold": best,
        "youden_threshold": grid[youden.index(max(youden))],
        "auprc_grid": auprc,
        "roc_auc": 1 - auc_of_distances,
        "tp": sum(1 for d, g in rep if g and d <= best),
        "fp": sum(1 for d, g in rep if not g and d <= best),
        "fn": sum(1 for d, g in rep if g and d > best),
    }


def _run_json(capsys, *argv) -> dict:
    assert main(["evaluate", *map(str, argv), "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # exactly one JSON object on stdout
    return json.loads(out)


@pytest.mark.parametrize("split", ["1.0", "0.7"])
def test_seed_protocol_matches_an_independent_computation(study_csv, capsys, split):
    got = _run_json(capsys, study_csv, "--protocol", "seed", "--split", split, "--bootstrap", "50")
    n_fit = 10 if split == "1.0" else 7  # the study's split: first 70 % of ids in file order
    fit_idx = list(range(n_fit))
    report_idx = fit_idx if split == "1.0" else list(range(7, 10))
    want = _independent_seed(fit_idx, report_idx)
    for key in ("threshold", "youden_threshold", "auprc_grid", "roc_auc"):
        assert got[key] == pytest.approx(want[key], abs=1e-12), key
    for key in ("tp", "fp", "fn"):
        assert got[key] == want[key], key
    assert got["protocol"] == "seed" and got["metric"] == "cosine" and got["policy"] == "f1"
    assert got["split"]["calibration_ids"] == IDS[:n_fit]
    assert got["n"] == 10 and got["n_calibration"] == n_fit
    assert got["threshold_detail"]["fitted_on"] == sorted(IDS[:n_fit])


def test_json_has_the_issue_keys_under_both_protocols(study_csv, capsys):
    keys = {"n", "metric", "protocol", "roc_auc", "average_precision", "eer", "rank1", "rank5", "tar_at_far",
            "threshold", "policy", "tp", "fp", "fn", "tn", "precision", "recall", "f1", "youden_threshold"}
    default = _run_json(capsys, study_csv, "--bootstrap", "20", "--seed", "4")
    assert keys <= default.keys() and "auprc_grid" not in default
    assert set(default["tar_at_far"]) == {"0.1", "0.01", "0.001"}
    assert default["split"]["seed"] == 4 and default["n_heldout"] == 3
    assert not set(default["split"]["heldout_ids"]) & set(default["threshold_detail"]["fitted_on"])
    seed = _run_json(capsys, study_csv, "--protocol", "seed", "--metric", "euclidean_l2", "--bootstrap", "0")
    assert keys | {"auprc_grid"} <= seed.keys()
    assert seed["metric"] == "euclidean_l2" and seed["grid_max"] == pytest.approx(1.41)


def test_readable_table_and_user_errors(study_csv, tmp_path, capsys):
    assert main(["evaluate", str(study_csv), "--bootstrap", "20"]) == 0
    captured = capsys.readouterr()
    assert "rank-1" in captured.out and "ROC AUC" in captured.out and "TP / FP / FN / TN" in captured.out
    assert "assuming cosine" in captured.err
    missing = tmp_path / "nope.csv"
    assert main(["evaluate", str(missing)]) == 2
    assert "nope.csv" in capsys.readouterr().err
    assert main(["evaluate", str(study_csv), "--policy", "best"]) == 2
    assert "policy" in capsys.readouterr().err


def test_our_layout_round_trips_through_the_cli(tmp_path, capsys):
    from defacebench.metrics import DistanceMatrix

    m = DistanceMatrix(IDS, IDS, np.array(VALUES), "euclidean_l2")
    m.to_csv(tmp_path / "ours.csv")
    got = _run_json(capsys, tmp_path / "ours.csv", "--split", "1.0", "--bootstrap", "0")
    assert got["metric"] == "euclidean_l2" and got["n"] == 10
    assert got["rank1"] == pytest.approx(np.mean([
        all(VALUES[j][j] < VALUES[i][j] for i in range(10) if i != j) for j in range(10)
    ]))


def test_seed_protocol_refuses_other_policies(study_csv, capsys):
    assert main(["evaluate", str(study_csv), "--protocol", "seed", "--policy", "youden"]) == 2
    assert "seed protocol" in capsys.readouterr().err
