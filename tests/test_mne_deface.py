"""mne_deface against mne-bids' own ``mne_bids.write._deface`` (mne-bids 0.20.0 is in the test extra):
the same plane voxel for voxel on oblique grids, the same volume on an MRI, air instead of water on
CT, the same checks of inset and theta, and a clear error without a face."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from defacebench.data.volume import load_volume, tag_modality
from defacebench.errors import DefaceError
from defacers.mne import MneDeface, MneDefaceParams, plane_face_side

mne_write = pytest.importorskip("mne_bids.write", reason="mne-bids is in the test extra: pip install -e .[test]")


def _random_affine(rng: np.random.Generator) -> np.ndarray:
    """An oblique voxel-to-world affine: random rotation, voxel sizes 0.7-3 mm, offset."""
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag(rng.uniform(0.7, 3.0, 3))
    affine[:3, 3] = rng.uniform(-80, 80, 3)
    return affine


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0.0, 20.0), st.floats(0.0, 89.9))
def test_plane_is_mne_bids_voxel_for_voxel(seed, inset, theta):
    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in rng.integers(9, 30, 3))
    affine = _random_affine(rng)
    nasion_vox = np.array([rng.uniform(0, n - 1) for n in shape])
    landmarks = np.vstack([np.zeros(3), nasion_vox, np.zeros(3)])  # LPA, NAS, RPA (only NAS is used)
    img = nib.Nifti1Image(rng.uniform(1.0, 2.0, shape).astype(np.float32), affine)
    reference = np.asarray(mne_write._deface(img, landmarks, {"inset": inset, "theta": theta}).dataobj) == 0
    nasion = nib.affines.apply_affine(affine, nasion_vox)
    ours = plane_face_side(shape, affine, nasion, inset_mm=inset, theta_deg=theta)
    assert np.array_equal(ours, reference)


def _phantom_t1() -> nib.Nifti1Image:
    """The phantom's head (3 mm) as a T1-like MRI: HU mapped to 0 (air) .. ~1 (tissue), tagged MRI."""
    from defacebench.data.phantom.anatomy import head_ct

    hu, affine = head_ct(3.0)
    img = nib.Nifti1Image(np.clip((hu + 1000.0) / 1040.0, 0, None).astype(np.float32), affine)
    tag_modality(img, "mri")
    return img


def test_defaced_mri_is_mne_bids_output_at_the_found_nasion(tmp_path):
    img = _phantom_t1()
    path = tmp_path / "t1.nii.gz"
    nib.save(img, str(path))
    result = MneDeface().deface(path, tmp_path)
    nasion = np.array([float(v) for v in result.log.split("nasion (RAS mm) [")[1].split("]")[0].split(",")])
    landmarks = np.vstack([np.zeros(3), nib.affines.apply_affine(np.linalg.inv(img.affine), nasion), np.zeros(3)])
    expected = np.asarray(mne_write._deface(img, landmarks, {"inset": 5, "theta": 15.0}).dataobj, np.float32)
    got = np.asarray(nib.load(str(result.volume_path)).dataobj)
    assert np.allclose(got, expected, atol=1e-4) and (got == 0).sum() > (np.asarray(img.dataobj) == 0).sum()
    removed = np.asarray(nib.load(str(result.mask_path)).dataobj) == 1
    assert np.array_equal(removed, plane_face_side(img.shape, img.affine, nasion))
    assert "mne-bids 0.20.0" in result.tool_version


def test_ct_removed_voxels_become_air_not_water(template_ct, write_ct, tmp_path):
    vol = template_ct(4.0)
    path = write_ct(vol, tmp_path / "in put" / "ct.nii.gz")
    result = MneDeface().deface(path, tmp_path)
    raw = np.asarray(nib.load(str(result.volume_path)).dataobj)
    removed = np.asarray(nib.load(str(result.mask_path)).dataobj) == 1
    src = np.asarray(nib.load(str(path)).dataobj)
    assert removed.any() and (raw[removed] == -1000.0).all() and np.array_equal(raw[~removed], src[~removed])
    j = np.nonzero(removed & (src > -500))[1]
    assert j.mean() > 0.6 * src.shape[1], "the face side is the front"


def test_the_same_cut_whatever_the_stored_voxel_order(tmp_path):
    img = _phantom_t1()
    flipped = img.as_reoriented(np.array([[1, -1], [0, 1], [2, -1]]))
    tag_modality(flipped, "mri")
    for name, image in (("ras", img), ("flipped", flipped)):
        nib.save(image, str(tmp_path / f"{name}.nii.gz"))
        (tmp_path / name).mkdir()
    a = MneDeface().deface(tmp_path / "ras.nii.gz", tmp_path / "ras")
    b = MneDeface().deface(tmp_path / "flipped.nii.gz", tmp_path / "flipped")
    assert np.array_equal(load_volume(a.volume_path).data, load_volume(b.volume_path).data)


def test_parameters_are_checked_like_mne_bids():
    with pytest.raises(ValueError, match="inset_mm"):
        MneDefaceParams(inset_mm=-1.0)
    with pytest.raises(ValueError, match="theta_deg"):
        MneDefaceParams(theta_deg=90.0)
    img = nib.Nifti1Image(np.ones((4, 4, 4), np.float32), np.eye(4))
    with pytest.raises(ValueError, match="theta"):
        mne_write._deface(img, np.zeros((3, 3)), {"theta": 90.0})


def test_no_face_profile_is_a_clear_error(tmp_path):
    i, j, k = np.indices((60, 70, 80))
    ball = np.where((i - 30) ** 2 + (j - 35) ** 2 + (k - 40) ** 2 < 28 ** 2, 40.0, -1000.0).astype(np.float32)
    path = tmp_path / "ball head.nii.gz"
    nib.save(nib.Nifti1Image(ball, np.diag([3.0, 3.0, 3.0, 1.0])), str(path))
    with pytest.raises(DefaceError, match="ball head.nii.gz.*(no nasion|only)"):
        MneDeface().deface(path, tmp_path)

