"""Distance-based shape primitives on a regular, axis-aligned voxel grid (millimetres).

Every primitive returns a boolean mask (or a distance) computed only inside the bounding box of
the shape, so a small structure on a large grid costs only its own box.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Grid:
    """An axis-aligned grid: ``shape`` voxels of ``step`` mm, voxel (0, 0, 0) centred at ``origin`` mm."""

    shape: tuple[int, int, int]
    step: float
    origin: tuple[float, float, float]

    @property
    def affine(self) -> np.ndarray:
        """Voxel-to-mm affine (diagonal)."""
        a = np.diag([self.step, self.step, self.step, 1.0])
        a[:3, 3] = self.origin
        return a

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Coordinates (mm) of the voxel centres along each axis."""
        return tuple(o + self.step * np.arange(n) for o, n in zip(self.origin, self.shape))  # type: ignore[return-value]

    def box(self, lo: np.ndarray, hi: np.ndarray) -> tuple[slice, slice, slice]:
        """Index slices of the voxels whose centres may lie in the mm box [lo, hi] (clipped)."""
        out = []
        for a in range(3):
            i0 = int(np.floor((lo[a] - self.origin[a]) / self.step))
            i1 = int(np.ceil((hi[a] - self.origin[a]) / self.step)) + 1
            out.append(slice(max(0, i0), min(self.shape[a], max(0, i1))))
        return tuple(out)  # type: ignore[return-value]

    def coords(self, box: tuple[slice, slice, slice]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Open-mesh mm coordinates (x, y, z broadcastable) of the voxels of ``box``."""
        xs, ys, zs = (ax[s] for ax, s in zip(self.axes(), box))
        return xs[:, None, None], ys[None, :, None], zs[None, None, :]


def ellipsoid(grid: Grid, centre, radii, out: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask of the axis-aligned ellipsoid (OR-ed into ``out`` when given)."""
    centre, radii = np.asarray(centre, float), np.asarray(radii, float)
    out = np.zeros(grid.shape, bool) if out is None else out
    box = grid.box(centre - radii, centre + radii)
    x, y, z = grid.coords(box)
    inside = ((x - centre[0]) / radii[0]) ** 2 + ((y - centre[1]) / radii[1]) ** 2 + ((z - centre[2]) / radii[2]) ** 2 <= 1
    out[box] |= inside
    return out


def _segment_distance(px, py, pz, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance (mm) from grid points to the segment a-b."""
    ab = b - a
    length2 = max(float(ab @ ab), 1e-9)
    t = np.clip(((px - a[0]) * ab[0] + (py - a[1]) * ab[1] + (pz - a[2]) * ab[2]) / length2, 0.0, 1.0)
    return np.sqrt((px - a[0] - t * ab[0]) ** 2 + (py - a[1] - t * ab[1]) ** 2 + (pz - a[2] - t * ab[2]) ** 2)


def tube(grid: Grid, points, radius: float, out: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask of the voxels within ``radius`` mm of the polyline through ``points`` (n, 3)."""
    pts = np.asarray(points, float)
    out = np.zeros(grid.shape, bool) if out is None else out
    for a, b in zip(pts[:-1], pts[1:]):
        box = grid.box(np.minimum(a, b) - radius, np.maximum(a, b) + radius)
        x, y, z = grid.coords(box)
        out[box] |= _segment_distance(x, y, z, a, b) <= radius
    return out


def arch(centre_front, half_width: float, depth: float, n: int) -> np.ndarray:
    """``n`` points (mm) on a parabolic dental/mandibular arch in an axial plane.

    The arch's front is ``centre_front`` (x, y, z); its two ends lie ``half_width`` mm to either
    side and ``depth`` mm posterior of the front.
    """
    c = np.asarray(centre_front, float)
    s = np.linspace(-1.0, 1.0, n)
    return np.stack([c[0] + half_width * s, c[1] - depth * s**2, np.full(n, c[2])], axis=1)
