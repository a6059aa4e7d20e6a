"""Brain and head masks of a head CT from Hounsfield units alone (no template, no registration).

Why: quickshear needs a brain mask, and defacing QC needs to know which voxels are brain and which
are head. On CT both follow from HU:

- head: everything denser than air (> ``head_hu``, default -500 HU), holes filled, largest component;
- bone: voxels above ``bone_hu`` (default 300 HU; cortical bone is ~700-2000 HU);
- skull interior: the bone mask is closed (``closing_mm``) so sutures and small foramina do not leak,
  then filled slice by slice in the axial and in the coronal plane, and in 3-D (union). The skull is
  a closed ring in axial slices above the skull base even where it is open at the foramen magnum in
  3-D; coronal slices keep the interior when a defacer cut the frontal bone (axial rings open at the
  front, coronal rings behind the cut stay closed), so the mask of a defaced scan stays comparable;
- brain: interior voxels inside the soft-tissue window ``lo_hu``..``hi_hu`` (default 0..80 HU: brain
  ~20-45 HU, CSF ~0-15 HU, blood up to ~80 HU), opened (``opening_mm``) to cut thin bridges through
  the orbits and the skull base, and the largest connected component kept.

The masks are approximate (no segmentation model), but deterministic and cheap (~0.3 s at 2 mm: the
morphology of :mod:`defacebench.anatomy.morph`, scipy's results on the masks' boxes only).
:mod:`defacebench.anatomy.masks` applies the volume's modality's rule: these HU rules for CT,
:mod:`defacebench.anatomy.mrimask` for a T1-weighted MRI.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from defacebench.anatomy import morph
from defacebench.contracts import Volume


@dataclass(frozen=True)
class BrainMaskParams:
    """HU thresholds and morphology radii (mm) of :func:`ct_brain_mask` and :func:`ct_head_mask`."""

    lo_hu: float = 0.0
    hi_hu: float = 80.0
    bone_hu: float = 300.0
    head_hu: float = -500.0
    closing_mm: float = 4.0
    opening_mm: float = 3.0


def ball(radius_mm: float, zooms: tuple[float, float, float]) -> np.ndarray:
    """Ellipsoidal structuring element of ``radius_mm`` on a grid with voxel sizes ``zooms``."""
    half = [max(0, int(np.floor(radius_mm / z))) for z in zooms]
    grids = np.ogrid[tuple(slice(-h, h + 1) for h in half)]
    dist = sum((g * z / max(radius_mm, 1e-6)) ** 2 for g, z in zip(grids, zooms))
    return dist <= 1.0


def largest_component(mask: np.ndarray, *, connectivity: int = 3) -> np.ndarray:
    """The largest component of ``mask`` (empty stays empty); ``connectivity`` as scipy's
    ``generate_binary_structure``: 3 = 26-connected (default), 1 = 6-connected."""
    labels, n = ndimage.label(mask, structure=ndimage.generate_binary_structure(mask.ndim, connectivity))
    if n == 0:
        return np.zeros(mask.shape, bool)
    sizes = np.bincount(labels.ravel())[1:]
    return labels == (int(np.argmax(sizes)) + 1)


def fill_slices(mask: np.ndarray, axis: int) -> np.ndarray:
    """Fill holes slice by slice across ``axis`` (2 = axial, 1 = coronal in a canonical RAS volume).

    One 3-D hole filling whose connectivity stays inside each slice (the 2-D 4-neighbour cross on
    the slice plane, nothing along ``axis``): the same result as filling every slice on its own,
    without a Python loop of one call per slice (issue #15)."""
    structure = np.zeros((3, 3, 3), bool)
    index = [slice(None)] * 3
    index[axis] = 1
    structure[tuple(index)] = ndimage.generate_binary_structure(2, 1)
    return morph.fill_holes(mask, structure=structure)


def _fill_axial(mask: np.ndarray) -> np.ndarray:
    """Fill holes slice by slice along the last (superior) axis of a canonical RAS volume."""
    return fill_slices(mask, 2)


def ct_head_mask(volume: Volume, params: BrainMaskParams = BrainMaskParams()) -> np.ndarray:
    """Head voxels of a CT: denser than ``head_hu``, holes filled, largest component."""
    head = largest_component(np.asarray(volume.data) > params.head_hu)
    return morph.fill_holes(_fill_axial(head))


def skull_interior(volume: Volume, params: BrainMaskParams = BrainMaskParams()) -> np.ndarray:
    """Voxels enclosed by the skull (closed bone mask filled axially and in 3-D, bone excluded)."""
    bone = np.asarray(volume.data) > params.bone_hu
    closed = morph.closing(bone, ball(params.closing_mm, volume.zooms))
    box = morph.box_of(closed, 1)  # filling needs the closed skull's box plus one background voxel
    filled = np.zeros_like(closed)
    if box is not None:
        part = closed[box]
        filled[box] = _fill_axial(part) | fill_slices(part, 1) | morph.fill_holes(part)
    return filled & ~closed


def ct_brain_mask(volume: Volume, params: BrainMaskParams = BrainMaskParams()) -> np.ndarray:
    """Boolean brain mask of a canonical-RAS CT volume in HU (see the module docstring)."""
    data = np.asarray(volume.data)
    soft = skull_interior(volume, params) & (data >= params.lo_hu) & (data <= params.hi_hu)
    if params.opening_mm > 0:
        soft = morph.opening(soft, ball(params.opening_mm, volume.zooms))
    return largest_component(soft)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap of two boolean masks; 1.0 when both are empty (nothing to disagree on)."""
    total = int(a.sum()) + int(b.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(a, b).sum()) / total

