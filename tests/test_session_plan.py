"""What a session decides before and around the work: scenario specs that match no attacker, datasets
with one acquisition per subject, calibration fractions a small dataset cannot honour, and input
decisions (a forced modality) the console must show."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from defacebench.errors import DefacebenchError
from defacebench.run.config import RunConfig
from defacebench.run.session import Session, Status
from session_helpers import ATTACKER, run_session, sample_nifti, small_copy


def _single_session(sample_dataset: Path, folder: Path, subjects=("001", "002", "003", "004")) -> Path:
    """A flat folder of NIfTI files: one acquisition (the scan) per subject (small copies)."""
    for subject in subjects:
        small_copy(sample_nifti(sample_dataset, subject, "scan"), folder / f"{subject}.nii.gz")
    return folder


# ------------------------------------------------------------------ scenario specs

def test_a_scenario_spec_whose_attacker_glob_matches_nothing_is_an_error_naming_it():
    config = RunConfig(scenarios=("rescan", "multiview@surfce-*"), defacers=("none",), **ATTACKER)
    with pytest.raises(DefacebenchError) as error:
        Session(config).plan()
    message = str(error.value)
    assert "multiview@surfce-*" in message and "--scenarios" in message
    assert "renderers: surface" in message and "detectors: dlib_hog" in message, message
    # the default specs name attackers a restricted run may not have: they narrow, they do not fail
    plan = Session(RunConfig(defacers=("none",), renderers=("surface",), detectors=("opencv_haar",),
                             recognizers=("dlib_resnet",))).plan()
    assert {p.scenario for p in plan} == {"rescan"}


# ------------------------------------------------------------------ one acquisition per subject

@pytest.fixture(scope="module")
def single_dataset(sample_dataset, tmp_path_factory) -> Path:
    return _single_session(sample_dataset, tmp_path_factory.mktemp("single") / "data")


def test_one_session_per_subject_skips_rescan_scenarios_and_runs_seed(single_dataset, tmp_path):
    pytest.importorskip("dlib")
    config = RunConfig(dataset=single_dataset, results=tmp_path / "runs", cache_dir=tmp_path / "cache",
                       defacers=("none",), **ATTACKER, n_bootstrap=20, images=False, executor="serial")
    plan = Session(config).plan()
    skipped = {p.scenario: p.skip for p in plan if p.skip}
    assert set(skipped) == {"rescan", "multiview", "svm", "aware", "refill_template"}
    assert all("one acquisition per subject" in why and "seed runs" in why for why in skipped.values()), skipped
    assert [p.key for p in plan if not p.skip] == ["none-surface-dlib_hog-dlib_resnet-seed"]
    session, finish = run_session(config)
    assert session.statuses["none-surface-dlib_hog-dlib_resnet-seed"].status == "passed"
    assert session.statuses["none-surface-dlib_hog-dlib_resnet"].status == "skipped"
    assert (session.run.run_dir / "leaderboard.md").is_file()
    assert session.outcomes["none-surface-dlib_hog-dlib_resnet-seed"].row.n == 4


# ------------------------------------------------------------------ calibration on a small dataset

def test_a_calibration_fraction_the_dataset_cannot_honour_is_reported_and_recorded(single_dataset, tmp_path):
    config = RunConfig(dataset=single_dataset, results=tmp_path / "runs", cache_dir=tmp_path / "cache",
                       defacers=("none",), **ATTACKER, calibration=0.1, scenarios=("seed",))
    session = Session(config)
    session.plan()
    session.prepare()
    notice = " ".join(session.notices)
    assert "--calibration 0.1" in notice and "4 subjects" in notice and "2 calibrate, 2 held out" in notice
    session.record("x", Status("skipped", "not run here"))
    finish = session.finish()
    assert any("--calibration 0.1" in line for line in finish.lines)
    manifest = json.loads((session.run.run_dir / "manifest.json").read_text())
    assert manifest["calibration"] == {"requested": 0.1, "used": 0.5, "calibration_subjects": 2,
                                       "heldout_subjects": 2}


# ------------------------------------------------------------------ a forced modality is printed

def test_a_modality_override_warning_is_printed_not_only_recorded(sample_dataset, tmp_path):
    data = _single_session(sample_dataset, tmp_path / "data", subjects=("001",))
    config = RunConfig(dataset=data, results=tmp_path / "runs", cache_dir=tmp_path / "cache", defacers=("none",),
                       **ATTACKER, modality="mri", calibration=1.0, scenarios=("seed",), executor="serial")
    session = Session(config)
    session.prepare()
    assert session.run.volumes()["001"].ok
    session.record("x", Status("skipped", "not run here"))
    lines = [line for line in session.finish().lines if "--modality mri" in line]
    assert len(lines) == 1 and "1 acquisition" in lines[0] and "look like CT" in lines[0], lines
