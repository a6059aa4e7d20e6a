"""Head and brain masks of a T1-weighted MRI from intensities alone (no template, no registration).

Why: quickshear needs a brain mask and defacing QC needs head and brain voxels; the CT rules
(:mod:`defacebench.anatomy.brainmask`) read Hounsfield units, which an MRI does not have. On a
T1-weighted head:

- head: voxels above an Otsu threshold of the whole volume (air is dark, Rician noise is a low
  floor), largest component, holes filled slice by slice and in 3-D (dark skull, CSF and sinuses
  are enclosed by the scalp);
- brain: the skull is dark in T1 and separates the scalp from the brain, so brain tissue is a
  mid-to-bright intensity band (``lo``..``hi`` x the white-matter level, the ``wm_percentile`` of
  the head's deep voxels), at least ``min_depth_mm`` below the skin (default 0: a depth rule
  moves the mask where a defacer cut the face away), opened by ``opening_mm``
  to cut the thin scalp and thin bridges (orbital fat, the optic nerves, the skull base), largest
  component, holes (ventricles) filled.

The bands are relative, so they hold under a smooth bias field of +-20 % and any scanner scaling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from defacebench.anatomy import morph
from defacebench.anatomy.brainmask import fill_slices, largest_component
from defacebench.contracts import Volume


@dataclass(frozen=True)
class MriMaskParams:
    """Relative intensity bands and morphology sizes (mm) of :func:`mri_brain_mask`."""

    head_fraction_of_otsu: float = 0.6
    wm_percentile: float = 90.0
    deep_mm: float = 25.0
    lo: float = 0.47
    hi: float = 1.25
    min_depth_mm: float = 0.0
    opening_mm: float = 4.0
    max_samples: int = 2_000_000


def _fill(mask: np.ndarray) -> np.ndarray:
    """Holes filled in every axial slice and in 3-D."""
    return ndimage.binary_fill_holes(fill_slices(mask, 2))


def head_threshold(data: np.ndarray, params: MriMaskParams = MriMaskParams()) -> float:
    """The head/air threshold: a fraction of Otsu's threshold of a subsample of the volume."""
    from skimage.filters import threshold_otsu

    flat = np.asarray(data, np.float32).reshape(-1)
    sample = flat[:: max(1, flat.size // params.max_samples)]
    return float(threshold_otsu(sample)) * params.head_fraction_of_otsu


def mri_head_mask(volume: Volume, params: MriMaskParams = MriMaskParams()) -> np.ndarray:
    """Head voxels of a T1-weighted MRI (see the module docstring)."""
    data = np.asarray(volume.data, np.float32)
    return _fill(largest_component(data > head_threshold(data, params)))


def mri_brain_mask(volume: Volume, params: MriMaskParams = MriMaskParams(),
                   head: np.ndarray | None = None) -> np.ndarray:
    """Boolean brain mask of a canonical-RAS T1-weighted MRI (see the module docstring).

    ``head``: :func:`mri_head_mask` of the same volume and params when the caller has it already
    (QC needs both masks; the head mask is a fifth of the cost)."""
    data = np.asarray(volume.data, np.float32)
    head = mri_head_mask(volume, params) if head is None else head
    if not head.any():
        return head
    depth = _edt_in_box(head, head, volume.zooms)
    deep = head & (depth > params.deep_mm)
    wm = float(np.percentile(data[deep if deep.any() else head], params.wm_percentile))
    band = head & (depth > params.min_depth_mm) & (data > params.lo * wm) & (data < params.hi * wm)
    core = _edt_in_box(band, band, volume.zooms) > params.opening_mm
    core = largest_component(core)
    if not core.any():
        return core
    grown = band & (_edt_in_box(~core, band, volume.zooms) <= params.opening_mm)
    return _fill(largest_component(grown))


def _edt_in_box(mask: np.ndarray, within: np.ndarray, zooms) -> np.ndarray:
    """``ndimage.distance_transform_edt(mask)`` at the voxels of ``within``'s bounding box (0 outside
    it), computed on that box grown by one voxel.

    Why: the transform is most of the brain mask's cost and the head or brain box is a fraction of
    the volume. Exact wherever the callers read it: for ``mask`` inside ``within``'s box (the head,
    the band) every voxel outside the box is background, and the one-voxel rim holds a background
    voxel at least as near as any outside the box (clamping a voxel's position into a box shortens
    each axis' offset); for ``mask = ~core`` with the core inside the box, the nearest core voxel is
    in the box."""
    box = morph.box_of(within, 1)
    out = np.zeros(mask.shape, np.float64)
    if box is not None:
        out[box] = ndimage.distance_transform_edt(mask[box], sampling=zooms)
    return out


def mri_skin_level(data: np.ndarray, method: str = "otsu", scale: float = 0.6) -> float:
    """The skin iso-level of a T1-weighted volume for a surface renderer: ``scale`` x Otsu's
    threshold (``method`` "otsu"; air is dark with a Rician floor, skin and fat bright) or ``scale``
    x the 99th percentile ("percentile")."""
    flat = np.asarray(data, np.float32).reshape(-1)
    sample = flat[:: max(1, flat.size // 2_000_000)]
    if method == "percentile":
        return float(scale * np.percentile(sample, 99))
    if method != "otsu":
        raise ValueError(f"MRI skin threshold method {method!r} is unknown: use 'otsu' or 'percentile'")
    from skimage.filters import threshold_otsu

    return float(scale * threshold_otsu(sample))


def solid_head(volume: Volume, level: float) -> Volume:
    """The MRI volume with its head interior raised above ``level``.

    Why: the skull is dark on T1, so above any skin level the scalp and the brain are separate
    components and a renderer that keeps the largest head component would keep the brain. Filling
    the interior (voxels more than two voxels inside :func:`mri_head_mask`) makes the head solid
    as on CT; the skin crossing itself is untouched."""
    inside = ndimage.binary_erosion(mri_head_mask(volume), iterations=2)
    data = np.where(inside, np.maximum(volume.data, 2.0 * level), volume.data).astype(np.float32)
    return Volume(data, volume.affine, volume.modality)


def solid_head_at_skin(volume: Volume, method: str = "otsu", scale: float = 0.6) -> tuple[Volume, float]:
    """What a renderer needs from a T1 volume: the head made solid (:func:`solid_head`) and the
    skin level it was made solid at (:func:`mri_skin_level`)."""
    level = mri_skin_level(volume.data, method, scale)
    return solid_head(volume, level), level
