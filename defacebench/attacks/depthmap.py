"""Frontal depth maps of a head: the representation the ``refill`` attacker reconstructs in.

A head is placed in its own *head frame*, found from anatomy a defacer leaves (the midpoint of the
head's left/right extent, the back of the head, the top of the head), so two heads of different
people, or a head before and after defacing, line up by a translation (scans are canonical RAS, so
no rotation is fitted). On a coronal grid of ``pixel_mm`` pixels (u: left-right from the midline,
v: downwards from the top of the head), a pixel's *depth* is the distance from the back of the head
to the anterior-most skin on that front-to-back ray (NaN: the ray misses the head). A face is a
bump on this map; a defacer that removes it leaves a hole: air where other people have skin.

Why depth maps: a face's identity for a frontal renderer is exactly this height field, it is small
(~100 x 130 numbers), and it can be averaged, decomposed (PCA) and regressed on in milliseconds, so
the attack fits on 2 cores. Voxels whose value is a defacer's constant fill (``fill_value``; a
uniform block, which real tissue never is) count as air: a zero-filled block on CT is a removal,
not a face.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from defacebench.contracts import Volume


@dataclass(frozen=True)
class MapParams:
    """Grid and skin level of the depth maps. ``ct_level``: the skin level on CT (HU, the surface
    renderer's default); MRI: ``mri_scale`` x Otsu's threshold (the renderer's rule)."""

    pixel_mm: float = 2.0
    half_width_mm: float = 100.0
    height_mm: float = 260.0
    length_mm: float = 280.0
    ct_level: float = -400.0
    mri_scale: float = 0.6
    fill_value: float = 0.0


@dataclass(frozen=True)
class DepthMap:
    """``depth`` (n_v, n_u) mm from the back of the head (NaN: no head on the ray); ``origin`` the
    head frame's world point (x midline, y back, z top); ``level`` the skin level; ``tissue`` the
    median value just under the skin (what a refilled face is made of)."""

    depth: np.ndarray
    origin: tuple[float, float, float]
    level: float
    tissue: float
    pixel_mm: float

    def save(self, path: Path) -> None:
        np.savez(path, depth=self.depth, origin=np.asarray(self.origin), level=self.level, tissue=self.tissue,
                 pixel_mm=self.pixel_mm)

    @classmethod
    def load(cls, path: Path) -> "DepthMap":
        with np.load(path) as z:
            return cls(z["depth"], tuple(float(v) for v in z["origin"]), float(z["level"]), float(z["tissue"]),
                       float(z["pixel_mm"]))


class NoHeadError(ValueError):
    """The volume has no head above the skin level (nothing to map)."""


def skin_level(volume: Volume, params: MapParams) -> float:
    if volume.modality == "mri":
        from defacebench.anatomy.mrimask import mri_skin_level

        return float(mri_skin_level(np.asarray(volume.data), "otsu", params.mri_scale))
    return float(params.ct_level)


def head_origin(volume: Volume, level: float, crown_mm: float = 70.0) -> tuple[float, float, float]:
    """World (x midline, y back, z top) of the head: the largest component above ``level`` on a
    2x-subsampled grid; midline and back from its top ``crown_mm`` (the cranium: landmarks a face
    removal does not move, and a head rest or the shoulders do not reach)."""
    from defacebench.anatomy.brainmask import largest_component

    step = 2
    solid = largest_component(np.asarray(volume.data)[::step, ::step, ::step] > level)
    idx = np.argwhere(solid)
    if not len(idx):
        raise NoHeadError(f"no voxel above the skin level {level:g}")
    world = idx * step @ volume.affine[:3, :3].T + volume.affine[:3, 3]
    top = float(world[:, 2].max())
    crown = world[world[:, 2] > top - crown_mm]
    return (float(crown[:, 0].min() + crown[:, 0].max()) / 2, float(crown[:, 1].min()), top)


def frame_axes(params: MapParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (mm) of u (left-right), v (down from the top), w (forward from the back)."""
    p = params.pixel_mm
    u = np.arange(-params.half_width_mm, params.half_width_mm, p) + p / 2
    v = np.arange(0.0, params.height_mm, p) + p / 2
    w = np.arange(0.0, params.length_mm, p) + p / 2
    return u, v, w


def to_voxels(volume: Volume, origin, u, v, w) -> np.ndarray:
    """Voxel coordinates (3, ...) of the head-frame points (u, v, w) broadcast together."""
    x, y, z = origin[0] + u, origin[1] + w, origin[2] - v
    world = np.stack(np.broadcast_arrays(x, y, z, np.ones_like(x)))
    inv = np.linalg.inv(volume.affine)
    return np.tensordot(inv[:3], world, axes=1)


def depth_map(volume: Volume, params: MapParams = MapParams()) -> DepthMap:
    """The volume's frontal depth map in its head frame (see the module docstring)."""
    from scipy import ndimage

    from defacebench.anatomy.brainmask import largest_component

    level = skin_level(volume, params)
    origin = head_origin(volume, level)
    u, v, w = frame_axes(params)
    coords = to_voxels(volume, origin, u[None, :, None], v[:, None, None], w[None, None, :])
    data = np.asarray(volume.data, np.float32)
    air = float(data.min())
    grid = ndimage.map_coordinates(data, coords, order=1, mode="constant", cval=air)  # (n_v, n_u, n_w)
    filled = ndimage.binary_opening(grid == params.fill_value, iterations=1)
    tissue = largest_component((grid > level) & ~filled)
    hit = tissue.any(axis=2)
    last = tissue.shape[2] - 1 - np.argmax(tissue[:, :, ::-1], axis=2)
    depth = np.where(hit, w[last] + params.pixel_mm / 2, np.nan).astype(np.float32)
    under = np.clip(last - max(1, round(3.0 / params.pixel_mm)), 0, None)
    values = np.take_along_axis(grid, under[:, :, None], axis=2)[:, :, 0][hit]
    values = values[values > level]
    return DepthMap(depth, origin, level, float(np.median(values)) if len(values) else level, params.pixel_mm)
