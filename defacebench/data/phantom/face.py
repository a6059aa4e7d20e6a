"""The face's soft tissue where the averaged template is blurred, and a smooth skin surface.

pydeface's template is an average of registered heads: its nose survives, but its lips are one
smooth bump with no mouth, its closed eyes a shallow recess, and its skin a binary mask whose
1.5 mm voxel steps show as terraces in every render. A face detector trained on photographs keys
on eyes, nose and mouth, and a face recognizer on where they sit; so the phantom adds:

- lips: an upper and a lower roll along an arch in front of the teeth, meeting in a crease (the
  mouth's line in a closed-mouth CT);
- eyelids: the closed lids bulging over each eyeball;
- alae: the wings of the nose beside its base;

and builds the skin from a smoothed signed distance to the head mask (:func:`smooth_distance`),
so the surface a renderer finds is smooth at sub-voxel level. The skin's value then ramps from air
to tissue over ``edge_mm`` across that surface, as a CT's point-spread function blurs it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from defacebench.data.phantom import shapes
from defacebench.data.phantom.template import Landmarks


@dataclass(frozen=True)
class FaceParams:
    """Geometry of the added soft tissue (template frame mm) and of the skin surface.

    ``mouth``: centre of the mouth's line (x, y of the lips' front, z); ``lip_*``: radius of each
    lip roll, half width and depth of their arch, vertical distance of the two rolls' centres;
    ``lid_*``: centre of each lid's ellipsoid relative to its eye and its radii; ``ala_*``: the
    nose wings relative to the nose tip (x mirrored) and their radii; ``surface_sigma_mm``:
    Gaussian smoothing of the signed distance (removes the template's voxel terraces);
    ``edge_mm``: width of the skin's air-to-tissue ramp; ``bone_depth_mm``: the facial skeleton
    lies at least this deep under the skin (over the orbits and cheeks a face has 5-10 mm of soft
    tissue; a bone just under the skin lights up in a volume render)."""

    mouth: tuple[float, float, float] = (0.0, 103.5, -84.0)
    lip_radius_mm: float = 5.5
    lip_half_width_mm: float = 23.0
    lip_arch_depth_mm: float = 13.0
    lip_gap_mm: float = 9.5
    lid_offset: tuple[float, float, float] = (0.0, 2.0, 0.0)
    lid_radii: tuple[float, float, float] = (12.0, 11.0, 8.0)
    ala_offset: tuple[float, float, float] = (13.0, -11.0, -7.0)
    ala_radii: tuple[float, float, float] = (7.0, 8.0, 6.0)
    surface_sigma_mm: float = 2.0
    edge_mm: float = 1.5
    bone_depth_mm: float = 6.0


def soft_features(grid: shapes.Grid, lm: Landmarks, p: FaceParams) -> np.ndarray:
    """Mask of the lips, eyelids and nose wings (to be OR-ed into the head mask)."""
    out = np.zeros(grid.shape, bool)
    mx, my, mz = p.mouth
    half = 0.5 * p.lip_gap_mm
    for dz in (half, -half):  # the upper and the lower lip: tubes along the arch, centres behind the front
        front = (mx, my - p.lip_radius_mm, mz + dz)
        shapes.tube(grid, shapes.arch(front, p.lip_half_width_mm, p.lip_arch_depth_mm, 15), p.lip_radius_mm,
                    out=out)
    for eye in (np.asarray(lm.eye_right), np.asarray(lm.eye_left)):
        shapes.ellipsoid(grid, eye + np.asarray(p.lid_offset), p.lid_radii, out=out)
    tip = np.asarray(lm.nose_tip)
    for side in (1.0, -1.0):
        offset = np.asarray(p.ala_offset) * (side, 1.0, 1.0)
        shapes.ellipsoid(grid, tip + offset, p.ala_radii, out=out)
    return out


def smooth_distance(mask: np.ndarray, step: float, sigma_mm: float) -> np.ndarray:
    """Signed distance (mm, positive inside) to the surface of ``mask``, Gaussian-smoothed.

    The distance of a binary mask is a staircase at the voxel scale near the surface; smoothing it
    by about a voxel leaves a surface (its zero level) that follows the mask's shape without the
    steps. Computed on ``mask``'s bounding box plus a margin (the rest is far outside)."""
    reach = int(np.ceil(4 * sigma_mm / step)) + 3
    box = []
    for axis in range(3):
        present = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        box.append(slice(max(0, present[0] - reach), min(mask.shape[axis], present[-1] + reach + 1)))
    sub = mask[tuple(box)]
    inside = ndimage.distance_transform_edt(sub) - 0.5
    outside = ndimage.distance_transform_edt(~sub) - 0.5
    sdf = np.where(sub, inside, -outside).astype(np.float32) * np.float32(step)
    if sigma_mm > 0:
        sdf = ndimage.gaussian_filter(sdf, sigma_mm / step)
    full = np.full(mask.shape, -float(reach) * step, np.float32)
    full[tuple(box)] = sdf
    return full


def skin_ramp(sdf: np.ndarray, edge_mm: float) -> np.ndarray:
    """Tissue fraction (0 air .. 1 tissue) across the skin: linear over ``edge_mm`` centred on it."""
    return np.clip(0.5 + sdf / max(edge_mm, 1e-6), 0.0, 1.0).astype(np.float32)

