"""Tests of ``defacebench convert`` on a small real dataset with good and broken subjects."""

from __future__ import annotations

import json

import numpy as np
import pytest

from defacebench.cli import main
from defacebench.data.dicom_write import SeriesInfo, write_series
from defacebench.data.volume import load_volume


def series(folder, key, shape=(6, 5, 4)):
    """A tiny real DICOM series with a non-identity (LPS-stored after writing) geometry, values 40-42 HU."""
    aff = np.diag([0.9, 1.1, 2.0, 1.0])
    aff[:3, 3] = [-3.0, 4.0, 10.0]
    write_series(40.0 + np.indices(shape).sum(axis=0) % 3, aff, folder,
                 SeriesInfo(key, patient_name="ROE^RICHARD", patient_id="MRN-991"))


@pytest.fixture
def mixed_dataset(tmp_path):
    root = tmp_path / "data"
    series(root / "2", "b")
    series(root / "10", "c")
    (root / "3").mkdir(parents=True)  # empty subject folder
    series(root / "4", "d")
    (root / "4" / "slice_0002.dcm").write_bytes(b"garbage")  # corrupt file
    return root


@pytest.mark.parametrize("converter", ["dicom2nifti", "dcm2niix"])
def test_convert_writes_volumes_and_report_and_lists_failures(mixed_dataset, tmp_path, capsys, converter):
    out = tmp_path / "out"
    code = main(["convert", str(mixed_dataset), "--out", str(out), "--converter", converter,
                 "--executor", "serial"])
    assert code == 0
    report = json.loads((out / "conversion_report.json").read_text())
    assert [c["acq_id"] for c in report["converted"]] == ["2", "10"]
    assert {(f["subject_id"], f["stage"]) for f in report["failures"]} == {("3", "discover"), ("4", "convert")}
    assert any("slice_0002.dcm" in f["reason"] for f in report["failures"])
    assert "ROE" not in json.dumps(report) and "MRN-991" not in json.dumps(report)
    vol = load_volume(out / "2.nii.gz")
    assert vol.data.shape == (6, 5, 4) and set(np.unique(vol.data)) == {40.0, 41.0, 42.0}
    printed = capsys.readouterr().out
    assert "converted 2 of 3 acquisitions" in printed and "FAILED 4" in printed


def test_convert_exit_code_is_1_when_nothing_converts(tmp_path):
    root = tmp_path / "data"
    series(root / "1", "a", shape=(6, 5, 1))  # single slice
    assert main(["convert", str(root), "--out", str(tmp_path / "o"), "--executor", "serial"]) == 1
    report = json.loads((tmp_path / "o" / "conversion_report.json").read_text())
    assert "single slice" in report["failures"][0]["reason"]


def test_unusable_dataset_root_is_a_clear_error(tmp_path, capsys):
    assert main(["convert", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 1
    assert "does not exist" in capsys.readouterr().err
