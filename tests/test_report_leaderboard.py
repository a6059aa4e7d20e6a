"""Leaderboard rows, privacy gain, Markdown/CSV/HTML files, per-config artifacts, `defacebench report`."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from defacebench.cli import main
from defacebench.metrics import DistanceMatrix, evaluate_matrix
from defacebench.report import LeaderboardRow, rows_from_run, write_config_artifacts, write_leaderboard

IDS = [f"s{i:02d}" for i in range(12)]


def _matrix(separation: float, seed: int = 0) -> DistanceMatrix:
    rng = np.random.default_rng(seed)
    values = rng.random((12, 12)) * 0.5 + 0.4
    values[np.diag_indices(12)] -= separation
    values[:, 5] = np.inf  # one defaced render without a face
    return DistanceMatrix(IDS, IDS, values, "cosine")


@pytest.fixture(scope="module")
def evaluations():
    return {
        "none": (_matrix(0.4), evaluate_matrix(_matrix(0.4), n_bootstrap=100)),
        "fsl_deface": (_matrix(0.05, 1), evaluate_matrix(_matrix(0.05, 1), n_bootstrap=100)),
    }


def test_config_artifacts_are_written_and_images_can_be_turned_off(tmp_path, evaluations):
    matrix, ev = evaluations["none"]
    out = write_config_artifacts(tmp_path / "a", matrix=matrix, evaluation=ev, extra={"status": "ok"})
    assert DistanceMatrix.read_csv(out.distances) == matrix
    data = json.loads(out.metrics.read_text())
    assert data["rank1"] == ev.rank1 and data["extra"] == {"status": "ok"}
    with Image.open(out.plot) as img:
        assert img.size[0] > 300
    off = write_config_artifacts(tmp_path / "b", matrix=matrix, evaluation=ev, images=False)
    assert off.plot is None and not list((tmp_path / "b").glob("*.png"))


def test_privacy_gain_control_first_and_md_csv(tmp_path, evaluations):
    fsl = LeaderboardRow.from_evaluation("fsl_deface-surface-dlib_hog-dlib_resnet", evaluations["fsl_deface"][1],
                                         qc={"ok": 10, "failed": 2})
    ctrl = LeaderboardRow.from_evaluation("none-surface-dlib_hog-dlib_resnet", evaluations["none"][1])
    other = LeaderboardRow.from_evaluation("fsl_deface-surface-dlib_hog-deepface_arcface", evaluations["fsl_deface"][1])
    assert fsl.defacer == "fsl_deface" and fsl.recognizer == "dlib_resnet" and fsl.failure_rate == pytest.approx(2 / 12)
    write_leaderboard(tmp_path, [fsl, other, ctrl])
    rows = list(csv.DictReader((tmp_path / "leaderboard.csv").read_text().splitlines()))
    # control first, then by id, whatever order the rows came in (a rebuild must write the same file)
    assert [r["config_id"] for r in rows] == [ctrl.config_id, other.config_id, fsl.config_id]
    assert float(rows[2]["privacy_gain"]) == pytest.approx(ctrl.rank1 - fsl.rank1)
    assert ctrl.rank1 > fsl.rank1
    assert rows[1]["privacy_gain"] == ""  # no control row with that recognizer
    assert float(rows[0]["privacy_gain"]) == 0.0
    assert rows[2]["qc_failed"] == "2" and float(rows[2]["rank1_lo"]) <= float(rows[2]["rank1"])
    assert float(rows[2]["rank1_chance"]) == pytest.approx(1 / 12) and float(rows[2]["rank5_chance"]) == pytest.approx(5 / 12)
    md = (tmp_path / "leaderboard.md").read_text().splitlines()
    md = md[md.index("# Leaderboard"):]  # the verdict per defacer comes first
    assert md[2].startswith("| config") and ctrl.config_id in md[4] and fsl.config_id in md[6]
    assert f"{fsl.rank1:.3f} [{fsl.rank1_ci[0]:.3f}, {fsl.rank1_ci[1]:.3f}]" in md[6]
    assert f"{fsl.rank5:.3f} [{fsl.rank5_ci[0]:.3f}, {fsl.rank5_ci[1]:.3f}]" in md[6] and "0.083 / 0.417" in md[6]
    assert write_leaderboard(tmp_path, [ctrl, other, fsl]) and \
        list(csv.DictReader((tmp_path / "leaderboard.csv").read_text().splitlines())) == rows


def test_rank1_and_rank5_carry_exact_intervals_that_never_collapse(evaluations):
    """Issue 19: 0 of N showed as "0.000 [0.000, 0.000]"; the exact interval of 0/16 is [0, 0.206]."""
    ids = [f"s{i:02d}" for i in range(16)]
    values = np.full((16, 16), 0.5)
    values[np.diag_indices(16)] = 0.9  # nobody identified
    ev = evaluate_matrix(DistanceMatrix(ids, ids, values + np.arange(16)[:, None] * 1e-3, "cosine"), n_bootstrap=50)
    row = LeaderboardRow.from_evaluation("quickshear-surface-dlib_hog-dlib_resnet", ev)
    assert row.rank1 == 0.0 and row.rank1_ci == pytest.approx((0.0, 0.2059), abs=1e-4)
    assert row.rank1_chance == 1 / 16 and row.rank5_chance == 5 / 16
    data = ev.to_dict()
    assert data["ci"]["rank1_exact"] == pytest.approx([0.0, 0.2059], abs=1e-4) and data["chance"]["rank1"] == 1 / 16
    full = evaluations["none"][1].to_dict()
    assert full["ci"]["rank1_exact"][0] > 0 and full["ci"]["rank1_exact"][1] <= 1.0
    # the per-probe facts the verdict's permutation test needs: rank-1 is exactly their hit rate
    assert np.mean([full["identification"]["nearest"][p] == p for p in full["identification"]["nearest"]]) == \
        pytest.approx(full["rank1"])


def test_failed_configuration_row_has_no_numbers(tmp_path):
    row = LeaderboardRow.from_failure("quickshear-surface-dlib_hog-dlib_resnet", "error: DefaceError")
    write_leaderboard(tmp_path, [row])
    text = (tmp_path / "leaderboard.md").read_text()
    assert "error: DefaceError" in text and row.rank1 is None


def test_report_cli_rebuilds_the_leaderboard_from_metrics_files(tmp_path, evaluations, capsys):
    run = tmp_path / "run"
    for defacer, (matrix, ev) in evaluations.items():
        cid = f"{defacer}-surface-dlib_hog-dlib_resnet"
        qc = {"ok": 11, "failed": 1}
        if defacer == "none":  # the pipeline's summary shape
            qc = {"labels": qc, "failure_rate": 0.25}
        write_config_artifacts(run / cid, matrix=matrix, evaluation=ev, extra={"qc": qc})
        Image.new("RGB", (64, 32), (200, 100, 50)).save(run / cid / "montage.png")
    assert main(["report", str(run)]) == 0
    rows = rows_from_run(run)
    assert {r.defacer for r in rows} == {"none", "fsl_deface"}
    assert all(r.montage is not None and r.plot is not None and r.qc == {"ok": 11, "failed": 1} for r in rows)
    assert {r.defacer: r.failure_rate for r in rows} == {"none": 0.25, "fsl_deface": pytest.approx(1 / 12)}
    html = (run / "leaderboard.html").read_text()
    assert html.count("data:image/png;base64,") == 6  # heatmap, attacks + 2 montages + 2 plots, all inline
    assert "src=\"/" not in html and "src=\"file:" not in html and "src=\"none" not in html  # self-contained
    assert main(["report", str(run), "--no-images"]) == 0
    assert "data:image" not in (run / "leaderboard.html").read_text()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "metrics.json" in capsys.readouterr().err


def test_report_keeps_each_scenario_of_a_configuration_apart(tmp_path, evaluations, capsys):
    """Issue 25: results of scenarios other than rescan (folders `<config>-<scenario>`) were rebuilt
    as `<config>-<scenario>-<scenario>` with empty defacer and renderer fields, and their controls
    became attacker_invalid."""
    run = tmp_path / "run"
    for defacer, (matrix, ev) in evaluations.items():
        cid = f"{defacer}-surface-dlib_hog-dlib_resnet"
        for scenario, folder in (("rescan", cid), ("aware", f"{cid}-aware")):
            write_config_artifacts(run / folder, matrix=matrix, evaluation=ev, images=False,
                                   extra={"config_id": cid, "scenario": scenario, "fusion": "single"})
    rows = rows_from_run(run)
    assert sorted(r.key for r in rows) == sorted(f"{d}-surface-dlib_hog-dlib_resnet{s}" for d in evaluations
                                                 for s in ("", "-aware"))
    assert all(r.defacer in evaluations and r.renderer == "surface" for r in rows)
    first = write_leaderboard(run, rows)
    assert {v.defacer for v in first} == set(evaluations) and all(v.n_attacks == 2 for v in first)
    tables = {name: (run / name).read_bytes() for name in ("leaderboard.md", "leaderboard.csv", "defacers.csv")}
    assert main(["report", str(run), "--no-images"]) == 0
    assert {name: (run / name).read_bytes() for name in tables} == tables  # identical rebuild
    assert "attacker_invalid" not in tables["leaderboard.csv"].decode()


def test_report_on_a_run_with_a_result_folder_missing_warns(tmp_path, evaluations, capsys):
    """Issue 25: `report` on a run folder whose configuration folder was deleted rebuilt a different
    verdict without a word."""
    run = tmp_path / "run"
    keys = []
    for defacer, (matrix, ev) in evaluations.items():
        cid = f"{defacer}-surface-dlib_hog-dlib_resnet"
        for scenario, folder in (("rescan", cid), ("aware", f"{cid}-aware")):
            write_config_artifacts(run / folder, matrix=matrix, evaluation=ev, images=False,
                                   extra={"config_id": cid, "scenario": scenario})
            keys.append(folder)
    (run / "manifest.json").write_text(json.dumps({"run": {"images": False},
                                                   "configurations": {k: {"status": "passed"} for k in keys}}))
    assert main(["report", str(run)]) == 0
    assert "warning" not in capsys.readouterr().err
    shutil.rmtree(run / "fsl_deface-surface-dlib_hog-dlib_resnet-aware")
    assert main(["report", str(run)]) == 0
    out = capsys.readouterr()
    assert "warning" in out.err and "1 result folder(s) the run wrote are missing" in out.err
    assert "fsl_deface-surface-dlib_hog-dlib_resnet-aware" in out.err
    assert "REWRITTEN defacers.csv" in out.out and (run / "defacers.csv.orig").is_file()
