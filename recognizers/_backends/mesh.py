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

from recognizers._backends.head import HeadMask
from recognizers._backends.views import OrthoCamera


@dataclass(frozen=True)
class Mesh:
    """Triangles of the skin surface: ``xyz`` (3, V) world mm of the vertices (float32, one row per
    axis: projections then run as one BLAS call); ``f0``/``f1``/``f2`` the vertex indices of each
    triangle's corners; ``normals`` (3, F) their unnormalised normals (f1 - f0) x (f2 - f0), wound
    so that a triangle faces a camera when its normal has a positive component along the camera's
    viewing direction (then its signed area in (column, row) image coordinates is positive too)."""

    xyz: np.ndarray
    f0: np.ndarray
    f1: np.ndarray
    f2: np.ndarray
    normals: np.ndarray

    @classmethod
    def of(cls, xyz: np.ndarray, f0: np.ndarray, f1: np.ndarray, f2: np.ndarray) -> "Mesh":
        """A mesh of vertices ``xyz`` (3, V) and triangle corners; computes the normals."""
        v = np.ascontiguousarray(xyz, np.float32)
        f0, f1, f2 = (np.ascontiguousarray(f, np.intp) for f in (f0, f1, f2))
        a = [v[i][f1] - v[i][f0] for i in range(3)]
        b = [v[i][f2] - v[i][f0] for i in range(3)]
        normals = np.stack([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])
        return cls(v, f0, f1, f2, normals)

    @property
    def n_triangles(self) -> int:
        return int(self.f0.size)


def _surface_band(head: HeadMask) -> np.ndarray:
    """Coarse voxels within one voxel (26-neighbourhood) of the head component's boundary.

    Separable 3 x 3 x 3 minimum and maximum filters: several times faster than binary erosion and
    dilation with a structuring element on this grid."""
    from scipy import ndimage

    inner = ndimage.minimum_filter(head.mask.view(np.uint8), size=3, mode="constant", cval=0)
    edge = head.mask & (inner == 0)  # the array's border counts as boundary (cval 0)
    return ndimage.maximum_filter(edge.view(np.uint8), size=3, mode="constant", cval=0).view(bool)


def block_mean(data: np.ndarray, factors) -> np.ndarray:
    """Means of ``factors``-sized blocks (float32; a last partial block averages what it holds)."""
    out = np.asarray(data)
    for axis, f in enumerate(factors):
        if f <= 1:
            continue
        n = out.shape[axis]
        whole = (n // f) * f
        head = (slice(None),) * axis
        main = out[head + (slice(0, whole),)]
        parts = [main.reshape(out.shape[:axis] + (n // f, f) + out.shape[axis + 1:]).mean(axis=axis + 1,
                                                                                          dtype=np.float32)]
        if whole < n:
            parts.append(out[head + (slice(whole, n),)].mean(axis=axis, keepdims=True, dtype=np.float32))
        out = np.concatenate(parts, axis=axis) if len(parts) > 1 else parts[0]
    return np.asarray(out, dtype=np.float32)


def mesh_factors(zooms, mesh_mm: float) -> tuple[int, ...]:
    """Voxels merged per mesh cell along each axis: as many as fit in ``mesh_mm`` (at least one)."""
    return tuple(max(1, int(np.floor(mesh_mm / z + 1e-6))) for z in zooms)


def _pad(array: np.ndarray, pad, **how) -> np.ndarray:
    """``np.pad``, skipped when every width is 0 (it would copy the whole grid for nothing)."""
    return np.pad(array, pad, **how) if any(a or b for a, b in pad) else array


def skin_mesh(volume: Volume, head: HeadMask, threshold: float, mesh_mm: float = 0.0) -> Mesh | None:
    """The ``threshold`` isosurface of ``volume`` near the head component's boundary; None if empty.

    Voxels finer than ``mesh_mm`` are first averaged in blocks (:func:`mesh_factors`): a 0.4 mm
    grid makes several triangles per 0.7 mm pixel, which cost time in every view and add nothing
    the shading (smoothed over about a voxel) keeps. The grid is cropped to the band's bounding box
    and, where that box reaches the volume's edge, padded by one cell below the threshold, so a
    head cut by the field of view is closed there (a ray caster sees the cut face too).
    """
    from skimage import measure

    band = _surface_band(head)
    if not band.any():
        return None
    shape, fc = np.array(volume.data.shape), np.array(head.factors)
    fm = np.array(mesh_factors(volume.zooms, mesh_mm))
    present = [np.flatnonzero(band.any(axis=tuple(a for a in range(3) if a != axis))) for axis in range(3)]
    lo = (np.array([p[0] for p in present]) * fc) // fm * fm
    hi = np.minimum(np.array([p[-1] + 1 for p in present]) * fc, shape)
    grid = block_mean(np.asarray(volume.data)[tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))], fm)
    pad = [(int(a == 0), int(b == n)) for a, b, n in zip(lo, hi, shape)]
    low, high = float(grid.min()), float(grid.max())
    if not high > threshold or not (low < threshold or any(a or b for a, b in pad)):
        return None  # no tissue, or all tissue with no edge to close: no surface
    grid = _pad(grid, pad, constant_values=min(low, float(threshold) - 1.0))
    # the mesh cells inside the band: cell j of an axis starts at fine voxel lo + j * fm, in coarse
    # voxel (lo + j * fm) // fc; the indices grow along each axis, so a repeat per axis does it
    cells = band
    for a, n in enumerate(grid.shape - np.array([sum(p) for p in pad])):
        index = np.minimum((lo[a] + np.arange(n) * fm[a]) // fc[a], band.shape[a] - 1)
        counts = np.bincount(index - index[0], minlength=index[-1] - index[0] + 1)
        cells = np.repeat(np.take(cells, np.arange(index[0], index[-1] + 1), axis=a), counts, axis=a)
    cells = _pad(cells, pad, mode="edge")
    verts, faces, _, _ = measure.marching_cubes(grid, level=float(threshold), mask=cells, allow_degenerate=True)
    if faces.size == 0:
        return None
    # grid index -> the volume's voxel index (a cell's mean sits at its block's centre)
    verts = lo + (fm - 1) / 2.0 + (verts - np.array([p[0] for p in pad])) * fm
    world = volume.affine[:3, :3] @ verts.T + volume.affine[:3, 3:4]  # (3, V): see Mesh
    f0, f1, f2 = faces[:, 0], faces[:, 1], faces[:, 2]
    if np.linalg.det(volume.affine[:3, :3]) < 0:  # a mirrored grid reverses the winding
        f1, f2 = f2, f1
    return Mesh.of(world, f0, f1, f2)


def depth_map(mesh: Mesh, cam: OrthoCamera) -> np.ndarray:
    """Nearest-surface depth (mm from the near plane) per pixel centre; +inf where no triangle is.

    Triangles are about a voxel large, so most cover at most one pixel centre: each triangle facing
    the camera is tested against the pixel centres of its bounding box (edge functions, closed
    edges so neighbours leave no crack) and the nearest depth per pixel wins.
    """
    n = cam.size_px
    x, y, z = cam.project(mesh.xyz.T)
    front = np.flatnonzero(cam.direction.astype(np.float32) @ mesh.normals > 0)
    f0, f1, f2 = mesh.f0[front], mesh.f1[front], mesh.f2[front]
    xa, xb, xc, ya, yb, yc = x[f0], x[f1], x[f2], y[f0], y[f1], y[f2]
    x0, x1 = np.ceil(np.minimum(np.minimum(xa, xb), xc)), np.floor(np.maximum(np.maximum(xa, xb), xc))
    y0, y1 = np.ceil(np.minimum(np.minimum(ya, yb), yc)), np.floor(np.maximum(np.maximum(ya, yb), yc))
    keep = np.flatnonzero((x1 >= x0) & (y1 >= y0) & (x1 >= 0) & (y1 >= 0) & (x0 <= n - 1) & (y0 <= n - 1))
    x0, x1 = np.maximum(x0[keep], 0).astype(np.intp), np.minimum(x1[keep], n - 1).astype(np.intp)
    y0, y1 = np.maximum(y0[keep], 0).astype(np.intp), np.minimum(y1[keep], n - 1).astype(np.intp)
    # per kept triangle: its corners (pixel coordinates) and depths, gathered once
    corners = [v[keep] for v in (xa, xb, xc, ya, yb, yc)] + [z[f[keep]] for f in (f0, f1, f2)]
    nx = x1 - x0 + 1
    count = nx * (y1 - y0 + 1)
    zbuf = np.full(n * n, np.inf, dtype=np.float32)
    # blocks of triangles whose candidates (and the ~20 temporaries per candidate) fit in the CPU
    # caches: the arithmetic per candidate is the same as in one pass, ~1.8x faster in numpy
    ends = np.cumsum(count)
    cuts = np.searchsorted(ends, np.arange(_BLOCK, ends[-1] if ends.size else 0, _BLOCK), side="right")
    for lo, hi in zip([0, *cuts], [*cuts, keep.size]):
        if hi > lo:
            _draw(zbuf, n, [c[lo:hi] for c in corners], x0[lo:hi], y0[lo:hi], nx[lo:hi], count[lo:hi])
    return zbuf.reshape(n, n).astype(float)


_BLOCK = 8192  # candidates (triangle, pixel centre) per block of depth_map (4k-16k measured best)


def _draw(zbuf: np.ndarray, n: int, corners, x0, y0, nx, count) -> None:
    """z-buffer (flat, n x n) the pixel centres inside a block of triangles: ``corners`` are their
    corner columns, rows (float32 pixel coordinates) and depths, ``x0``/``y0``/``nx``/``count`` their
    boxes' first column and row, width and pixel count (at least 1)."""
    xa, xb, xc, ya, yb, yc, za, zb, zc = corners
    # one candidate per (triangle, pixel centre in its box)
    tri = np.repeat(np.arange(count.size), count)
    k = np.arange(tri.size) - (np.cumsum(count) - count)[tri]
    row, col = np.divmod(k, nx[tri])  # one pass for both (% and // are two integer divisions each)
    px, py = x0[tri] + col, y0[tri] + row
    cx, cy = px.astype(np.float32), py.astype(np.float32)
    xa, xb, xc, ya, yb, yc = (v[tri] - c for v, c in ((xa, cx), (xb, cx), (xc, cx), (ya, cy), (yb, cy), (yc, cy)))
    # corners relative to the pixel centre (float32 throughout: mixing in the integer pixel
    # indices would promote everything to float64 and send minimum.at down its slow casting path)
    e0, e1, e2 = xb * yc - yb * xc, xc * ya - yc * xa, xa * yb - ya * xb
    area = e0 + e1 + e2
    tol = -1e-6 * np.abs(area)
    inside = np.flatnonzero((area > 0) & (e0 >= tol) & (e1 >= tol) & (e2 >= tol))
    t = tri[inside]
    depth = (e0[inside] * za[t] + e1[inside] * zb[t] + e2[inside] * zc[t]) / area[inside]
    np.minimum.at(zbuf, py[inside] * n + px[inside], depth)
