"""Tests of DICOM conversion (defacebench.data.convert + dicomio) with real, small, oblique DICOM series.

Each validation case writes a real malformed series (truncated file, text file, missing slice,
moved slice, single slice, two series, MR) and asserts the message names the problem.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from defacebench.data.convert import ConversionParams, convert_acquisition, dcm2niix_executable
from defacebench.data.dataset import Acquisition
from defacebench.data.dicom_write import SeriesInfo, quantized_hu, write_series
from defacebench.data.dicomio import SERIES_RULE, uid_digest
from defacebench.errors import ConversionError
from defacebench.data.volume import load_volume

CONVERTERS = ["pydicom", "dicom2nifti", "simpleitk", pytest.param("dcm2niix", marks=pytest.mark.skipif(
    dcm2niix_executable() is None, reason="dcm2niix binary not installed (pip install dcm2niix)"))]


def oblique_affine(shape=(12, 10, 8)) -> np.ndarray:
    """RAS affine: 10 deg in-plane rotation, 4 deg tilt about x, anisotropic non-cubic voxels."""
    a, b = np.deg2rad(10.0), np.deg2rad(4.0)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    aff = np.eye(4)
    aff[:3, :3] = rz @ rx @ np.diag([0.7, 0.8, 2.5])
    aff[:3, 3] = [-4.0, -5.0, -9.0]
    return aff


def make_series(folder: Path, *, shape=(12, 10, 8), key="s1", modality="CT", affine=None, seed=0):
    """Write a small real series; returns (hu array as stored, RAS affine)."""
    rng = np.random.default_rng(seed)
    hu = rng.integers(-1000, 1500, size=shape).astype(np.float32)
    aff = oblique_affine(shape) if affine is None else affine
    info = SeriesInfo(uid_key=key, modality=modality, patient_name="DOE^JANE", patient_id="PID-4711")
    write_series(hu, aff, folder, info)
    return quantized_hu(hu, info), aff


def canonical_reference(hu: np.ndarray, aff: np.ndarray):
    """What a converter must give: the written array, reoriented to canonical RAS."""
    img = nib.as_closest_canonical(nib.Nifti1Image(hu, aff))
    return np.asarray(img.dataobj), img.affine


def acq(path: Path, kind="dicom") -> Acquisition:
    return Acquisition("s01", "", path, kind)


@pytest.mark.parametrize("converter", CONVERTERS)
def test_round_trip_oblique_series_gives_hu_and_canonical_affine(tmp_path, converter):
    hu, aff = make_series(tmp_path / "dcm")
    rec = convert_acquisition(acq(tmp_path / "dcm"), tmp_path / "out.nii.gz", ConversionParams(converter))
    vol = load_volume(rec.output_path)
    ref_data, ref_aff = canonical_reference(hu, aff)
    assert nib.aff2axcodes(vol.affine) == ("R", "A", "S")
    assert vol.data.shape == ref_data.shape == rec.shape
    np.testing.assert_allclose(vol.affine, ref_aff, atol=1e-3)
    assert np.abs(vol.data - ref_data).max() <= 1.0
    assert rec.modality == "ct" and rec.dicom_modality == "CT" and rec.converter == converter
    assert np.asarray(rec.original_affine).shape == (4, 4)
    # the stored file is float32 (HU, canonical), nothing left but the output
    assert nib.load(rec.output_path).get_data_dtype() == np.float32
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dcm", "out.nii.gz"]


def test_record_holds_no_patient_metadata(tmp_path):
    make_series(tmp_path / "dcm")
    rec = convert_acquisition(acq(tmp_path / "dcm"), tmp_path / "o.nii.gz")
    text = json.dumps(rec.to_dict())
    assert "DOE" not in text and "JANE" not in text and "4711" not in text
    assert rec.series_rule == "only series in the folder"


def test_non_dicom_file_in_series_is_named(tmp_path):
    make_series(tmp_path / "dcm")
    (tmp_path / "dcm" / "scanner_dump.dat").write_text("not a dicom file\n")
    with pytest.raises(ConversionError, match=r"scanner_dump\.dat: not a readable DICOM"):
        convert_acquisition(acq(tmp_path / "dcm"), tmp_path / "o.nii.gz")


def test_corrupt_dicom_file_is_named(tmp_path):
    make_series(tmp_path / "dcm")
    victim = tmp_path / "dcm" / "slice_0003.dcm"
    whole = victim.read_bytes()
    victim.write_bytes(whole[:200])  # truncated in the header
    with pytest.raises(ConversionError, match=r"slice_0003\.dcm: not a readable DICOM.*truncated"):
        convert_acquisition(acq(tmp_path / "dcm"), tmp_path / "o.nii.gz")
    victim.write_bytes(whole[:-50])  # truncated in the pixel data
    with pytest.raises(ConversionError, match=r"slice_0003\.dcm: not a readable DICOM.*truncated"):
        convert_acquisition(acq(tmp_path / "dcm"), tmp_path / "o.nii.gz")


def test_missing_slice_is_reported(tmp_path):
    make_series(tmp_path / "dcm")
    (tmp_path / "dcm" / "slice_0004.dcm").unlink()
    with pytest.raises(ConversionError, match=r"missing slice\(s\) or uneven spacing.*gap of 5 mm"):
        convert_acquisition(acq(tmp_path / "dcm"), tmp_path / "o.nii.gz")


def test_uneven_spacing_is_reported(tmp_path):
    make_series(tmp_path / "dcm")
    path = tmp_path / "dcm" / "slice_0005.dcm"
    ds = pydicom.dcmread(path)
    ds.ImagePositionPatient = [float(v) for v in ds.ImagePositionPatient[:2]] + [
        float(ds.ImagePositionPatient[2]) + 0.9]
    ds.save_as(path)
    with pytest.raises(ConversionError, match="uneven spacing"):
        convert_acquisition(acq(tmp_path / "dcm"), tmp_path / "o.nii.gz")


def test_single_slice_is_rejected(tmp_path):
    make_series(tmp_path / "dcm", shape=(12, 10, 1))
    with pytest.raises(ConversionError, match="single slice"):
        convert_acquisition(acq(tmp_path / "dcm"), tmp_path / "o.nii.gz")


def test_mixed_geometry_within_one_series_is_rejected(tmp_path):
    make_series(tmp_path / "dcm")
    path = tmp_path / "dcm" / "slice_0002.dcm"
    ds = pydicom.dcmread(path)
    ds.PixelSpacing = [1.5, 1.5]
    ds.save_as(path)
    with pytest.raises(ConversionError, match=r"slice_0002\.dcm: mixed series"):
        convert_acquisition(acq(tmp_path / "dcm"), tmp_path / "o.nii.gz")


def test_folder_with_two_series_picks_most_slices_and_records_why(tmp_path):
    make_series(tmp_path / "dcm" / "a", shape=(12, 10, 6), key="short")
    hu, aff = make_series(tmp_path / "dcm" / "b", shape=(12, 10, 9), key="long")
    rec = convert_acquisition(acq(tmp_path / "dcm"), tmp_path / "o.nii.gz")
    long_uid = pydicom.dcmread(tmp_path / "dcm" / "b" / "slice_0001.dcm").SeriesInstanceUID
    assert rec.series_uid == uid_digest(long_uid)
    assert "2 series" in rec.series_rule and SERIES_RULE in rec.series_rule
    assert any("2 series found" in w for w in rec.warnings)
    assert load_volume(rec.output_path).data.shape == canonical_reference(hu, aff)[0].shape


def test_series_override_and_a_uid_held_by_another_folder(tmp_path):
    make_series(tmp_path / "dcm" / "a", shape=(12, 10, 6), key="short")
    make_series(tmp_path / "dcm" / "b", shape=(12, 10, 9), key="long")
    short_uid = pydicom.dcmread(tmp_path / "dcm" / "a" / "slice_0001.dcm").SeriesInstanceUID
    rec = convert_acquisition(acq(tmp_path / "dcm"), tmp_path / "o.nii.gz", ConversionParams(series_uid=short_uid))
    assert rec.series_uid == uid_digest(short_uid) and "--series" in rec.series_rule and rec.series_requested
    assert load_volume(rec.output_path).data.shape[2] == 6
    # a UID this folder does not hold belongs to another acquisition: this one converts by the rule
    other = convert_acquisition(acq(tmp_path / "dcm"), tmp_path / "p.nii.gz", ConversionParams(series_uid="1.2.3"))
    assert not other.series_requested and load_volume(other.output_path).data.shape[2] == 9
    assert other.series_rule.startswith(f"--series {uid_digest('1.2.3')} is not in this folder; 2 series")


def test_ct_preferred_over_mr_with_more_slices(tmp_path):
    make_series(tmp_path / "dcm" / "ct", shape=(12, 10, 5), key="ct")
    make_series(tmp_path / "dcm" / "mr", shape=(12, 10, 9), key="mr", modality="MR")
    rec = convert_acquisition(acq(tmp_path / "dcm"), tmp_path / "o.nii.gz")
    assert rec.dicom_modality == "CT" and rec.modality == "ct"


def test_thinnest_then_uid_breaks_ties(tmp_path):
    thick = oblique_affine()
    thin = thick.copy()
    thin[:3, 2] *= 0.5
    make_series(tmp_path / "dcm" / "thick", key="thick", affine=thick)
    make_series(tmp_path / "dcm" / "thin", key="thin", affine=thin)
    rec = convert_acquisition(acq(tmp_path / "dcm"), tmp_path / "o.nii.gz")
    assert rec.series_uid == uid_digest(pydicom.dcmread(tmp_path / "dcm" / "thin" / "slice_0001.dcm").SeriesInstanceUID)
    # identical series but for the UID: the smaller UID wins, every time
    make_series(tmp_path / "tie" / "x", key="x")
    make_series(tmp_path / "tie" / "y", key="y")
    uids = sorted(pydicom.dcmread(tmp_path / "tie" / d / "slice_0001.dcm").SeriesInstanceUID for d in "xy")
    assert convert_acquisition(acq(tmp_path / "tie"), tmp_path / "t.nii.gz").series_uid == uid_digest(uids[0])


def test_mr_series_is_recorded_as_mri(tmp_path):
    make_series(tmp_path / "dcm", modality="MR")
    rec = convert_acquisition(acq(tmp_path / "dcm"), tmp_path / "o.nii.gz")
    assert rec.modality == "mri" and rec.dicom_modality == "MR"
    assert rec.modality_decision["source"] == "DICOM Modality"
    assert load_volume(rec.output_path).modality == "mri"  # the tag travels with the file


def test_empty_folder_is_rejected(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConversionError, match=r"empty.*empty folder"):
        convert_acquisition(acq(tmp_path / "empty"), tmp_path / "o.nii.gz")
    assert not (tmp_path / "o.nii.gz").exists()


def test_nifti_inputs_4d_and_nan_are_rejected_and_good_one_canonicalised(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((4, 5, 6, 2), np.float32), np.eye(4)), tmp_path / "four.nii.gz")
    with pytest.raises(ConversionError, match=r"four\.nii\.gz.*4-D"):
        convert_acquisition(acq(tmp_path / "four.nii.gz", "nifti"), tmp_path / "o.nii.gz")
    bad = np.zeros((4, 5, 6), np.float32)
    bad[0, 0, 0] = np.nan
    nib.save(nib.Nifti1Image(bad, np.eye(4)), tmp_path / "nan.nii.gz")
    with pytest.raises(ConversionError, match=r"nan\.nii\.gz.*NaN"):
        convert_acquisition(acq(tmp_path / "nan.nii.gz", "nifti"), tmp_path / "o.nii.gz")
    lps = np.diag([-1.0, -1.2, 2.0, 1.0])
    nib.save(nib.Nifti1Image(np.arange(120, dtype=np.int16).reshape(4, 5, 6) % 3, lps), tmp_path / "ok.nii.gz")
    # intensities 0-2 are neither CT- nor MRI-like: the modality is an explicit choice
    rec = convert_acquisition(acq(tmp_path / "ok.nii.gz", "nifti"), tmp_path / "o.nii.gz", ConversionParams(modality="ct"))
    np.testing.assert_allclose(rec.original_affine, lps)
    assert nib.aff2axcodes(load_volume(rec.output_path).affine) == ("R", "A", "S")


def test_unknown_converter_is_rejected(tmp_path):
    make_series(tmp_path / "dcm")
    with pytest.raises(ConversionError, match="unknown converter 'magic'"):
        convert_acquisition(acq(tmp_path / "dcm"), tmp_path / "o.nii.gz", ConversionParams("magic"))


def test_non_image_dicom_object_is_skipped_with_a_warning(tmp_path):
    """A structured-report DICOM file (no pixel rows) next to the slices is skipped, not fatal. (An
    object of an image SOP Class without rows or pixels is a damaged slice: tests/test_adversarial_dicom.py.)"""
    from pydicom.uid import BasicTextSRStorage

    make_series(tmp_path / "dcm")
    ds = pydicom.dcmread(tmp_path / "dcm" / "slice_0001.dcm")
    for keyword in ("Rows", "Columns", "PixelData"):
        delattr(ds, keyword)
    ds.Modality = "SR"
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = BasicTextSRStorage
    ds.save_as(tmp_path / "dcm" / "report.dcm")
    rec = convert_acquisition(acq(tmp_path / "dcm"), tmp_path / "o.nii.gz")
    assert any("skipped 1 non-image DICOM file(s) (e.g. report.dcm)" in w for w in rec.warnings)
    assert rec.modality == "ct"


@pytest.mark.parametrize("suffix", [".nrrd", ".mha", ".mhd"])
def test_itk_formats_are_discovered_and_read_like_nifti(tmp_path, suffix):
    """NRRD/MetaImage files are acquisitions of kind "itk", converted through SimpleITK to the same
    canonical volume (0 HU difference, affine within 1e-4) as the NIfTI they were written from."""
    import SimpleITK as sitk

    from defacebench.data.dataset import discover

    rng = np.random.default_rng(0)
    data = rng.integers(-1000, 1500, size=(12, 10, 8)).astype(np.int16)
    data[:3] = -1000  # air, so the intensities say CT
    aff = oblique_affine()
    nifti_path = tmp_path / "ref" / "s01.nii.gz"
    nifti_path.parent.mkdir()
    nib.save(nib.Nifti1Image(data, aff), nifti_path)
    image = sitk.ReadImage(str(nifti_path))
    (tmp_path / "ds" / "s01").mkdir(parents=True)
    sitk.WriteImage(image, str(tmp_path / "ds" / "s01" / f"head{suffix}"))
    ds = discover(tmp_path / "ds")
    assert [a.kind for a in ds.acquisitions] == ["itk"] and not ds.failures
    got = load_volume(convert_acquisition(ds.acquisitions[0], tmp_path / "a.nii.gz").output_path)
    ref = load_volume(convert_acquisition(acq(nifti_path, "nifti"), tmp_path / "b.nii.gz").output_path)
    assert float(np.abs(got.data - ref.data).max()) == 0.0
    np.testing.assert_allclose(got.affine, ref.affine, atol=1e-4)
    assert got.modality == ref.modality == "ct"
