"""Tests of the embedded sample dataset: layout, real DICOM headers, field of view, tissues, hardware,
gantry tilt, caching, and the converters' agreement on it."""

from __future__ import annotations

import json
import time

import numpy as np
import pydicom
import pytest

from defacebench.data.convert import ConversionParams, convert_acquisition, dcm2niix_executable
from defacebench.data.dataset import discover
from defacebench.data.dicomio import find_series
from defacebench.data.phantom.scanner import ScannerParams
from defacebench.data.sample import (
    MARKER, SampleParams, acquisitions_info, default_sample_dir, make_sample_dataset, nifti_copy_path,
    nifti_root, subject_ids,
)
from defacebench.data.volume import load_volume
from defacebench.errors import DatasetError

# a small matrix keeps the tests quick; half the series tilted so the 2-subject sample has some
TINY = SampleParams(n_subjects=2, seed=3, matrix=96, scanner=ScannerParams(matrix=96, tilt_fraction=0.5))
OTHER_CONVERTERS = ["pydicom", "simpleitk", pytest.param("dcm2niix", marks=pytest.mark.skipif(
    dcm2niix_executable() is None, reason="dcm2niix binary not installed (pip install dcm2niix)"))]


@pytest.fixture(scope="session")
def tiny_sample(tmp_path_factory):
    """A 2-subject CT sample (96 x 96 matrix; some series tilted)."""
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
    assert all(a.path.parent.name == "ct" and a.path.name.endswith("_ct.nii.gz") for a in copies.acquisitions)


def test_dicom_headers_are_clinical_ct_with_distinct_uids(tiny_sample):
    info = acquisitions_info(tiny_sample)
    seen = set()
    for sid in ("001", "002"):
        for session in ("scan", "rescan"):
            drawn = info[f"{sid}_{session}"]
            files = sorted((tiny_sample / sid / session).glob("*.dcm"))
            ds = pydicom.dcmread(files[0])
            assert ds.Modality == "CT" and ds.RescaleType == "HU" and float(ds.RescaleIntercept) == -1024.0
            assert str(ds.PatientName) == f"SAMPLE^{sid}" and ds.StudyDate and ds.StudyTime
            assert len(files) == drawn["shape"][2] and (ds.Rows, ds.Columns) == (96, 96)
            assert float(ds.PixelSpacing[0]) == pytest.approx(drawn["fov_mm"] / 96, abs=1e-4)
            assert 235.0 <= drawn["fov_mm"] <= 255.0 and drawn["slice_mm"] in ScannerParams().slice_mm
            tilt = np.deg2rad(drawn["tilt_deg"])
            assert float(ds.GantryDetectorTilt) == pytest.approx(drawn["tilt_deg"], abs=0.01)
            # slice planes tilted by the gantry angle; the table still steps along z
            iop = np.asarray(ds.ImageOrientationPatient, float)
            assert abs(iop[5]) == pytest.approx(abs(np.sin(tilt)), abs=1e-5)
            last = pydicom.dcmread(files[-1], stop_before_pixels=True)
            step = (np.asarray(last.ImagePositionPatient, float) - np.asarray(ds.ImagePositionPatient, float))
            np.testing.assert_allclose(step / (len(files) - 1), [0, 0, drawn["slice_mm"]], atol=1e-4)
            assert float(ds.SliceThickness) == pytest.approx(drawn["slice_mm"] * np.cos(tilt), abs=1e-4)
            seen.add((ds.StudyInstanceUID, ds.SeriesInstanceUID))
    assert len({s for s, _ in seen}) == 4 and len({s for _, s in seen}) == 4
    assert any(v["tilt_deg"] != 0 for v in info.values()) and any(v["tilt_deg"] == 0 for v in info.values())


def test_field_of_view_runs_from_above_the_vertex_to_the_shoulders(tiny_sample):
    info = acquisitions_info(tiny_sample)
    for acq_id in (k for k, v in info.items() if v["tilt_deg"] == 0):
        sid, session = acq_id.split("_")
        vol = load_volume(nifti_copy_path(tiny_sample, sid, session))
        body = vol.data[:, vol.data.shape[1] // 3:, :] > -300  # anterior two thirds: no table there
        assert not body[:, :, -1].any()  # air above the vertex
        width = [np.flatnonzero(body[:, :, k].any(axis=1)).size for k in range(body.shape[2])]
        # the bottom slices hold neck and upper shoulders, wider than the head (cut by the field of view)
        assert max(width[:3]) > 0.8 * body.shape[0] and max(width[:3]) > width[body.shape[2] // 2]
        assert 250.0 <= (body.shape[2] - 1) * vol.zooms[2] <= 330.0


def test_tissues_have_clinical_hu():
    from defacebench.data.phantom.anatomy import L, base_anatomy
    from scipy import ndimage

    base = base_anatomy()
    expect = {"fat": (-120, -80), "muscle": (30, 70), "brain": (20, 45), "csf": (0, 20),
              "bone": (700, 1500), "teeth": (2000, 3000), "eye": (0, 30), "air": (-1001, -900)}
    for name, (lo, hi) in expect.items():
        core = ndimage.binary_erosion(base.labels == L[name])
        inner = base.hu[core if core.any() else base.labels == L[name]]
        assert inner.size > (3 if name == "csf" else 50), name
        assert lo <= float(np.median(inner)) <= hi, (name, float(np.median(inner)))
    # skin (1-2 voxels, partial volume with air) is denser than the fat under it where they meet
    skin = base.labels == L["skin"]
    inner_skin = skin & ndimage.binary_dilation(base.labels == L["fat"]) & ~ndimage.binary_dilation(base.labels == 0)
    assert float(np.median(base.hu[inner_skin])) > -60.0
    # inside the head: air in the sinuses and airway, not only outside
    head = ndimage.binary_fill_holes(base.labels > 0)
    assert ((base.labels == L["air"]) & head).sum() * base.grid.step**3 > 10_000  # > 10 ml of air cavities
    for name in ("ear", "lens", "marrow"):
        assert (base.labels == L[name]).any(), name


def test_cradle_and_table_touch_the_head_behind_it():
    """The same acquisition with and without hardware: the difference is the cradle and table,
    posterior of the head, touching it, and the table spans the field of view."""
    from dataclasses import replace

    from defacebench.data.phantom.anatomy import base_anatomy
    from defacebench.data.phantom.hardware import HardwareParams
    from defacebench.data.phantom.identity import IdentityParams, PoseParams, make_identity, random_pose
    from defacebench.data.phantom.scanner import acquire
    from defacebench.data.phantom.template import Landmarks
    from scipy import ndimage

    base = base_anatomy()
    ident = make_identity(base, np.random.default_rng(7), IdentityParams())
    scans = []
    for hw in (HardwareParams(metal_fraction=0.0), HardwareParams(cradle=False, table=False)):
        rng = np.random.default_rng(11)
        pose = random_pose(rng, PoseParams())
        # a fixed field of view (format 4's): this test is about the hardware, not where the FOV sits
        scanner = replace(ScannerParams(matrix=96, tilt_fraction=0.0, fov_centre_y=4.0), hardware=hw)
        scans.append(acquire(base, ident, pose, rng, scanner, Landmarks(), np.zeros((0, 3))))
    with_hw, without = scans[0].data, scans[1].data
    hardware = np.abs(with_hw - without) > 1e-3
    head = without > -500
    assert hardware.sum() > 1000
    j_head = np.nonzero(head)[1].mean()
    assert np.nonzero(hardware)[1].mean() < j_head  # posterior (low j in RAS)
    assert (ndimage.binary_dilation(head) & hardware).any()  # touching
    assert float(np.median(with_hw[hardware])) > 0  # plastic/carbon, not foam only
    assert hardware[:, :, with_hw.shape[2] // 2].any(axis=1).all()  # the table spans the field of view


def test_tilted_series_is_recovered_by_every_converter(tiny_sample, tmp_path):
    info = acquisitions_info(tiny_sample)
    ds = discover(tiny_sample)
    tilted = [a for a in ds.acquisitions if info[a.acq_id]["tilt_deg"] != 0][0]
    ref = load_volume(nifti_copy_path(tiny_sample, tilted.subject_id, tilted.session))
    for converter in ("pydicom", "dicom2nifti", "simpleitk"):
        rec = convert_acquisition(tilted, tmp_path / f"{converter}.nii.gz", ConversionParams(converter))
        got = load_volume(rec.output_path)
        assert rec.gantry_tilt_deg == pytest.approx(abs(info[tilted.acq_id]["tilt_deg"]), abs=0.01)
        assert any("gantry tilt" in w for w in rec.warnings)
        a = got.affine[:3, :3]
        np.testing.assert_allclose(a.T @ a, np.diag(np.diag(a.T @ a)), atol=1e-6)  # orthogonal grid
        np.testing.assert_allclose(got.affine, ref.affine, atol=1e-3)
        assert np.abs(got.data - ref.data).max() < 0.5


@pytest.fixture(scope="module")
def dicom2nifti_volumes(tiny_sample, tmp_path_factory):
    """Every acquisition of the tiny sample converted once by dicom2nifti (the reference)."""
    out = tmp_path_factory.mktemp("d2n")
    return {acq.acq_id: load_volume(convert_acquisition(acq, out / f"{acq.acq_id}.nii.gz",
                                                        ConversionParams("dicom2nifti")).output_path)
            for acq in discover(tiny_sample).acquisitions}


@pytest.mark.parametrize("converter", OTHER_CONVERTERS)
def test_converters_agree_exactly_on_the_sample(tiny_sample, dicom2nifti_volumes, tmp_path, converter):
    """0 HU difference and affines within 1e-4 against dicom2nifti, tilted series included."""
    for acq in discover(tiny_sample).acquisitions:
        ref = dicom2nifti_volumes[acq.acq_id]
        got = load_volume(convert_acquisition(acq, tmp_path / "got.nii.gz", ConversionParams(converter)).output_path)
        assert got.data.shape == ref.data.shape
        assert float(np.abs(got.data - ref.data).max()) == 0.0
        np.testing.assert_allclose(got.affine, ref.affine, atol=1e-4)
        assert got.modality == "ct"


def test_metal_fillings_sit_where_the_tilted_conversion_puts_them(tmp_path):
    """A filling written into a tilted series is found, after conversion, at its scanner position."""
    from defacebench.data.dicom_write import SeriesInfo, quantized_hu, write_series
    from defacebench.data.phantom.anatomy import AnatomyParams, base_anatomy
    from defacebench.data.phantom.identity import IdentityParams, PoseParams, make_identity, random_pose, to_scanner
    from defacebench.data.phantom.scanner import acquire
    from defacebench.data.dataset import Acquisition

    base = base_anatomy()
    rng = np.random.default_rng(5)
    ident = make_identity(base, rng, IdentityParams())
    pose = random_pose(rng, PoseParams())
    filling = base.teeth[3:4]
    scanner = ScannerParams(matrix=128, tilt_fraction=1.0, noise=(0.0, 0.0), slice_mm=(2.0,), slice_weights=(1.0,))
    acq = acquire(base, ident, pose, rng, scanner, AnatomyParams().landmarks, filling)
    assert acq.geometry.tilt_deg != 0
    info = SeriesInfo(uid_key="tilt-metal", gantry_tilt_deg=acq.geometry.tilt_deg)
    write_series(quantized_hu(acq.data, info), acq.geometry.affine, tmp_path / "dcm", info)
    rec = convert_acquisition(Acquisition("x", "", tmp_path / "dcm", "dicom"), tmp_path / "v.nii.gz")
    vol = load_volume(rec.output_path)
    metal = np.argwhere(vol.data > 2950)
    found = (metal @ vol.affine[:3, :3].T + vol.affine[:3, 3]).mean(axis=0)
    np.testing.assert_allclose(found, to_scanner(filling, ident, pose)[0], atol=1.5)


def test_cached_dataset_is_returned_without_rebuilding(tiny_sample):
    marker = tiny_sample.parent / MARKER
    before = marker.stat().st_mtime_ns
    start = time.monotonic()
    again = make_sample_dataset(tiny_sample.parent, TINY)
    assert again == tiny_sample and time.monotonic() - start < 1.0
    assert marker.stat().st_mtime_ns == before
    meta = json.loads((tiny_sample.parent / "sample.json").read_text())
    assert meta["params"]["modality"] == "ct" and set(meta["acquisitions"]) == {
        "001_scan", "001_rescan", "002_scan", "002_rescan"}


def test_partial_build_is_rebuilt_and_identities_do_not_depend_on_n(tmp_path, tiny_sample):
    out = tmp_path / "one"
    one = SampleParams(n_subjects=1, seed=3, matrix=96, scanner=TINY.scanner)
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


def test_ids_params_and_default_dir(monkeypatch, tmp_path):
    assert subject_ids(3) == ["001", "002", "003"]
    assert subject_ids(1000)[0] == "0001"
    monkeypatch.setenv("DEFACEBENCH_DATA", str(tmp_path))
    assert default_sample_dir(TINY).parent == tmp_path
    assert default_sample_dir(TINY) != default_sample_dir(SampleParams(n_subjects=2, seed=4))
    assert default_sample_dir(SampleParams(modality="mri")).name.startswith("sample-mri-")
    assert SampleParams(matrix=512).scanner_params().matrix == 512
    assert SampleParams(modality="mri").scanner_params().modality == "mri"
    with pytest.raises(DatasetError, match="at least 1"):
        make_sample_dataset(tmp_path / "x", SampleParams(n_subjects=0))
    with pytest.raises(DatasetError, match="modality 'pet'"):
        SampleParams(modality="pet")


@pytest.mark.slow
def test_hundred_subjects_build(tmp_path):
    root = make_sample_dataset(tmp_path / "big", SampleParams(n_subjects=100))
    ds = discover(root)
    assert len(ds.subjects) == 100 and ds.subject_ids[-1] == "100" and not ds.failures
