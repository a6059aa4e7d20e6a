"""Adversarial cases of dataset input (issue 11, items 2, 8 (discovery), 12 (data writes), 14, 15, 17).

Real DICOM series (pydicom), real NIfTI files (nibabel), real CSV manifests; a full disk and a
read-only folder are a real tmpfs in a private mount namespace.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from adversarial_helpers import needs_namespaces, run_on_small_fs, tiny_ct
from defacebench.data.convert import ConversionParams, convert_acquisition, series_notice
from defacebench.data.dataset import Acquisition, discover
from defacebench.data.dicom_write import SeriesInfo, write_series
from defacebench.data.volume import load_volume
from defacebench.errors import ConversionError, DatasetError, EvaluationError
from defacebench.metrics.split import check_split_feasible


def series(folder: Path, key: str, patient: str, slices: int = 6, seed: int = 0) -> str:
    """Write a real axial CT series; returns its SeriesInstanceUID."""
    data, affine = tiny_ct(shape=(10, 8, slices), seed=seed)
    write_series(data, affine, folder, SeriesInfo(uid_key=key, patient_id=patient, patient_name=f"DOE^{patient}"))
    return str(pydicom.dcmread(folder / "slice_0001.dcm").SeriesInstanceUID)


def acq(path: Path) -> Acquisition:
    return Acquisition("003", "", path, "dicom")


# ------------------------------------------------------------------------------------------------ 2


def test_another_patients_slices_in_a_subject_folder_fail_that_subject(tmp_path):
    """The issue's case: subject 002's slices copied into 003's folder (more slices than 003's own)."""
    series(tmp_path / "003", "own", "PID-003", slices=5)
    series(tmp_path / "003" / "copied", "other", "PID-002", slices=9, seed=1)
    with pytest.raises(ConversionError) as err:
        convert_acquisition(acq(tmp_path / "003"), tmp_path / "o.nii.gz")
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(tmp_path / "003"))
    assert "2 different patients" in message and "Fix:" in message
    assert "slice_0001.dcm" in message and "copied/slice_0001.dcm" in message  # one file of each patient
    assert "PID-00" not in message and "DOE" not in message  # never the identifiers themselves
    assert not (tmp_path / "o.nii.gz").exists()


def test_several_series_of_one_patient_are_a_recorded_and_printable_choice(tmp_path):
    from defacebench.run.stages import ConvertTask, StageEnv, convert_task

    from defacebench.data.dicomio import uid_digest

    short = uid_digest(series(tmp_path / "003" / "a", "short", "PID-003", slices=5))  # outputs name digests
    long = uid_digest(series(tmp_path / "003" / "b", "long", "PID-003", slices=8))
    record = convert_acquisition(acq(tmp_path / "003"), tmp_path / "o.nii.gz")
    assert record.series_uid == long and record.series_choice.chosen == long
    assert {c.uid for c in record.series_choice.candidates} == {short, long}
    line = series_notice(record)
    assert "\n" not in line and line.startswith(f"{tmp_path / '003'}: 2 DICOM series; converted {long}")
    assert f"not used: {short}" in line and "pass --series with its name" in line
    # the cached record (JSON, what the pipeline holds) gives the same line
    cached = convert_task(ConvertTask(StageEnv(str(tmp_path / "cache")), acq(tmp_path / "003"), ConversionParams()))
    assert series_notice(cached.record) == line
    assert series_notice(json.loads(json.dumps(record.to_dict()))) == line
    with pytest.raises(ConversionError, match=r"2 DICOM series in one acquisition folder.*--series with"):
        convert_acquisition(acq(tmp_path / "003"), tmp_path / "p.nii.gz", ConversionParams(several_series="fail"))
    single = series(tmp_path / "004", "single", "PID-004")
    rec = convert_acquisition(acq(tmp_path / "004"), tmp_path / "q.nii.gz")
    assert rec.series_uid == uid_digest(single) and rec.series_choice is None and series_notice(rec) is None


# ------------------------------------------------------------------------------------------------ 14


@pytest.mark.parametrize("affine", [np.diag([0.0, 0.0, 0.0, 1.0]),
                                    np.array([[1.0, 2, 0, 0], [2, 4, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])],
                         ids=["zero", "singular"])
def test_a_nifti_with_a_zero_or_singular_affine_names_the_file_and_the_fix(tmp_path, affine):
    data, _ = tiny_ct()
    path = tmp_path / "bad.nii.gz"
    header = nib.Nifti1Header()  # written field by field: nibabel refuses to *make* such an image
    header.set_data_shape(data.shape)
    header.set_data_dtype(np.float32)
    header["qform_code"], header["sform_code"] = 0, 1
    header["srow_x"], header["srow_y"], header["srow_z"] = affine[0], affine[1], affine[2]
    nib.save(nib.Nifti1Image(data, None, header=header), path)
    assert np.array_equal(nib.load(path).affine, affine)
    for call in (lambda: load_volume(path),
                 lambda: convert_acquisition(Acquisition("s", "", path, "nifti"), tmp_path / "o.nii.gz")):
        with pytest.raises(ConversionError) as err:
            call()
        message = str(err.value)
        assert message.startswith(str(path)) and "zero or singular" in message and "Fix:" in message
        assert "\n" not in message


# ------------------------------------------------------------------------------------------------ 15, 8


def test_a_csv_row_naming_a_non_image_file_fails_that_row_without_walking_its_folder(tmp_path):
    series(tmp_path / "data" / "ser", "x", "P1")
    (tmp_path / "data" / "notes.txt").write_text("not a scan")
    data, affine = tiny_ct()
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "data" / "ok.nii.gz")
    (tmp_path / "m.csv").write_text("subject_id,path\nA,data/notes.txt\nB,data/ser/slice_0001.dcm\nC,data/ok.nii.gz\n")
    ds = discover(tmp_path / "m.csv")
    assert ds.subject_ids == ("C",)
    assert all(a.path != tmp_path / "data" for a in ds.acquisitions)
    by_id = {f.subject_id: f for f in ds.failures}
    assert by_id["A"].row == 2 and "m.csv line 2" in by_id["A"].reason and "is not an image file" in by_id["A"].reason
    assert by_id["B"].row == 3 and "is a single DICOM file" in by_id["B"].reason
    assert "give an image file or the folder" in by_id["B"].reason


def test_a_csv_row_whose_scan_is_missing_is_a_failure_of_that_subject_with_its_row(tmp_path):
    data, affine = tiny_ct()
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "a1.nii.gz")
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "b1.nii.gz")
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "b2.nii.gz")
    (tmp_path / "m.csv").write_text("subject_id,path,session\nA,a1.nii.gz,scan\nA,gone.nii.gz,rescan\n"
                                    "B,b1.nii.gz,scan\nB,b2.nii.gz,rescan\n")
    ds = discover(tmp_path / "m.csv")
    assert ds.incomplete_subjects.keys() == {"A"}
    (fail,) = ds.incomplete_subjects["A"]
    assert (fail.subject_id, fail.row, fail.session, fail.path) == ("A", 3, "rescan", tmp_path / "gone.nii.gz")
    assert fail.reason.startswith(f"{tmp_path / 'm.csv'} line 3: {tmp_path / 'gone.nii.gz'} does not exist")


# ------------------------------------------------------------------------------------------------ 17


def test_an_all_empty_dataset_says_what_is_empty_and_where(tmp_path):
    for sid in ("001", "002", "003"):
        (tmp_path / sid).mkdir()
    with pytest.raises(DatasetError) as err:
        discover(tmp_path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{tmp_path}: no usable subject: all 3 failed")
    assert f"{tmp_path / '001'}: empty folder" in message and "Fix:" in message
    assert "split" not in message


@pytest.mark.parametrize("n,calibration,ok", [(3, 0.7, False), (0, 1.0, False), (4, 0.7, True), (1, 1.0, True),
                                              (5, 0.0, False)])
def test_split_feasibility_is_checked_before_any_computing(n, calibration, ok):
    if ok:
        check_split_feasible(n, calibration)
        return
    with pytest.raises(EvaluationError) as err:
        check_split_feasible(n, calibration)
    message = str(err.value)
    assert "\n" not in message
    if n == 3:
        assert "3 usable subject(s)" in message and "--calibration 1.0" in message and ">= 4 subjects" in message


# ------------------------------------------------------------------------------------------------ 12


@needs_namespaces
def test_read_only_and_full_output_folders_give_one_line_and_leave_no_partial_file(tmp_path):
    mount = tmp_path / "fs"
    script = f"""
        import json, os
        import numpy as np
        from defacebench.contracts import Volume
        from defacebench.data.volume import save_volume
        from defacebench.util.fsutil import atomic_write_text, ensure_writable_dir
        out = {{}}
        big = Volume(np.random.default_rng(0).normal(size=(64, 64, 64)).astype(np.float32), np.eye(4))
        calls = {{"volume": lambda: save_volume(big, "{mount}/out/v.nii.gz"),
                 "text": lambda: atomic_write_text(__import__("pathlib").Path("{mount}/out/keep.txt"), "x" * 200_000),
                 "probe": lambda: ensure_writable_dir("{mount}/out", "the results folder")}}
        for name, call in calls.items():
            try:
                call()
                out[name] = None
            except Exception as exc:
                out[name] = [type(exc).__name__, str(exc)]
        out["files"] = sorted(os.listdir("{mount}/out"))
        out["keep"] = open("{mount}/out/keep.txt").read()
        print(json.dumps(out))
    """
    setup = f"import os; os.mkdir('{mount}/out'); open('{mount}/out/keep.txt', 'w').write('old')"
    full = run_on_small_fs(mount, script, size_kb=96, setup=setup)
    for name in ("volume", "text"):
        kind, message = full[name]
        assert kind == "StorageError" and "\n" not in message
        assert message.startswith(f"{mount}/out") and "no space left on device" in message and "Fix:" in message
    assert full["files"] == ["keep.txt"] and full["keep"] == "old"  # no temp file, old content intact
    ro = run_on_small_fs(mount, script, size_kb=96, setup=setup, readonly=True)
    for name in ("volume", "text", "probe"):
        kind, message = ro[name]
        assert kind == "StorageError" and message.startswith(f"{mount}/out") and "read-only file system" in message


@needs_namespaces
def test_convert_to_a_read_only_folder_fails_in_one_line_before_any_work(tmp_path):
    data, affine = tiny_ct()
    (tmp_path / "ds").mkdir()
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "ds" / "s1.nii.gz")
    mount = tmp_path / "ro"
    script = f"""
        import contextlib, io, json
        from defacebench.cli import main
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(["convert", "{tmp_path / 'ds'}", "--out", "{mount}/out", "--executor", "serial"])
        print(json.dumps({{"code": code, "err": err.getvalue()}}))
    """
    out = run_on_small_fs(mount, script, readonly=True)
    assert out["code"] == 1
    assert out["err"] == (f"defacebench convert: error: {mount}/out: cannot write the converted volumes "
                          "(read-only file system). Fix: make the folder writable, or choose another folder\n")
