"""Synthetic head CTs shared by the defacer, cleanup and QC tests (plus tests of the phantoms).

Two phantoms, both small, non-cubic, with non-identity affines and real HU values:

- :func:`ellipsoid_ct`: an ellipsoid head (skin 30 HU, skull 1000 HU, brain 35 HU) with a nose-like
  block in front of the lower half, on a grid rotated by 8 degrees about x; analytic regions.
- :func:`template_ct`: pydeface's shipped template head (a real averaged face) resampled to
  ``voxel_mm`` and mapped to HU: outside -1000, soft tissue 25 HU, brain 35 HU (tissue deeper than
  11 mm above a skull-base plane) wrapped in a ~6 mm skull (1000 HU). Registration-based defacers
  need its real face.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from defacebench.anatomy.brainmask import ct_brain_mask, ct_head_mask
from defacebench.contracts import Volume
from defacebench.data.volume import save_volume


def rotation_x(deg: float) -> np.ndarray:
    """3x3 rotation about the x axis."""
    t = np.deg2rad(deg)
    return np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])


def ellipsoid_ct(zooms=(4.0, 3.5, 4.5), shape=(46, 66, 52), tilt_deg=8.0) -> Volume:
    """Ellipsoid head CT in HU on a tilted grid (see the module docstring)."""
    affine = np.eye(4)
    affine[:3, :3] = rotation_x(tilt_deg) @ np.diag(zooms)
    centre_ijk = (np.array(shape) - 1) / 2.0
    affine[:3, 3] = -affine[:3, :3] @ centre_ijk + np.array([1.0, 10.0, -3.0])
    ijk = np.indices(shape).reshape(3, -1).astype(float)
    x, y, z = (affine[:3, :3] @ ijk + affine[:3, 3:]).reshape((3,) + shape)
    y0, z0 = y - 10.0, z + 3.0
    x0 = x - 1.0
    r = np.sqrt((x0 / 75) ** 2 + (y0 / 95) ** 2 + (z0 / 100) ** 2)
    data = np.full(shape, -1000.0, np.float32)
    data[r <= 1.0] = 30.0
    data[(r <= 0.94) & (r > 0.86)] = 1000.0
    data[r <= 0.86] = 35.0
    nose = (np.abs(x0) < 18) & (y0 > 80) & (y0 < 112) & (z0 > -45) & (z0 < -5)
    data[nose & (data == -1000.0)] = 30.0
    return Volume(data=data, affine=affine)


@lru_cache(maxsize=4)
def _template_ct_cached(voxel_mm: float) -> tuple[bytes, tuple, bytes]:
    path = str(files("pydeface").joinpath("data/mean_reg2mean.nii.gz"))
    img = nib.load(path)
    t1 = np.asarray(img.dataobj, np.float32)
    zoom = np.array(img.header.get_zooms()[:3]) / voxel_mm
    small = ndimage.zoom(t1, zoom, order=1)[:, :, :-5]  # crop empty top slices: non-cubic grid
    affine = img.affine.copy()
    affine[:3, :3] = img.affine[:3, :3] @ np.diag(1.0 / zoom)
    head = ct_head_mask(Volume(small * 10.0 - 1000.0, affine))
    depth = ndimage.distance_transform_edt(head, sampling=[voxel_mm] * 3)
    ijk = np.indices(small.shape).reshape(3, -1)
    _, y, z = (affine[:3, :3] @ ijk + affine[:3, 3:]).reshape((3,) + small.shape)
    # brain: deep tissue above a skull-base plane sloping down to the back (template ~ MNI space)
    brain = (depth > 11.0) & (z > -32.0 + 0.3 * y)
    skull = ndimage.binary_dilation(brain, iterations=max(1, round(6.0 / voxel_mm))) & ~brain
    data = np.full(small.shape, -1000.0, np.float32)
    data[head] = 25.0
    data[skull] = 1000.0
    data[brain] = 35.0
    return data.tobytes(), data.shape, affine.tobytes()


def template_ct(voxel_mm: float = 4.0) -> Volume:
    """pydeface's template head as a synthetic CT (see the module docstring); a fresh copy each call."""
    raw, shape, aff = _template_ct_cached(float(voxel_mm))
    data = np.frombuffer(raw, np.float32).reshape(shape).copy()
    return Volume(data=data, affine=np.frombuffer(aff, float).reshape(4, 4).copy())


def write_ct(volume: Volume, path: Path) -> Path:
    """Save ``volume`` as a float32 NIfTI at ``path`` (folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_volume(volume, path)


def test_ellipsoid_phantom_masks_are_nested():
    vol = ellipsoid_ct()
    head, brain = ct_head_mask(vol), ct_brain_mask(vol)
    assert vol.data.shape == (46, 66, 52)
    assert brain.sum() > 0.3 * head.sum()
    assert not (brain & ~head).any()
    assert (vol.data[brain] == 35.0).all()


def test_template_phantom_has_skull_and_brain():
    vol = template_ct(4.0)
    brain = ct_brain_mask(vol)
    assert len(set(vol.data.shape)) == 3
    assert (vol.data > 300).sum() > 1000
    assert brain.sum() > 5000
