"""Adversarial DICOM input (issue 25): truncated slices, SeriesInstanceUIDs in outputs, ``--series``
in a dataset of several acquisitions.

Real DICOM series written with pydicom (tiny, non-cubic, non-identity geometry), cut as a failed
copy cuts them; the real conversion stage and the real ``defacebench convert`` command.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from adversarial_helpers import tiny_ct
from defacebench.cli import main
from defacebench.data.convert import ConversionParams, convert_acquisition, series_notice
from defacebench.data.dataset import Acquisition
from defacebench.data.dicom_write import SeriesInfo, write_series
from defacebench.errors import ConversionError


def series(folder: Path, key: str, slices: int = 6, seed: int = 0) -> str:
    """Write a real axial CT series of one patient; returns its SeriesInstanceUID."""
    data, affine = tiny_ct(shape=(10, 8, slices), seed=seed)
    write_series(data, affine, folder, SeriesInfo(uid_key=key, patient_id="PID-7", patient_name="DOE^JANE"))
    return str(pydicom.dcmread(folder / "slice_0001.dcm").SeriesInstanceUID)


def uid_digest(uid: str) -> str:
    """The short digest outputs show instead of a SeriesInstanceUID (imported here, so a missing
    function fails the test that needs it, not the whole module)."""
    from defacebench.data.dicomio import uid_digest as digest

    return digest(uid)


def acq(path: Path, sid: str = "003") -> Acquisition:
    return Acquisition(sid, "", path, "dicom")


# ------------------------------------------------------------------------ truncated slices


def _cut(path: Path, where: str) -> None:
    """Truncate ``path`` as an interrupted copy would, at a point where pydicom still reads a header."""
    raw = path.read_bytes()
    marks = {"before_series_uid": raw.index(b"\x20\x00\x0e\x00UI") + 3,  # inside the tag itself
             "inside_bits_allocated": raw.index(b"\x28\x00\x00\x01US") + 9,  # half of a 2-byte value
             "inside_pixel_data": len(raw) - 37}
    path.write_bytes(raw[:marks[where]])


@pytest.mark.parametrize("where", ["before_series_uid", "inside_bits_allocated", "inside_pixel_data"])
@pytest.mark.parametrize("index", [1, 4, 7], ids=["first", "middle", "last"])
def test_a_truncated_slice_is_named_and_fails_the_acquisition(tmp_path, where, index):
    series(tmp_path / "s", "t", slices=7)
    victim = tmp_path / "s" / f"slice_{index:04d}.dcm"
    _cut(victim, where)
    with pytest.raises(ConversionError) as err:
        convert_acquisition(acq(tmp_path / "s"), tmp_path / "o.nii.gz")
    message = str(err.value)
    rest = message[len(str(victim)):]  # the test's own folder name says "truncated" too
    assert message.startswith(str(victim)) and "truncated" in rest, message
    assert "gap" not in rest and "Fix:" in rest and "\n" not in message
    assert not (tmp_path / "o.nii.gz").exists()


def test_a_non_image_dicom_object_next_to_the_slices_is_still_skipped(tmp_path):
    """What the truncation check must not catch: an intact structured report is not a slice."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import BasicTextSRStorage, ExplicitVRLittleEndian, generate_uid

    series(tmp_path / "s", "sr", slices=5)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = BasicTextSRStorage, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    sr = FileDataset(str(tmp_path / "s" / "report.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
    sr.SOPClassUID, sr.SOPInstanceUID, sr.Modality = BasicTextSRStorage, meta.MediaStorageSOPInstanceUID, "SR"
    sr.save_as(tmp_path / "s" / "report.dcm", enforce_file_format=True)
    record = convert_acquisition(acq(tmp_path / "s"), tmp_path / "o.nii.gz")
    assert record.shape[2] == 5 and any("non-image" in w for w in record.warnings)


# ------------------------------------------------------------------------ UIDs in outputs


def _no_uid(text: str, *uids: str) -> None:
    for uid in uids:
        assert uid not in text, f"a SeriesInstanceUID leaked: {uid}"


def test_series_uids_are_hashed_in_conversion_records_notices_and_errors(tmp_path):
    from defacebench.run.stages import ConvertTask, StageEnv, convert_task

    short = series(tmp_path / "003" / "a", "short", slices=5)
    long = series(tmp_path / "003" / "b", "long", slices=8, seed=1)
    record = convert_acquisition(acq(tmp_path / "003"), tmp_path / "o.nii.gz")
    text = json.dumps(record.to_dict()) + series_notice(record)
    _no_uid(text, short, long)
    assert record.series_uid == uid_digest(long) and len(uid_digest(long)) <= 20
    assert uid_digest(long) == uid_digest(long) != uid_digest(short)  # stable, and tells series apart
    assert uid_digest(short) in series_notice(record)  # the other series, named so --series can choose it
    cached = convert_task(ConvertTask(StageEnv(str(tmp_path / "cache")), acq(tmp_path / "003"), ConversionParams()))
    _no_uid(json.dumps(cached.record), short, long)  # what manifest.json carries
    with pytest.raises(ConversionError) as err:
        convert_acquisition(acq(tmp_path / "003"), tmp_path / "p.nii.gz", ConversionParams(several_series="fail"))
    _no_uid(str(err.value), short, long)
    # the digest a record shows chooses the series as well as the full UID does
    by_digest = convert_acquisition(acq(tmp_path / "003"), tmp_path / "q.nii.gz",
                                    ConversionParams(series_uid=uid_digest(short)))
    assert by_digest.series_uid == uid_digest(short) and by_digest.shape[2] == 5


def test_convert_report_carries_no_series_uid_even_when_one_is_requested(tmp_path, capsys):
    short = series(tmp_path / "ds" / "003" / "study" / "a", "short", slices=5)
    long = series(tmp_path / "ds" / "003" / "study" / "b", "long", slices=8, seed=1)
    out = tmp_path / "out"
    assert main(["convert", str(tmp_path / "ds"), "--out", str(out), "--executor", "serial", "--series", short]) == 0
    report = (out / "conversion_report.json").read_text()
    _no_uid(report + capsys.readouterr().out, short, long)
    assert json.loads(report)["series_uid"] == uid_digest(short)


# ------------------------------------------------------------------------ --series in a dataset


def test_series_choice_applies_only_to_the_acquisition_that_holds_it(tmp_path, capsys):
    short = series(tmp_path / "ds" / "003" / "study" / "a", "short", slices=5)  # one session, two series
    series(tmp_path / "ds" / "003" / "study" / "b", "long", slices=8, seed=1)
    other = series(tmp_path / "ds" / "004", "other", slices=6, seed=2)
    out = tmp_path / "out"
    assert main(["convert", str(tmp_path / "ds"), "--out", str(out), "--executor", "serial", "--series", short]) == 0
    report = json.loads((out / "conversion_report.json").read_text())
    assert report["failures"] == []
    by_acq = {c["acq_id"]: c for c in report["converted"]}
    assert by_acq["003_study"]["series_uid"] == uid_digest(short) and by_acq["003_study"]["shape"][2] == 5
    assert by_acq["003_study"]["series_requested"] is True
    assert by_acq["004"]["series_uid"] == uid_digest(other) and by_acq["004"]["series_requested"] is False


def test_a_series_choice_that_no_acquisition_holds_is_an_error(tmp_path, capsys):
    series(tmp_path / "ds" / "003", "a")
    series(tmp_path / "ds" / "004", "b", seed=1)
    out = tmp_path / "out"
    code = main(["convert", str(tmp_path / "ds"), "--out", str(out), "--executor", "serial", "--series", "1.2.3.99"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"--series {uid_digest('1.2.3.99')}" in err and "no acquisition" in err and "1.2.3.99" not in err
