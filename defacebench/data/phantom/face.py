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
so the surface a renderer finds is smooth at sub-voxel level. Calibrated against a real head
(docs/realism.md): the template's short lower face is stretched (:func:`stretch_volume`) and the
face's relief deepened (:func:`apply_relief`: nose, nasal bridge, eye corners and lid sulci, brow,
lips, chin), so the seed study's camera, 22.5 degrees above the face, finds its faces. The skin's value then ramps from air
to tissue over ``edge_mm`` across that surface, as a CT's point-spread function blurs it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from defacebench.data.phantom import shapes
from defacebench.data.phantom.template import Landmarks


# (x, z, sigma_x, sigma_z, forward mm) in the stretched template frame; calibrated against the real
# head's skin profile and detection curves (docs/realism.md), mirrored pairs for the two sides
RELIEF = (
    (0.0, -62.0, 8.0, 12.0, 10.0),  # nose: projection (narrow, so the bridge stands out of the cheeks)
    (0.0, -40.0, 5.0, 9.0, 6.0),  # nasal bridge between the eyes (bright between two dark sockets)
    (0.0, -24.0, 8.0, 3.5, -2.0),  # nasion, above the eyes
    (12.0, -42.0, 5.0, 12.0, -4.0), (-12.0, -42.0, 5.0, 12.0, -4.0),  # sides of the nose
    # the eyes' recesses at twice the depth first calibrated (format 5): mtcnn's faces hinge on the
    # eyes, and at -4 / -2.5 mm some identities' bumps filled them in (docs/realism.md, "Identities")
    (17.0, -34.0, 5.0, 6.0, -8.0), (-17.0, -34.0, 5.0, 6.0, -8.0),  # inner corners of the eyes
    (32.0, -27.0, 12.0, 3.5, -8.0), (-32.0, -27.0, 12.0, 3.5, -8.0),  # upper lid sulcus under the brow
    (32.0, -47.0, 12.0, 3.5, -5.0), (-32.0, -47.0, 12.0, 3.5, -5.0),  # lower lid
    (24.0, -16.0, 14.0, 6.0, 4.0), (-24.0, -16.0, 14.0, 6.0, 4.0), (0.0, -16.0, 10.0, 7.0, 2.0),  # brow ridge
    (0.0, -92.0, 16.0, 3.5, 3.0), (0.0, -104.0, 16.0, 3.5, 3.0), (0.0, -98.0, 18.0, 1.5, -2.0),  # lips, mouth
    (0.0, -124.0, 18.0, 9.0, 6.0),  # chin
    (0.0, -125.0, 45.0, 30.0, 16.0),  # the lower face forward (chin ahead of the brow as on a real head)
)


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
    tissue; a bone just under the skin lights up in a volume render). ``relief``: the facial relief's
    components (:data:`RELIEF`, :func:`apply_relief`), each depth multiplied by ``relief_gain``;
    ``stretch``: the lower face's stretch (:func:`stretch_z`). The default (sample format 5) is the face
    calibrated against the real head (docs/realism.md); :meth:`template` is the averaged template's
    own face (no relief, no stretch: the default up to format 4)."""

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
    relief: tuple[tuple[float, float, float, float, float], ...] = RELIEF
    relief_front_y: tuple[float, float] = (55.0, 75.0)
    relief_gain: float = 0.6
    stretch: float = 1.4
    stretch_top_z: float = -64.0
    stretch_length_mm: float = 46.0

    @classmethod
    def calibrated(cls, **changes) -> "FaceParams":
        """The face calibrated against the real head (docs/realism.md): lower face stretched 1.4x and
        ``RELIEF`` at ``relief_gain`` 0.6; the default since sample format 5."""
        return replace(cls(), **changes)

    @classmethod
    def template(cls, **changes) -> "FaceParams":
        """The averaged template's own face (no relief, no stretch; the default up to format 4)."""
        return replace(cls(relief=(), relief_gain=1.0, stretch=1.0), **changes)

    def scaled_relief(self) -> tuple[tuple[float, float, float, float, float], ...]:
        """``relief`` with each component's depth multiplied by ``relief_gain``."""
        return tuple((x, z, sx, sz, amp * self.relief_gain) for x, z, sx, sz, amp in self.relief)


def stretch_z(z, p: FaceParams):
    """Where template height ``z`` (mm) goes when the lower face (``stretch_length_mm`` below
    ``stretch_top_z``: nose base, mouth, chin) is stretched by ``stretch``; all below moves down with it.
    Why: the averaged template's lower face is short (nose tip to chin ~40 mm; a real head ~60 mm,
    docs/realism.md), and its mouth and chin hide under the nose when the face is seen from above."""
    z = np.asarray(z, float)
    top, length, f = p.stretch_top_z, p.stretch_length_mm, p.stretch
    return np.where(z >= top, z, np.where(z >= top - length, top + (z - top) * f, z - length * (f - 1.0)))


def stretch_volume(volume: np.ndarray, grid: shapes.Grid, p: FaceParams) -> np.ndarray:
    """``volume`` (template frame) with the lower face stretched (:func:`stretch_z`, linear in z)."""
    if p.stretch == 1.0:
        return volume
    zs = grid.axes()[2]
    top, length, f = p.stretch_top_z, p.stretch_length_mm, p.stretch
    src_z = np.where(zs >= top, zs, np.where(zs >= top - length * f, top + (zs - top) / f, zs + length * (f - 1.0)))
    src = np.clip((src_z - grid.origin[2]) / grid.step, 0, len(zs) - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, len(zs) - 1)
    frac = (src - lo).astype(np.float32)
    return (volume[:, :, lo] * (1 - frac) + volume[:, :, hi] * frac).astype(volume.dtype)


def stretched_landmarks(lm: Landmarks, p: FaceParams) -> Landmarks:
    """``lm`` with the heights below the nose moved as :func:`stretch_z` moves the template."""
    def move(point):
        return (point[0], point[1], float(stretch_z(point[2], p)))

    return replace(lm, chin=move(lm.chin), upper_teeth_front=move(lm.upper_teeth_front),
                   lower_teeth_front=move(lm.lower_teeth_front),
                   template_bottom_z=float(stretch_z(lm.template_bottom_z, p)))


def relief_shift(x: np.ndarray, z: np.ndarray, relief) -> np.ndarray:
    """Anterior shift (mm) of the face at (x, z): the sum of the ``relief`` Gaussians
    ``(x0, z0, sigma_x, sigma_z, amplitude_mm)`` (positive: forward)."""
    out = np.zeros(np.broadcast_shapes(np.shape(x), np.shape(z)), np.float32)
    for x0, z0, sx, sz, amp in relief:
        out += np.float32(amp) * np.exp(-0.5 * (((x - x0) / sx) ** 2 + ((z - z0) / sz) ** 2)).astype(np.float32)
    return out


def apply_relief(sdf: np.ndarray, grid: shapes.Grid, p: FaceParams) -> np.ndarray:
    """The skin's signed distance with the face's relief deepened: each (x, z) column in front of
    ``relief_front_y`` moves forward by :func:`relief_shift` (a smooth backward map along y, so the
    skin, fat and muscle layers move with the surface). Why: the averaged template's face is flatter
    than a person's (its nasion 3 mm deep, nose 9 mm proud of the lip; a real head: about 15 and 14 mm,
    docs/realism.md), and a detector looking down on a flat face finds no eyes, nose or mouth."""
    relief = p.scaled_relief()
    if not relief or p.relief_gain == 0.0:
        return sdf
    xs, ys, zs = grid.axes()
    j0 = max(0, int(np.searchsorted(ys, p.relief_front_y[0])) - 1)
    shift = relief_shift(xs[:, None], zs[None, :], relief)  # (nx, nz)
    lo, hi = p.relief_front_y
    weight = np.clip((ys[j0:] - lo) / max(hi - lo, 1e-6), 0.0, 1.0).astype(np.float32)
    weight = weight * weight * (3 - 2 * weight)
    # backward map: the value at y comes from y - shift * weight(y) (in voxels along axis 1)
    src = np.arange(j0, len(ys), dtype=np.float32)[None, :, None] - shift[:, None, :] * weight[None, :, None] / grid.step
    src = np.clip(src, 0, len(ys) - 1)
    lo_i = np.floor(src).astype(np.int64)
    hi_i = np.minimum(lo_i + 1, len(ys) - 1)
    frac = src - lo_i
    out = sdf.copy()
    out[:, j0:, :] = (np.take_along_axis(sdf, lo_i, axis=1) * (1 - frac)
                      + np.take_along_axis(sdf, hi_i, axis=1) * frac)
    return out


def soft_features(grid: shapes.Grid, lm: Landmarks, p: FaceParams) -> np.ndarray:
    """Mask of the lips, eyelids and nose wings (to be OR-ed into the head mask)."""
    out = np.zeros(grid.shape, bool)
    mx, my, mz = p.mouth
    mz = float(stretch_z(mz, p))
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

