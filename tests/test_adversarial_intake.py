"""Adversarial cases of dataset intake (issue 25): subject ids that are paths, two ids on one file,
the harness's own output folders inside a dataset, empty or constant volumes, volumes too thin or
too coarse to hold a face.

Real NIfTI files (nibabel), real DICOM series (pydicom), real CSV manifests, the real CLI.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from adversarial_helpers import tiny_ct
from defacebench.cli import main
from defacebench.data.convert import ConversionParams, convert_acquisition
from defacebench.data.dataset import Acquisition, discover
from defacebench.data.dicom_write import SeriesInfo, write_series
from defacebench.errors import ConversionError


def nifti(path: Path, data: np.ndarray | None = None, zooms=(0.9, 1.1, 2.5)) -> Path:
    """A small real NIfTI (``tiny_ct`` unless ``data`` is given) with a non-identity affine."""
    base, affine = tiny_ct()
    data = base if data is None else data
    affine = affine.copy()
    affine[:3, :3] = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0) * np.asarray(zooms)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(data, np.float32), affine), path)
    return path


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


# ------------------------------------------------------------------------ subject ids that are paths


BAD_IDS = ["../evil", "../../evil2", "a/b", "..", ".", "a\\b", "x\0y"]


def bad_ids(tmp_path: Path) -> list[str]:
    """Ids that would leave --out as file names, including an absolute path (inside ``tmp_path``)."""
    return [*BAD_IDS, str(tmp_path / "abs-evil")]


def test_csv_subject_ids_that_are_paths_fail_their_row_naming_the_line(tmp_path):
    nifti(tmp_path / "ok.nii.gz")
    ids = bad_ids(tmp_path)
    rows = [f"{sid},ok.nii.gz" for sid in ids] + ["good,ok.nii.gz"]
    rows.append("sess,ok.nii.gz,../up")  # the session is part of the output file name too
    (tmp_path / "m.csv").write_text("subject_id,path,session\n" + "\n".join(rows) + "\n")
    ds = discover(tmp_path / "m.csv")
    assert ds.subject_ids == ("good",)
    by_row = {f.row: f for f in ds.failures}
    for n, sid in enumerate(ids, start=2):
        reason = by_row[n].reason
        assert reason.startswith(f"{tmp_path / 'm.csv'} line {n}: subject_id {sid!r}"), reason
        assert "Fix:" in reason and "\n" not in reason
    last = len(ids) + 3
    assert by_row[last].reason.startswith(f"{tmp_path / 'm.csv'} line {last}: session '../up'")


def test_convert_never_writes_outside_out_for_a_csv_with_path_subject_ids(tmp_path, capsys):
    """End to end: ``defacebench convert`` on the hostile manifest writes only into --out."""
    data = tmp_path / "data"
    nifti(data / "ok.nii.gz")
    work = tmp_path / "work"
    out = work / "out"
    out.mkdir(parents=True)
    ids = bad_ids(tmp_path)
    rows = [f"{sid},{data / 'ok.nii.gz'}" for sid in ids] + [f"good,{data / 'ok.nii.gz'}"]
    (tmp_path / "m.csv").write_text("subject_id,path\n" + "\n".join(rows) + "\n")
    before = files_under(tmp_path)
    code = main(["convert", str(tmp_path / "m.csv"), "--out", str(out), "--executor", "serial"])
    assert code == 0
    written = files_under(tmp_path) - before
    assert written and all(out in p.parents for p in written), sorted(map(str, written))
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["conversion_report.json",
                                                                                 "good.nii.gz"]
    report = json.loads((out / "conversion_report.json").read_text())
    reasons = [f["reason"] for f in report["failures"]]
    assert {int(r.split(" line ")[1].split(":")[0]) for r in reasons} == set(range(2, 2 + len(ids)))
    assert all(": subject_id " in r for r in reasons)
    assert "m.csv line 2: subject_id '../evil'" in capsys.readouterr().out


def test_a_run_on_a_manifest_with_path_subject_ids_keeps_its_writes_in_results_and_cache(tmp_path):
    """End to end on the run's side: the session's discovery and conversion (real stages, real cache)."""
    from defacebench.run.config import RunConfig
    from defacebench.run.manifest import build_manifest
    from defacebench.run.session import Session

    data = tmp_path / "data"
    good = [f"s{k}" for k in range(1, 5)]
    for k, sid in enumerate(good):
        nifti(data / f"{sid}.nii.gz", tiny_ct(seed=k)[0])
    ids = bad_ids(tmp_path)
    for k, sid in enumerate(ids):
        nifti(data / f"bad{k}.nii.gz", tiny_ct(seed=10 + k)[0])
    rows = [f"{sid},{sid}.nii.gz" for sid in good] + [f"{sid},bad{k}.nii.gz" for k, sid in enumerate(ids)]
    (data / "m.csv").write_text("subject_id,path\n" + "\n".join(rows) + "\n")
    before = files_under(tmp_path)
    session = Session(RunConfig(dataset=data / "m.csv", results=tmp_path / "results", cache_dir=tmp_path / "cache",
                                executor="serial", scenarios=("rescan",), calibration=1.0))
    session.prepare()
    assert sorted(session.run.volumes()) == good and all(v.ok for v in session.run.volumes().values())
    manifest = build_manifest(session)
    written = files_under(tmp_path) - before
    assert all((tmp_path / "results") in p.parents or (tmp_path / "cache") in p.parents for p in written)
    reasons = [f["reason"] for f in manifest["dataset_failures"]]
    assert len(reasons) == len(ids) and all("m.csv line" in r and ": subject_id " in r for r in reasons)
    session.run.close()


# ------------------------------------------------------------------------ two ids on one file


def test_a_csv_naming_one_file_for_two_subjects_fails_both_rows_naming_the_lines(tmp_path):
    nifti(tmp_path / "x.nii.gz")
    nifti(tmp_path / "y.nii.gz")
    os.symlink(tmp_path / "x.nii.gz", tmp_path / "link.nii.gz")
    (tmp_path / "m.csv").write_text("subject_id,path,session\nA,x.nii.gz,\nB,./x.nii.gz,\nC,y.nii.gz,\n"
                                    "D,link.nii.gz,\n")
    ds = discover(tmp_path / "m.csv")
    assert ds.subject_ids == ("C",)
    by_id = {f.subject_id: f for f in ds.failures}
    assert set(by_id) == {"A", "B", "D"}
    for sid, row in (("A", 2), ("B", 3), ("D", 5)):
        reason = by_id[sid].reason
        assert by_id[sid].row == row and reason.startswith(f"{tmp_path / 'm.csv'} line {row}:")
        assert "lines 2, 3, 5" in reason and "same scan" in reason and "Fix:" in reason


def test_one_file_for_two_sessions_of_one_subject_is_refused_too(tmp_path):
    nifti(tmp_path / "x.nii.gz")
    nifti(tmp_path / "y.nii.gz")
    (tmp_path / "m.csv").write_text("subject_id,path,session\nA,x.nii.gz,scan\nA,x.nii.gz,rescan\nC,y.nii.gz,\n")
    ds = discover(tmp_path / "m.csv")
    assert ds.subject_ids == ("C",)
    assert {f.row for f in ds.failures} == {2, 3}


# ------------------------------------------------------------------------ the harness's own outputs


def _dataset(root: Path) -> Path:
    for sid in ("001", "002"):
        nifti(root / sid / "ct.nii.gz")
    return root


def test_run_folders_inside_the_dataset_are_not_subjects(tmp_path):
    """A --results folder inside the dataset (as written by the run's own folder maker) is ignored:
    the next run sees the same subjects and the same fingerprint."""
    from defacebench.run.rundir import make_run_dir

    ds = _dataset(tmp_path / "data")
    before = discover(ds)
    for results in (ds / "results", ds / "out" / "runs"):  # --results given, or a parent made for it
        run_dir = make_run_dir(results, None)
        (run_dir / "manifest.json").write_text("{}")
        (run_dir / "leaderboard.html").write_text("<html></html>")
        (run_dir / "none-surface-dlib_hog-dlib_resnet-rescan").mkdir()
        (run_dir / "none-surface-dlib_hog-dlib_resnet-rescan" / "roc_prc.png").write_bytes(b"\x89PNG")
    after = discover(ds)
    assert after.subject_ids == ("001", "002") and after.failures == ()
    assert after.fingerprint() == before.fingerprint()
    assert {p.name for p in after.ignored} == {"results", "out"}


def test_convert_output_inside_the_dataset_is_not_a_subject(tmp_path):
    ds = _dataset(tmp_path / "data")
    before = discover(ds)
    assert main(["convert", str(ds), "--out", str(ds / "converted"), "--executor", "serial"]) == 0
    after = discover(ds)
    assert after.subject_ids == ("001", "002") and after.failures == ()
    assert after.fingerprint() == before.fingerprint()


# ------------------------------------------------------------------------ empty and constant volumes


@pytest.mark.parametrize("value", [0.0, -1000.0, 35.0], ids=["zero", "air", "water"])
def test_a_constant_nifti_is_refused_at_intake_naming_the_file(tmp_path, value):
    path = nifti(tmp_path / "blank.nii.gz", np.full((14, 12, 10), value, np.float32))
    with pytest.raises(ConversionError) as err:
        convert_acquisition(Acquisition("s", "", path, "nifti"), tmp_path / "o.nii.gz")
    message = str(err.value)
    rest = message[len(str(path)):]  # the test's own folder name says "constant" too
    assert message.startswith(str(path)) and "constant" in rest and f"every voxel is {value:g}" in rest
    assert "Fix:" in rest and "\n" not in message
    assert not (tmp_path / "o.nii.gz").exists()


def test_a_constant_dicom_series_is_refused_and_the_other_subjects_convert(tmp_path, capsys):
    data, affine = tiny_ct(shape=(10, 8, 6))
    write_series(data, affine, tmp_path / "ds" / "good", SeriesInfo("good"))
    write_series(np.full((10, 8, 6), -1000.0, np.float32), affine, tmp_path / "ds" / "blank", SeriesInfo("blank"))
    out = tmp_path / "out"
    assert main(["convert", str(tmp_path / "ds"), "--out", str(out), "--executor", "serial"]) == 0
    report = json.loads((out / "conversion_report.json").read_text())
    assert [c["acq_id"] for c in report["converted"]] == ["good"]
    (fail,) = report["failures"]
    assert fail["subject_id"] == "blank" and f"{tmp_path / 'ds' / 'blank'}: the volume is constant" in fail["reason"]


# ------------------------------------------------------------------------ too thin, too coarse


@pytest.mark.parametrize("shape,zooms,what", [((14, 12, 2), (0.9, 1.1, 2.5), "2 slices"),
                                              ((14, 12, 10), (0.9, 1.1, 50.0), "50 mm")],
                         ids=["two_slices", "fifty_mm_slices"])
def test_a_volume_that_cannot_hold_a_face_is_refused_naming_the_file(tmp_path, shape, zooms, what):
    data = tiny_ct(shape=shape[:2] + (10,))[0][:, :, 4:4 + shape[2]]
    path = nifti(tmp_path / "thin.nii.gz", data, zooms=zooms)
    with pytest.raises(ConversionError) as err:
        convert_acquisition(Acquisition("s", "", path, "nifti"), tmp_path / "o.nii.gz")
    message = str(err.value)
    rest = message[len(str(path)):]
    assert message.startswith(str(path)) and what in rest and "Fix:" in rest and "\n" not in message


def test_a_two_slice_dicom_series_is_refused(tmp_path):
    data, affine = tiny_ct(shape=(10, 8, 6))
    write_series(data[:, :, 2:4], affine, tmp_path / "s", SeriesInfo("two"))
    with pytest.raises(ConversionError, match=r"2 slices"):
        convert_acquisition(Acquisition("s", "", tmp_path / "s", "dicom"), tmp_path / "o.nii.gz")


def test_thick_slices_and_a_short_field_of_view_convert_with_a_warning(tmp_path):
    data, _ = tiny_ct(shape=(14, 12, 10))
    path = nifti(tmp_path / "thick.nii.gz", data, zooms=(0.9, 1.1, 7.0))
    record = convert_acquisition(Acquisition("s", "", path, "nifti"), tmp_path / "o.nii.gz")
    thick = [w for w in record.warnings if "7 mm" in w]
    assert thick and thick[0].startswith(str(path)) and "face" in thick[0]
    assert any("field of view" in w and "mm" in w for w in record.warnings)
    assert sorted(record.geometry["voxel_mm"]) == pytest.approx([0.9, 1.1, 7.0], abs=1e-3)
    fine = convert_acquisition(Acquisition("s", "", nifti(tmp_path / "fine.nii.gz", zooms=(2.0, 2.0, 2.0)),
                                           "nifti"), tmp_path / "p.nii.gz",
                               ConversionParams())
    assert not [w for w in fine.warnings if "mm voxels" in w]
