"""pydeface's averaged T1 head on the phantom's base grid, and where its face parts are.

The only whole head with a face that ships offline is pydeface's ``mean_reg2mean.nii.gz``
(FIELD.md section 3). The phantom works in the *template frame*: millimetres from the centre of
the template's voxel array, axes along its voxel axes (R, A, S). The template's own small rotation
is dropped on purpose: its voxel axes are aligned with the head, so "anterior" is straight ahead.

:class:`Landmarks` are the face parts' positions in that frame, read once off the template (nose tip
= the most anterior skin point; eyes = the recesses beside the nose bridge; chin = the lowest
anterior point before the neck) and checked by a test against the template itself.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from defacebench.data.phantom.shapes import Grid
from defacebench.errors import DatasetError


@dataclass(frozen=True)
class Landmarks:
    """Face and head landmarks in the template frame (mm; x right, y anterior, z superior)."""

    nose_tip: tuple[float, float, float] = (0.0, 113.0, -61.0)
    nasion: tuple[float, float, float] = (0.0, 92.0, -18.0)
    eye_right: tuple[float, float, float] = (32.0, 72.0, -35.0)
    eye_left: tuple[float, float, float] = (-32.0, 72.0, -35.0)
    chin: tuple[float, float, float] = (0.0, 88.0, -110.0)
    upper_teeth_front: tuple[float, float, float] = (0.0, 84.0, -79.0)
    lower_teeth_front: tuple[float, float, float] = (0.0, 82.0, -88.0)
    ear_level_z: float = -38.0
    ear_y: float = -12.0
    vertex_z: float = 82.0
    template_bottom_z: float = -124.0
    neck_centre: tuple[float, float] = (0.0, -18.0)


def template_path() -> Path:
    """Path of pydeface's shipped template; DatasetError when pydeface is not installed."""
    spec = importlib.util.find_spec("pydeface")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(
            "the sample dataset is built from pydeface's template mean_reg2mean.nii.gz but pydeface "
            "is not installed. Fix: pip install pydeface"
        )
    path = Path(spec.submodule_search_locations[0]) / "data" / "mean_reg2mean.nii.gz"
    if not path.is_file():
        raise DatasetError(f"{path}: pydeface's template is missing. Fix: reinstall pydeface")
    return path


def template_frame() -> tuple[np.ndarray, np.ndarray]:
    """The template's T1 array and its voxel-to-template-frame affine (axis-aligned, centred)."""
    img = nib.load(str(template_path()))
    t1 = np.asarray(img.dataobj, dtype=np.float32)
    zooms = np.asarray(img.header.get_zooms()[:3], float)
    affine = np.diag([*zooms, 1.0])
    affine[:3, 3] = -(np.asarray(t1.shape) - 1) / 2.0 * zooms
    return t1, affine


def t1_on_grid(grid: Grid) -> np.ndarray:
    """The template T1 resampled (linear) onto ``grid`` (template frame mm); 0 outside it."""
    t1, affine = template_frame()
    inv = np.linalg.inv(affine)
    # the grid is axis-aligned, so the resampling is one affine_transform (a scaling and a shift)
    matrix = np.diag(np.diag(inv)[:3] * grid.step)
    offset = inv[:3, 3] + np.diag(inv)[:3] * np.asarray(grid.origin)
    return ndimage.affine_transform(t1, matrix, offset=offset, output_shape=grid.shape,
                                    order=1, cval=0.0, prefilter=False).astype(np.float32)


def ball(radius_vox: int) -> np.ndarray:
    """A spherical structuring element of the given radius in voxels."""
    r = np.arange(-radius_vox, radius_vox + 1)
    return (r[:, None, None] ** 2 + r[None, :, None] ** 2 + r[None, None, :] ** 2) <= radius_vox**2
