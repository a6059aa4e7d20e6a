"""Failed defacings on either side of a comparison, and the QC filter, through real runs.

A command defacer (``flaky``) refuses the volumes that carry a marker voxel: subject 001's rescan
(the gallery of ``rescan`` and ``aware``) and subject 002's scan (the probe). Everything else is
real: the sample's NIfTI copies, conversion, QC, the surface renderer, dlib's detector and ResNet.
One cold run fills a module cache; the other rules and filters re-evaluate from it."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from defacebench.run.config import RunConfig
from session_helpers import ATTACKER, csv_dataset, flaky_plugins_file, run_session

pytest.importorskip("dlib")

FLAKY_RESCAN = "flaky-surface-dlib_hog-dlib_resnet"
FLAKY_AWARE = f"{FLAKY_RESCAN}-aware"
CONTROL_RESCAN = "none-surface-dlib_hog-dlib_resnet"


@pytest.fixture(scope="module")
def base_config(sample_dataset, tmp_path_factory) -> RunConfig:
    """Two-session CSV dataset (001's rescan and 002's scan marked), the flaky defacer, a module cache."""
    root = tmp_path_factory.mktemp("flaky")
    dataset = csv_dataset(sample_dataset, root / "data", marked={("001", "rescan"), ("002", "scan")},
                          subjects=("001", "002", "003", "004"))
    return RunConfig(dataset=dataset, results=root / "runs", cache_dir=root / "cache",
                     plugins_file=flaky_plugins_file(root / "plugins"), defacers=("none", "flaky"), **ATTACKER,
                     scenarios=("rescan", "aware"), calibration=1.0, n_bootstrap=20, images=False,
                     defacer_fail_share=0.6, executor="serial")


@pytest.fixture(scope="module")
def exposed(base_config):
    return run_session(base_config)


def _extra(session, key: str) -> dict:
    return json.loads((session.outcomes[key].outdir / "metrics.json").read_text())["extra"]


def _deface_failures(session, key: str) -> set[tuple[str, str]]:
    return {(f.subject_id, f.role) for f in session.outcomes[key].failures if f.stage == "deface"}


# ------------------------------------------------------------------ aware: the gallery's defacing failed

def test_a_gallery_side_defacing_failure_is_recorded_and_counted(exposed):
    session, _ = exposed
    assert _deface_failures(session, FLAKY_AWARE) == {("001", "gallery"), ("002", "probe")}
    aware = session.outcomes[FLAKY_AWARE].row
    assert aware.defacing_failure_rate == pytest.approx(0.5), "both subjects with a failed defacing count"
    assert _extra(session, FLAKY_AWARE)["defacing_failure_rate"] == pytest.approx(0.5)
    # rescan's gallery is never defaced: only the probe's failure counts there
    assert _deface_failures(session, FLAKY_RESCAN) == {("002", "probe")}
    assert session.outcomes[FLAKY_RESCAN].row.defacing_failure_rate == pytest.approx(0.25)


def test_a_gallery_side_failure_is_scored_by_the_failed_defacing_rule(base_config, exposed):
    session, _ = exposed
    assert session.outcomes[FLAKY_AWARE].row.n == 4
    excluded, _ = run_session(dataclasses.replace(base_config, failed_defacing="excluded"))
    assert excluded.outcomes[FLAKY_AWARE].row.n == 2, "001 (gallery) and 002 (probe) leave the matrix"
    assert excluded.outcomes[FLAKY_RESCAN].row.n == 3
    nonmatch, _ = run_session(dataclasses.replace(base_config, failed_defacing="nonmatch"))
    matrix = nonmatch.outcomes[FLAKY_AWARE].evaluation  # the row of 001's gallery holds no finite distance
    distances = (nonmatch.outcomes[FLAKY_AWARE].outdir / "distances.csv").read_text().splitlines()
    row_001 = next(line for line in distances[1:] if line.split(",")[0] == "001")
    assert all(not np.isfinite(float(v)) for v in row_001.split(",")[1:]), row_001
    assert matrix.n == 4


# ------------------------------------------------------------------ the console names the rule in force

def test_the_console_names_the_failed_defacing_rule_in_force(base_config, exposed):
    _, finish = exposed
    lines = [line for line in finish.lines if "failed on" in line]
    assert lines and all("--failed-defacing exposed" in line for line in lines), lines
    _, excluded = run_session(dataclasses.replace(base_config, failed_defacing="excluded"))
    lines = [line for line in excluded.lines if "failed on" in line]
    assert lines and all("--failed-defacing excluded" in line and "default exposed" not in line for line in lines)


# ------------------------------------------------------------------ --qc-filter keeps only that label

def test_qc_filter_scores_only_subjects_with_that_label(base_config, exposed):
    session, _ = exposed
    labels = _extra(session, FLAKY_RESCAN)["qc"]["per_subject"]
    assert labels["002"] == "failed" and {labels[s] for s in ("001", "003", "004")} == {"face_intact"}
    kept, _ = run_session(dataclasses.replace(base_config, qc_filter="face_intact", scenarios=("rescan",)))
    outcome = kept.outcomes[FLAKY_RESCAN]
    assert outcome.row.n == 3, "the failed subject is not scored under --qc-filter face_intact"
    assert {(f.subject_id, f.stage) for f in outcome.failures} >= {("002", "qc_filter")}, "filtered, not lost"
    assert kept.outcomes[CONTROL_RESCAN].row.n == 4, "the control has no QC label: every subject stays"
    none_left, _ = run_session(dataclasses.replace(base_config, qc_filter="ok", scenarios=("rescan",)))
    status = none_left.statuses[FLAKY_RESCAN]
    assert status.status == "failed" and "--qc-filter ok" in status.reason and "face_intact 3" in status.reason
