"""Tests of defacebench.data.volume: canonical RAS loading, atomic saving, validation with real files."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from defacebench.contracts import Volume
from defacebench.errors import ConversionError
from defacebench.data.volume import load_volume, save_volume


def oblique_lps_affine() -> np.ndarray:
    """A non-canonical affine: LPS-stored (i toward L, j toward P), rotated 12 deg, anisotropic."""
    a = np.deg2rad(12.0)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag([-0.8, -0.9, 2.5])
    aff[:3, 3] = [40.0, 30.0, -20.0]
    return aff


def world_of_max(data: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """World coordinate (mm) of the single brightest voxel."""
    idx = np.unravel_index(int(np.argmax(data)), data.shape)
    return (affine @ np.array([*idx, 1.0]))[:3]


def test_load_gives_canonical_ras_and_keeps_world_positions(tmp_path):
    data = np.zeros((7, 9, 5), np.float32)
    data[1, 6, 3] = 500.0
    aff = oblique_lps_affine()
    nib.save(nib.Nifti1Image(data, aff), tmp_path / "lps.nii.gz")
    vol = load_volume(tmp_path / "lps.nii.gz")
    assert nib.aff2axcodes(vol.affine) == ("R", "A", "S")
    assert vol.data.dtype == np.float32
    assert sorted(vol.data.shape) == sorted(data.shape)
    np.testing.assert_allclose(world_of_max(vol.data, vol.affine), world_of_max(data, aff), atol=1e-4)


def test_save_then_load_round_trip_is_atomic(tmp_path):
    aff = np.diag([1.5, 1.0, 2.0, 1.0])
    aff[:3, 3] = [-10, 5, 3]
    vol = Volume(np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6) - 1000, aff)
    out = save_volume(vol, tmp_path / "sub" / "v.nii.gz")
    assert [p.name for p in out.parent.iterdir()] == ["v.nii.gz"]  # no temp file left behind
    back = load_volume(out)
    np.testing.assert_array_equal(back.data, vol.data)
    np.testing.assert_allclose(back.affine, aff)


def test_4d_nifti_is_rejected_with_named_file(tmp_path):
    path = tmp_path / "fmri.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 5, 6, 3), np.float32), np.eye(4)), path)
    with pytest.raises(ConversionError, match=r"fmri\.nii\.gz.*4-D.*split"):
        load_volume(path)


def test_trailing_singleton_dimension_is_accepted(tmp_path):
    path = tmp_path / "one.nii"
    nib.save(nib.Nifti1Image(np.ones((4, 5, 6, 1), np.float32), np.eye(4)), path)
    assert load_volume(path).data.shape == (4, 5, 6)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_voxels_are_rejected(tmp_path, bad):
    data = np.zeros((4, 5, 6), np.float32)
    data[2, 2, 2] = bad
    path = tmp_path / "bad.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    with pytest.raises(ConversionError, match=r"bad\.nii\.gz.*(NaN|inf)"):
        load_volume(path)


def test_corrupt_and_truncated_files_are_named(tmp_path):
    junk = tmp_path / "junk.nii.gz"
    junk.write_bytes(b"this is not a nifti file at all")
    with pytest.raises(ConversionError, match=r"junk\.nii\.gz.*(cannot read|unreadable)"):
        load_volume(junk)
    good = tmp_path / "good.nii"
    nib.save(nib.Nifti1Image(np.ones((20, 20, 20), np.float32), np.eye(4)), good)
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(gzip.compress(good.read_bytes()[:2000]))
    with pytest.raises(ConversionError, match=r"cut\.nii\.gz"):
        load_volume(cut)


def test_missing_file_raises_conversion_error(tmp_path):
    with pytest.raises(ConversionError, match="not found"):
        load_volume(tmp_path / "nope.nii.gz")


def test_save_refuses_nan_and_4d(tmp_path):
    with pytest.raises(ConversionError, match="NaN"):
        save_volume(Volume(np.full((3, 4, 5), np.nan, np.float32), np.eye(4)), tmp_path / "x.nii.gz")
    with pytest.raises(ConversionError, match="4-D"):
        save_volume(Volume(np.zeros((3, 4, 5, 2), np.float32), np.eye(4)), tmp_path / "y.nii.gz")
    assert not any(tmp_path.iterdir())


@settings(max_examples=25, deadline=None)
@given(perm=st.permutations([0, 1, 2]), flips=st.tuples(st.booleans(), st.booleans(), st.booleans()))
def test_any_axis_order_loads_as_ras_with_same_world_mapping(tmp_path_factory, perm, flips):
    """Invariant: whatever the stored axis order and signs, loading gives RAS and moves no voxel."""
    data = np.zeros((3, 4, 5), np.float32)
    data[2, 1, 3] = 1.0
    aff = np.zeros((4, 4))
    aff[3, 3] = 1.0
    for col, (axis, flip) in enumerate(zip(perm, flips)):
        aff[axis, col] = (-1.0 if flip else 1.0) * (1.0 + col * 0.5)
    aff[:3, 3] = [7.0, -3.0, 11.0]
    path = tmp_path_factory.mktemp("h") / "v.nii"
    nib.save(nib.Nifti1Image(data, aff), path)
    vol = load_volume(path)
    assert nib.aff2axcodes(vol.affine) == ("R", "A", "S")
    assert np.all(np.diag(vol.affine)[:3] > 0)
    np.testing.assert_allclose(world_of_max(vol.data, vol.affine), world_of_max(data, aff), atol=1e-6)
