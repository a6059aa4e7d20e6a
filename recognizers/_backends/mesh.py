"""Skin mesh once per volume, depth map per view: what makes many views of one scan cheap.

:func:`skin_mesh` runs marching cubes (scikit-image) on the full-resolution volume, restricted to
the cells near the head component's boundary (the coarse mask's surface, dilated by one coarse
voxel): the isosurface is the same as everywhere else in those cells, objects away from the head
never get triangles, and the cells away from the surface are skipped. :func:`depth_map` rasterises
the mesh for one orthographic camera with a z-buffer in numpy; a view then costs a projection of
the vertices and one pass over the triangles that face the camera.

Only triangles facing the camera are drawn, which is what a first-hit ray caster sees too: a ray
"hits" where it enters the tissue, never where it leaves it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from defacebench.contracts import Volume

from recognizers._backends.head import HeadMask, block_repeat
from recognizers._backends.views import OrthoCamera


@dataclass(frozen=True)
class Mesh:
    """Triangles of the skin surface: ``vertices`` (V, 3) world mm; ``f0``/``f1``/``f2`` the vertex
    indices of each triangle's corners, wound so that a triangle facing a camera has a positive
    signed area in (column, row) image coordinates."""

    vertices: np.ndarray
    f0: np.ndarray
    f1: np.ndarray
    f2: np.ndarray

    @property
    def n_triangles(self) -> int:
        return int(self.f0.size)


def _surface_band(head: HeadMask) -> np.ndarray:
    """Coarse voxels within one voxel (26-neighbourhood) of the head component's boundary."""
    from scipy import ndimage

    edge = head.mask & ~ndimage.binary_erosion(head.mask)  # the array border counts as boundary
    return ndimage.binary_dilation(edge, structure=np.ones((3, 3, 3), bool))


def skin_mesh(volume: Volume, head: HeadMask, threshold: float) -> Mesh | None:
    """The ``threshold`` isosurface of ``volume`` near the head component's boundary; None if empty.

    The volume is cropped to the band's bounding box and, where that box reaches the volume's edge,
    padded by one voxel below the threshold, so a head cut by the field of view is closed there (a
    ray caster sees the cut face too).
    """
    from skimage import measure

    band = _surface_band(head)
    if not band.any():
        return None
    shape = np.array(volume.data.shape)
    f = np.array(head.factors)
    present = [np.flatnonzero(band.any(axis=tuple(a for a in range(3) if a != axis))) for axis in range(3)]
    lo_c = np.array([p[0] for p in present])
    hi_c = np.array([p[-1] + 1 for p in present])
    lo, hi = lo_c * f, np.minimum(hi_c * f, shape)
    pad = [(int(a == 0), int(b == n)) for a, b, n in zip(lo, hi, shape)]
    data = np.asarray(volume.data)[tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))]
    low, high = float(data.min()), float(data.max())
    if not high > threshold:
        return None
    if not (low < threshold or any(a or b for a, b in pad)):  # all tissue, no edge: no surface
        return None
    data = np.pad(data.astype(np.float32, copy=False), pad, constant_values=min(low, float(threshold) - 1.0))
    coarse = band[tuple(slice(int(a), int(b)) for a, b in zip(lo_c, hi_c))]
    cells = np.pad(block_repeat(coarse, head.factors, tuple(hi - lo)), pad, mode="edge")
    verts, faces, _, _ = measure.marching_cubes(data, level=float(threshold), mask=cells,
                                                allow_degenerate=True)
    if faces.size == 0:
        return None
    verts = verts + (lo - np.array([p[0] for p in pad]))  # back to the volume's voxel indices
    world = verts @ volume.affine[:3, :3].T + volume.affine[:3, 3]
    f0, f1, f2 = (np.ascontiguousarray(faces[:, i]) for i in range(3))
    if np.linalg.det(volume.affine[:3, :3]) < 0:  # a mirrored grid reverses the winding
        f1, f2 = f2, f1
    return Mesh(world, f0, f1, f2)


def depth_map(mesh: Mesh, cam: OrthoCamera) -> np.ndarray:
    """Nearest-surface depth (mm from the near plane) per pixel centre; +inf where no triangle is.

    Triangles are about a voxel large, so most cover at most one pixel centre: each triangle facing
    the camera is tested against the pixel centres of its bounding box (edge functions, closed
    edges so neighbours leave no crack) and the nearest depth per pixel wins.
    """
    n = cam.size_px
    x, y, z = cam.project(mesh.vertices)
    f0, f1, f2 = mesh.f0, mesh.f1, mesh.f2
    xa, xb, xc, ya, yb, yc = x[f0], x[f1], x[f2], y[f0], y[f1], y[f2]
    area = (xb - xa) * (yc - ya) - (yb - ya) * (xc - xa)
    x0, x1 = np.ceil(np.minimum(np.minimum(xa, xb), xc)), np.floor(np.maximum(np.maximum(xa, xb), xc))
    y0, y1 = np.ceil(np.minimum(np.minimum(ya, yb), yc)), np.floor(np.maximum(np.maximum(ya, yb), yc))
    keep = np.flatnonzero((area > 0) & (x1 >= x0) & (y1 >= y0)
                          & (x1 >= 0) & (y1 >= 0) & (x0 <= n - 1) & (y0 <= n - 1))
    x0, x1 = np.maximum(x0[keep], 0).astype(np.intp), np.minimum(x1[keep], n - 1).astype(np.intp)
    y0, y1 = np.maximum(y0[keep], 0).astype(np.intp), np.minimum(y1[keep], n - 1).astype(np.intp)
    # one candidate per (triangle, pixel centre in its box)
    nx = x1 - x0 + 1
    count = nx * (y1 - y0 + 1)
    tri = np.repeat(np.arange(keep.size), count)
    k = np.arange(tri.size) - (np.cumsum(count) - count)[tri]
    px, py = x0[tri] + k % nx[tri], y0[tri] + k // nx[tri]
    g = keep[tri]
    xa, xb, xc, ya, yb, yc, ar = (v[g] for v in (xa, xb, xc, ya, yb, yc, area))
    w0 = ((xb - px) * (yc - py) - (yb - py) * (xc - px)) / ar
    w1 = ((xc - px) * (ya - py) - (yc - py) * (xa - px)) / ar
    w2 = 1.0 - w0 - w1
    tol = -1e-9
    inside = np.flatnonzero((w0 >= tol) & (w1 >= tol) & (w2 >= tol))
    g = g[inside]
    depth = w0[inside] * z[f0[g]] + w1[inside] * z[f1[g]] + w2[inside] * z[f2[g]]
    zbuf = np.full(n * n, np.inf)
    np.minimum.at(zbuf, py[inside] * n + px[inside], depth)
    return zbuf.reshape(n, n)
