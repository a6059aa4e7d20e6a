"""Modality decisions (CT, MRI, mislabelled), the modality tag on volumes, and the MRI sample."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from defacebench.contracts import Volume
from defacebench.data.convert import ConversionParams, convert_acquisition
from defacebench.data.dataset import Acquisition, discover
from defacebench.data.dicom_write import SeriesInfo, quantized_hu, write_series
from defacebench.data.modality import (
    ModalityError, declared_from_dicom, declared_from_name, decide, intensity_modality,
)
from defacebench.data.phantom.scanner import ScannerParams, mri_scanner
from defacebench.data.sample import SampleParams, acquisitions_info, make_sample_dataset, nifti_copy_path, nifti_root
from defacebench.data.volume import load_volume, save_volume

MRI_TINY = SampleParams(n_subjects=2, seed=3, modality="mri", matrix=96)


@pytest.fixture(scope="module")
def mri_sample(tmp_path_factory):
    return make_sample_dataset(tmp_path_factory.mktemp("mri") / "tiny", MRI_TINY)


def ct_like(shape=(20, 24, 16), seed=0) -> np.ndarray:
    """Air at -1000 HU around a soft-tissue block."""
    data = np.random.default_rng(seed).normal(-1000.0, 10.0, shape).astype(np.float32)
    data[4:-4, 4:-4, 3:-3] = 40.0
    return data


def mri_like(shape=(20, 24, 16), seed=0) -> np.ndarray:
    """A Rician-like floor around a bright block (non-negative scanner units)."""
    data = np.abs(np.random.default_rng(seed).normal(0.0, 20.0, shape)).astype(np.float32)
    data[4:-4, 4:-4, 3:-3] = 600.0
    return data


def test_intensity_verdicts():
    assert intensity_modality(ct_like()).modality == "ct"
    assert intensity_modality(mri_like()).modality == "mri"
    # HU without air (a cropped brain) and a signed, air-less volume decide nothing
    assert intensity_modality(np.full((8, 8, 8), 30.0, np.float32)).modality is None
    assert intensity_modality(np.random.default_rng(1).normal(0, 300, (16, 16, 16))).modality is None


@settings(max_examples=30, deadline=None)
@given(air=st.floats(0.06, 0.9), tissue=st.floats(-150.0, 2000.0), seed=st.integers(0, 2**16))
def test_any_volume_with_enough_air_near_minus_1000_is_ct(air, tissue, seed):
    rng = np.random.default_rng(seed)
    data = np.full(4000, tissue, np.float32)
    data[: int(air * data.size)] = rng.normal(-1000.0, 30.0, int(air * data.size))
    assert intensity_modality(data).modality == "ct"


@settings(max_examples=30, deadline=None)
@given(scale=st.floats(1.0, 5000.0), air=st.floats(0.06, 0.9), seed=st.integers(0, 2**16))
def test_any_non_negative_volume_with_a_dark_background_is_mri(scale, air, seed):
    rng = np.random.default_rng(seed)
    data = rng.gamma(8.0, scale, 3000).astype(np.float32)  # tissue
    n_air = int(air * data.size)
    data[:n_air] = np.abs(rng.normal(0.0, 0.02 * scale, n_air))  # Rician-like floor
    assert intensity_modality(data).modality == "mri"


def test_declarations():
    assert declared_from_dicom("CT") == "ct" and declared_from_dicom("MR") == "mri"
    assert declared_from_dicom("PT") is None and declared_from_dicom(None) is None
    assert declared_from_name("sub-1_ses-a_T1w.nii.gz") == "mri" and declared_from_name("sub-1_ct.nii") == "ct"
    assert declared_from_name("head.nrrd") is None and declared_from_name("sub-1_FLAIR.mha") == "mri"


def test_decisions_agree_override_and_contradict():
    d = decide(ct_like(), where="x", declared="ct", declared_by="DICOM Modality")
    assert (d.modality, d.source, d.warning) == ("ct", "DICOM Modality", "")
    assert decide(mri_like(), where="x").source == "intensity"
    forced = decide(mri_like(), where="x", declared="ct", declared_by="DICOM Modality", choice="mri")
    assert forced.modality == "mri" and forced.source == "override" and forced.warning == ""
    against = decide(mri_like(), where="x", declared="mri", choice="ct")
    assert against.modality == "ct" and "overrides intensities that look like MRI" in against.warning
    with pytest.raises(ModalityError, match=r"x: DICOM Modality says CT but its intensities look like MRI.*--modality mri"):
        decide(mri_like(), where="x", declared="ct", declared_by="DICOM Modality")
    with pytest.raises(ModalityError, match="undecided.*--modality ct or --modality mri"):
        decide(np.random.default_rng(1).normal(0, 300, (16, 16, 16)), where="y")
    with pytest.raises(ModalityError, match="--modality 'pet' is unknown"):
        decide(ct_like(), where="x", choice="pet")


def _series(folder, data, modality: str):
    info = SeriesInfo(uid_key=f"mislabel-{modality}", modality=modality,
                      rescale_intercept=-1024.0 if modality == "CT" else 0.0)
    affine = np.diag([1.2, 1.1, 2.5, 1.0])
    write_series(data, affine, folder, info)
    return Acquisition("s1", "", folder, "dicom")


def test_mislabelled_dicom_is_a_clear_error_and_an_override_is_recorded(tmp_path):
    acq = _series(tmp_path / "dcm", mri_like(), "CT")  # MR intensities in a series labelled CT
    with pytest.raises(ModalityError, match="DICOM Modality says CT but its intensities look like MRI"):
        convert_acquisition(acq, tmp_path / "a.nii.gz")
    rec = convert_acquisition(acq, tmp_path / "b.nii.gz", ConversionParams(modality="mri"))
    assert rec.modality == "mri" and rec.dicom_modality == "CT"
    assert rec.modality_decision["source"] == "override" and rec.modality_decision["intensity"] == "mri"
    assert load_volume(rec.output_path).modality == "mri"


def test_mislabelled_bids_name_is_an_error(tmp_path):
    path = tmp_path / "sub-1_T1w.nii.gz"
    nib.save(nib.Nifti1Image(ct_like(), np.diag([2.0, 2.0, 2.0, 1.0])), path)
    with pytest.raises(ModalityError, match="BIDS suffix says MRI but its intensities look like CT"):
        convert_acquisition(Acquisition("1", "", path, "nifti"), tmp_path / "o.nii.gz")


def test_modality_tag_travels_with_the_file(tmp_path):
    affine = np.diag([1.5, 1.2, 2.0, 1.0])
    save_volume(Volume(mri_like(), affine, "mri"), tmp_path / "m.nii.gz")
    save_volume(Volume(ct_like(), affine, "ct"), tmp_path / "c.nii.gz")
    assert load_volume(tmp_path / "m.nii.gz").modality == "mri"
    assert load_volume(tmp_path / "c.nii.gz").modality == "ct"
    assert load_volume(tmp_path / "m.nii.gz", modality="ct").modality == "ct"
    nib.save(nib.Nifti1Image(mri_like(), affine), tmp_path / "untagged.nii.gz")  # no tag: intensities decide
    assert load_volume(tmp_path / "untagged.nii.gz").modality == "mri"


def test_mri_sample_layout_and_contrast(mri_sample):
    ds = discover(mri_sample)
    assert ds.subject_ids == ("001", "002") and not ds.failures
    first = sorted((mri_sample / "001" / "scan").glob("*.dcm"))[0]
    header = pydicom.dcmread(first)
    assert header.Modality == "MR" and header.SOPClassUID == pydicom.uid.MRImageStorage
    copies = discover(nifti_root(mri_sample))
    assert all(a.path.parent.name == "anat" and a.path.name.endswith("_T1w.nii.gz") for a in copies.acquisitions)
    rec = convert_acquisition(ds.acquisitions[0], mri_sample.parent / ".." / "m.nii.gz")
    assert rec.modality == "mri" and rec.modality_decision["intensity"] == "mri"
    vol = load_volume(nifti_copy_path(mri_sample, "001", "scan"))
    assert vol.modality == "mri" and float(vol.data.min()) >= 0.0
    assert all(v["tilt_deg"] == 0 for v in acquisitions_info(mri_sample).values())


def test_mri_contrast_follows_t1():
    """Fat and skin bright, brain mid-bright, CSF, bone and air dark (before bias and noise)."""
    from defacebench.data.phantom.anatomy import L, base_anatomy
    from scipy import ndimage

    base = base_anatomy()
    level = {name: float(np.median(base.t1[ndimage.binary_erosion(base.labels == L[name])]))
             for name in ("fat", "brain", "muscle", "bone", "air", "eye")}
    assert level["fat"] > level["brain"] > level["muscle"] > level["bone"] and level["fat"] > 0.9
    assert level["air"] < 0.05 and level["bone"] < 0.1 and level["eye"] < 0.2


def test_mri_brain_mask_matches_the_phantom_brain():
    from defacebench.anatomy.brainmask import dice
    from defacebench.anatomy.masks import brain_mask, head_mask
    from defacebench.data.phantom.anatomy import L, AnatomyParams, base_anatomy
    from defacebench.data.phantom.identity import IdentityParams, PoseParams, make_identity, random_pose
    from defacebench.data.phantom.scanner import acquire, sample_base

    base = base_anatomy()
    rng = np.random.default_rng(4)
    ident = make_identity(base, rng, IdentityParams())
    pose = random_pose(rng, PoseParams())
    acq = acquire(base, ident, pose, rng, mri_scanner(), AnatomyParams().landmarks, np.zeros((0, 3)))
    truth = sample_base((base.labels == L["brain"]).astype(np.float32), base, ident, pose, acq.geometry, 0.0) > 0.5
    vol = Volume(acq.data, acq.geometry.affine, "mri")
    got = brain_mask(vol)
    assert dice(got, truth) > 0.85
    head = head_mask(vol)
    assert (head & truth).sum() >= 0.99 * truth.sum()  # the head contains the brain


def test_ct_sample_scanner_defaults_are_ct():
    assert ScannerParams().modality == "ct" and mri_scanner().modality == "mri"
    assert mri_scanner().tilt_fraction == 0.0 and not mri_scanner().hardware.cradle


def test_quickshear_and_qc_use_the_mri_rules(mri_sample, tmp_path):
    """quickshear on a T1w head takes its brain mask from the MRI rule, removes the lower face and
    spares the brain; cleanup fills with 0 and QC labels the result with the MRI masks."""
    from defacebench.anatomy.cleanup import apply_cleanup, fill_value
    from defacebench.anatomy.masks import brain_mask
    from defacebench.anatomy.qc import assess
    from defacers.quickshear import Quickshear

    path = nifti_copy_path(mri_sample, "001", "scan")
    result = Quickshear().deface(path, tmp_path)
    assert "T1 intensity bands (MRI)" in result.log
    original, defaced = load_volume(path), load_volume(result.volume_path)
    assert original.modality == defaced.modality == "mri"
    removed = load_volume(result.mask_path).data > 0.5
    assert removed.sum() > 1000
    assert (removed & brain_mask(original)).sum() < 0.01 * brain_mask(original).sum()
    cleaned = apply_cleanup(original, defaced, mask=removed, defacer="quickshear")
    assert fill_value("mri") == 0.0 and fill_value("ct") == -1000.0
    assert np.all(cleaned.data[removed] == 0.0) and cleaned.modality == "mri"
    qc = assess(original, cleaned)
    assert qc.label in ("ok", "face_intact") and qc.brain_dice > 0.9 and qc.head_removed_fraction < 0.5


def test_surface_renderer_finds_the_face_on_mri(mri_sample):
    pytest.importorskip("dlib")
    from recognizers.detect.dlib import DlibHog
    from recognizers.render.surface import SurfaceRenderer

    hits = 0
    for sid in ("001", "002"):
        view = SurfaceRenderer().render(load_volume(nifti_copy_path(mri_sample, sid, "scan")))[0]
        assert view.image.mean() > 5  # the head, not a black frame
        hits += bool(DlibHog().detect(view.image))
    assert hits == 2


def test_vtk_volume_renders_the_face_on_mri_and_leaves_ct_alone(mri_sample):
    """The study's HU transfer functions see nothing on a T1 (before: no face on 16 of 16 MRI
    sample renders); mapped onto the HU scale the face is found. CT passes through unchanged."""
    pytest.importorskip("dlib")
    from recognizers.detect.dlib import DlibHog
    from recognizers.render.vtk_volume import VtkVolumeParams, VtkVolumeRenderer, on_hu_scale

    renderer = VtkVolumeRenderer()
    if not renderer.available().ok:
        pytest.skip(renderer.available().reason)
    hits = 0
    for sid in ("001", "002"):
        volume = load_volume(nifti_copy_path(mri_sample, sid, "scan"))
        assert volume.modality == "mri"
        mapped = on_hu_scale(volume, VtkVolumeParams())
        assert mapped.data.min() >= -1000.0 - 1e-3 and np.percentile(mapped.data, 99) > -400.0
        hits += bool(DlibHog().detect(renderer.render(volume)[0].image))
    assert hits == 2
    ct = Volume(ct_like(), np.diag([0.9, 1.1, 2.5, 1.0]), "ct")
    assert on_hu_scale(ct, VtkVolumeParams()) is ct
