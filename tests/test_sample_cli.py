"""Test of ``defacebench sample-data``: builds a one-subject sample into a given folder."""

from __future__ import annotations

from defacebench.cli import main
from defacebench.data.dataset import discover


def test_sample_data_command_builds_a_discoverable_dataset(tmp_path, capsys):
    out = tmp_path / "sample"
    assert main(["sample-data", "--subjects", "1", "--seed", "5", "--out", str(out), "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert str(out / "dicom") in printed and "1 subjects" in printed
    ds = discover(out / "dicom")
    assert ds.subject_ids == ("001",) and [a.session for a in ds.acquisitions] == ["rescan", "scan"]
    assert (out / "COMPLETE").is_file()
    # the folder the user gave as --out also works as a dataset path (it means its DICOM tree)
    assert discover(out).root == out / "dicom"


def test_sample_data_mri_with_a_small_matrix(tmp_path, capsys):
    out = tmp_path / "mri"
    assert main(["sample-data", "--subjects", "1", "--modality", "mri", "--matrix", "64", "--out", str(out),
                 "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert "MRI, matrix 64" in printed
    t1w = sorted((out / "nifti").rglob("*_T1w.nii.gz"))
    assert [p.parent.name for p in t1w] == ["anat", "anat"]
    assert discover(out / "nifti").subject_ids == ("001",)
