"""Tests of the embedded sample dataset: layout, real DICOM headers, HU ranges, caching, round trip."""

from __future__ import annotations

import time

import nibabel as nib
import numpy as np
import pydicom
import pytest
from scipy import ndimage

from defacebench.data.convert import ConversionParams, convert_acquisition, dcm2niix_executable
from defacebench.data.dataset import discover
from defacebench.data.dicomio import find_series
from defacebench.errors import DatasetError
from defacebench.data.sample import (
    MARKER,
    SampleParams,
    default_sample_dir,
    make_sample_dataset,
    nifti_copy_path,
    nifti_root,
    subject_ids,
)
from defacebench.data.sample_face import base_head
from defacebench.data.volume import load_volume

TINY = SampleParams(n_subjects=2, seed=3)


@pytest.fixture(scope="session")
def tiny_sample(tmp_path_factory):
    """A 2-subject sample with the default anatomy (about 5 s)."""
    return make_sample_dataset(tmp_path_factory.mktemp("sample") / "tiny", TINY)


def test_layout_one_series_per_acquisition(tiny_sample):
    ds = discover(tiny_sample)
    assert ds.subject_ids == ("001", "002") and ds.failures == ()
    for subject in ds.subjects:
        assert [a.session for a in subject.acquisitions] == ["rescan", "scan"]
        for a in subject.acquisitions:
            assert a.kind == "dicom" and len(find_series(a.path)[0]) == 1
    copies = discover(nifti_root(tiny_sample))
    assert [a.acq_id for a in copies.acquisitions] == [a.acq_id for a in ds.acquisitions]


def test_dicom_headers_are_complete_ct_with_distinct_uids(tiny_sample):
    seen = set()
    for sid in ("001", "002"):
        for session in ("scan", "rescan"):
            files = sorted((tiny_sample / sid / session).glob("*.dcm"))
            ds = pydicom.dcmread(files[0])
            assert ds.Modality == "CT" and ds.RescaleType == "HU"
            assert str(ds.PatientName) == f"SAMPLE^{sid}"
            assert ds.StudyDate and ds.StudyTime
            assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
            assert [float(v) for v in ds.PixelSpacing] == [2.0, 2.0] and float(ds.SliceThickness) == 2.0
            assert float(ds.RescaleSlope) == 1.0 and float(ds.RescaleIntercept) == -1024.0
            last = pydicom.dcmread(files[-1], stop_before_pixels=True)
            assert float(last.ImagePositionPatient[2]) - float(ds.ImagePositionPatient[2]) == pytest.approx(
                2.0 * (len(files) - 1))
            seen.add((ds.StudyInstanceUID, ds.SeriesInstanceUID))
    assert len({s for s, _ in seen}) == 4 and len({s for _, s in seen}) == 4


def test_hu_ranges_are_ct_like(tiny_sample):
    vol = load_volume(nifti_copy_path(tiny_sample, "001", "scan"))
    data = vol.data
    assert nib.aff2axcodes(vol.affine) == ("R", "A", "S") and vol.zooms == (2.0, 2.0, 2.0)
    corner = data[:5, :5, -5:]
    assert abs(float(np.median(corner)) + 1000.0) < 10.0  # air
    assert 10.0 < float(corner.std()) < 25.0  # ~15 HU noise
    head = data > -300
    assert 0.1 * head.sum() < (data > 300).sum() < 0.4 * head.sum()  # a skull shell, not a solid head


def test_template_tissues_have_ct_values():
    base = base_head(2.0)
    core = {name: ndimage.binary_erosion(mask, iterations=2)
            for name, mask in (("brain", base.brain), ("skull", base.skull),
                               ("soft", base.head & ~base.brain & ~base.skull))}
    assert 20.0 <= float(np.median(base.hu[core["brain"]])) <= 45.0
    assert float(np.percentile(base.hu[ndimage.binary_erosion(base.skull)], 10)) > 300.0
    assert 0.0 <= float(np.median(base.hu[core["soft"]])) <= 80.0
    assert float(base.hu[ndimage.binary_erosion(~base.head, iterations=2)].max()) < -990.0
    # the skull encloses the brain: no brain voxel touches air or soft tissue directly
    assert not (ndimage.binary_dilation(base.brain) & ~base.brain & ~base.skull & ~base.head).any()
    assert len(base.face_points) > 100


def test_scan_and_rescan_differ_but_stay_close(tiny_sample):
    a = load_volume(nifti_copy_path(tiny_sample, "001", "scan")).data
    b = load_volume(nifti_copy_path(tiny_sample, "001", "rescan")).data
    c = load_volume(nifti_copy_path(tiny_sample, "002", "scan")).data
    head_a, head_b, head_c = a > -400, b > -400, c > -400
    dice_ab = 2 * (head_a & head_b).sum() / (head_a.sum() + head_b.sum())
    dice_ac = 2 * (head_a & head_c).sum() / (head_a.sum() + head_c.sum())
    assert not np.array_equal(a, b)
    assert 0.9 < dice_ab < 1.0 and 0.8 < dice_ac < 1.0


@pytest.mark.parametrize("converter", ["dicom2nifti", pytest.param("dcm2niix", marks=pytest.mark.skipif(
    dcm2niix_executable() is None, reason="dcm2niix binary not installed"))])
def test_round_trip_matches_nifti_copy(tiny_sample, tmp_path, converter):
    acq = discover(tiny_sample).subjects[1].acquisitions[0]
    rec = convert_acquisition(acq, tmp_path / "v.nii.gz", ConversionParams(converter))
    got = load_volume(rec.output_path)
    ref = load_volume(nifti_copy_path(tiny_sample, acq.subject_id, acq.session))
    assert got.data.shape == ref.data.shape
    assert np.abs(got.data - ref.data).max() <= 1.0
    np.testing.assert_allclose(got.affine, ref.affine, atol=1e-3)


def test_cached_dataset_is_returned_without_rebuilding(tiny_sample):
    marker = tiny_sample.parent / MARKER
    before = marker.stat().st_mtime_ns
    start = time.monotonic()
    again = make_sample_dataset(tiny_sample.parent, TINY)
    assert again == tiny_sample and time.monotonic() - start < 1.0
    assert marker.stat().st_mtime_ns == before


def test_partial_build_is_rebuilt_and_identities_do_not_depend_on_n(tmp_path, tiny_sample):
    out = tmp_path / "one"
    one = SampleParams(n_subjects=1, seed=3)
    root = make_sample_dataset(out, one, workers=1)
    (out / MARKER).unlink()  # as if the build had crashed before finishing
    (root / "001" / "scan" / "slice_0005.dcm").unlink()
    root = make_sample_dataset(out, one, workers=1)
    assert (out / MARKER).is_file() and (root / "001" / "scan" / "slice_0005.dcm").is_file()
    # subject 001 of a 1-subject dataset is the same person (same voxels) as in the 2-subject one
    a = load_volume(nifti_copy_path(root, "001", "rescan")).data
    b = load_volume(nifti_copy_path(tiny_sample, "001", "rescan")).data
    np.testing.assert_array_equal(a, b)


def test_foreign_folder_is_never_deleted(tmp_path):
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(DatasetError, match="not a defacebench sample"):
        make_sample_dataset(tmp_path, SampleParams(n_subjects=1))
    assert (tmp_path / "mine.txt").read_text() == "precious"


def test_head_holder_adds_structure_behind_the_head(tmp_path, tiny_sample):
    params = SampleParams(n_subjects=1, seed=3, head_holder=True)
    root = make_sample_dataset(tmp_path / "holder", params, workers=1)
    with_holder = load_volume(nifti_copy_path(root, "001", "scan")).data
    without = load_volume(nifti_copy_path(tiny_sample, "001", "scan")).data
    added = (with_holder > -500) & (without < -500)
    assert added.sum() > 500
    # the holder sits posterior (low j) of the head's centre
    assert np.argwhere(added)[:, 1].mean() < with_holder.shape[1] / 2


def test_ids_and_default_dir(monkeypatch, tmp_path):
    assert subject_ids(3) == ["001", "002", "003"]
    assert subject_ids(1000)[0] == "0001"
    monkeypatch.setenv("DEFACEBENCH_DATA", str(tmp_path))
    assert default_sample_dir(TINY).parent == tmp_path
    assert default_sample_dir(TINY) != default_sample_dir(SampleParams(n_subjects=2, seed=4))
    with pytest.raises(DatasetError, match="at least 1"):
        make_sample_dataset(tmp_path / "x", SampleParams(n_subjects=0))


@pytest.mark.slow
def test_hundred_subjects_build(tmp_path):
    root = make_sample_dataset(tmp_path / "big", SampleParams(n_subjects=100))
    ds = discover(root)
    assert len(ds.subjects) == 100 and ds.subject_ids[-1] == "100" and not ds.failures
