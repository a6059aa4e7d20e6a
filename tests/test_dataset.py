"""Tests of dataset discovery (defacebench.data.dataset) on real folders of real NIfTI and DICOM files."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from defacebench.data.dataset import Acquisition, discover, natural_key
from defacebench.data.dicom_write import SeriesInfo, write_series
from defacebench.errors import DatasetError


def nifti(path: Path, value: float = 0.0) -> Path:
    """A tiny real NIfTI file (non-cubic, LPS-stored)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.full((3, 4, 5), value, np.float32), np.diag([-1.0, -1.0, 2.0, 1.0])), path)
    return path


def dicom(folder: Path, key: str) -> Path:
    """A tiny real DICOM series."""
    write_series(np.zeros((4, 3, 3), np.float32), np.diag([1.0, 1.0, 2.0, 1.0]), folder, SeriesInfo(key))
    return folder


def test_numbered_subject_folders_with_dicom_and_nifti_sort_naturally(tmp_path):
    for sid in ("10", "2", "1"):
        dicom(tmp_path / sid, sid)
    nifti(tmp_path / "patient_b" / "scan.nii.gz")
    ds = discover(tmp_path)
    assert ds.subject_ids == ("1", "2", "10", "patient_b")
    assert ds.failures == ()
    first = ds.subjects[0].acquisitions[0]
    assert first == Acquisition("1", "", tmp_path / "1", "dicom") and first.acq_id == "1"
    assert ds.subjects[-1].acquisitions[0].kind == "nifti"


def test_session_subfolders_become_two_acquisitions_of_one_subject(tmp_path):
    dicom(tmp_path / "001" / "scan", "a")
    dicom(tmp_path / "001" / "rescan", "b")
    nifti(tmp_path / "002" / "ses-1" / "x.nii")
    ds = discover(tmp_path)
    s1 = ds.subjects[0]
    assert [a.acq_id for a in s1.acquisitions] == ["001_rescan", "001_scan"]
    assert ds.subjects[1].acquisitions[0].session == "1"


def test_bids_like_tree(tmp_path):
    nifti(tmp_path / "sub-02" / "ses-a" / "ct" / "sub-02_ses-a_ct.nii.gz")
    nifti(tmp_path / "sub-02" / "ses-b" / "anat" / "sub-02_ses-b_T1w.nii.gz")
    nifti(tmp_path / "sub-10" / "ct" / "sub-10_ct.nii.gz")
    (tmp_path / "sub-11" / "ct").mkdir(parents=True)
    (tmp_path / "sub-02" / "ses-a" / "ct" / "sub-02_ses-a_ct.json").write_text("{}")
    ds = discover(tmp_path)
    assert ds.subject_ids == ("02", "10")
    assert [a.acq_id for a in ds.subjects[0].acquisitions] == ["02_a", "02_b"]
    assert ds.subjects[1].acquisitions[0].session == ""
    assert len(ds.failures) == 1 and ds.failures[0].subject_id == "11"
    assert "no NIfTI file" in ds.failures[0].reason


def test_flat_nifti_folder(tmp_path):
    for name in ("case10.nii.gz", "case9.nii", "case1.nii.gz"):
        nifti(tmp_path / name)
    (tmp_path / "README.txt").write_text("notes")
    ds = discover(tmp_path)
    assert ds.subject_ids == ("case1", "case9", "case10")
    assert all(a.kind == "nifti" for a in ds.acquisitions)


def test_csv_manifest_with_sessions_and_relative_paths(tmp_path):
    nifti(tmp_path / "data" / "a.nii.gz")
    nifti(tmp_path / "data" / "b.nii.gz")
    dicom(tmp_path / "data" / "ser", "c")
    (tmp_path / "m.csv").write_text(
        "subject_id,path,session\nX7,data/a.nii.gz,pre\nX7,data/b.nii.gz,post\nX10,data/ser,\nX2,data/gone.nii,\n"
    )
    ds = discover(tmp_path / "m.csv")
    assert ds.subject_ids == ("X7", "X10")
    assert [a.acq_id for a in ds.subjects[0].acquisitions] == ["X7_post", "X7_pre"]
    assert ds.subjects[1].acquisitions[0].kind == "dicom"
    assert ds.failures[0].subject_id == "X2" and "does not exist" in ds.failures[0].reason


def test_manifest_without_required_columns_is_unusable(tmp_path):
    (tmp_path / "m.csv").write_text("id,file\n1,a.nii\n")
    with pytest.raises(DatasetError, match=r"m\.csv.*subject_id,path"):
        discover(tmp_path / "m.csv")


def test_duplicate_subject_ids_fail_that_subject_only(tmp_path):
    nifti(tmp_path / "flat" / "s1.nii")
    nifti(tmp_path / "flat" / "s1.nii.gz")
    nifti(tmp_path / "flat" / "s2.nii.gz")
    ds = discover(tmp_path / "flat")
    assert ds.subject_ids == ("s2",)
    assert len(ds.failures) == 1 and ds.failures[0].subject_id == "s1"
    assert "duplicate subject id 's1'" in ds.failures[0].reason
    (tmp_path / "m.csv").write_text(f"subject_id,path\nA,{tmp_path}/flat/s2.nii.gz\nA,{tmp_path}/flat/s1.nii\n")
    with pytest.raises(DatasetError, match="no usable subject: all 1 failed discovery .duplicate subject id 'A'"):
        discover(tmp_path / "m.csv")  # every subject failed: the dataset is unusable, and says why


def test_empty_subject_folder_is_a_failure_row_not_an_exception(tmp_path):
    dicom(tmp_path / "1", "a")
    (tmp_path / "2").mkdir()
    (tmp_path / "3" / "scan").mkdir(parents=True)
    ds = discover(tmp_path)
    assert ds.subject_ids == ("1",)
    assert [f.subject_id for f in ds.failures] == ["2", "3"]
    assert all("empty folder" in f.reason for f in ds.failures)


def test_several_nifti_files_in_one_subject_folder_fail(tmp_path):
    nifti(tmp_path / "7" / "a.nii.gz")
    nifti(tmp_path / "7" / "b.nii.gz")
    nifti(tmp_path / "8" / "a.nii.gz")
    ds = discover(tmp_path)
    assert ds.subject_ids == ("8",) and "several image files" in ds.failures[0].reason


def test_unusable_roots_raise(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        discover(tmp_path / "missing")
    with pytest.raises(DatasetError, match="no subjects found"):
        discover(tmp_path)
    nifti(tmp_path / "one.nii")
    with pytest.raises(DatasetError, match="folder or a CSV manifest"):
        discover(tmp_path / "one.nii")


def test_fingerprint_tracks_content_and_is_stable(tmp_path):
    nifti(tmp_path / "a.nii", 1.0)
    nifti(tmp_path / "b.nii", 2.0)
    fp = discover(tmp_path).fingerprint()
    assert fp == discover(tmp_path).fingerprint()
    target = tmp_path / "b.nii"
    nifti(target, 3.0)
    os.utime(target, ns=(1, 1))  # a different mtime too, so the memo cannot hide the change
    assert discover(tmp_path).fingerprint() != fp


def test_natural_key_orders_numbers_numerically():
    ids = ["sub-10", "sub-2", "sub-1", "b", "A"]
    assert sorted(ids, key=natural_key) == ["A", "b", "sub-1", "sub-2", "sub-10"]
