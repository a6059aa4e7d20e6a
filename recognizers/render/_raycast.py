"""First-hit ray casting of the skin (the `surface` renderer's ``method = "raycast"``, its v1 path).

Two stages per view, no per-volume precomputation beyond the head component:

1. coarse: the head's coarse mask is resampled into the camera frame at 1/``coarse_factor`` of
   the image resolution and the first hit along depth is taken (``argmax``).
2. fine: for every pixel near a coarse hit, the full-resolution volume is sampled at
   ``fine_samples`` points in a short window around the coarse depth (``map_coordinates``,
   linear); the first sample above the threshold inside the head component is found and refined
   to sub-sample accuracy by linear interpolation of the crossing.

Kept as the reference the mesh path is checked against, and for the many-view benchmark.
"""

from __future__ import annotations

import numpy as np

from defacebench.contracts import Volume

from recognizers._backends.head import HeadMask
from recognizers._backends.views import OrthoCamera


def _coarse_depth(cam: OrthoCamera, head: HeadMask, params) -> np.ndarray:
    """First-hit depth (mm from the near plane) of the coarse head mask on a coarse pixel grid."""
    from scipy import ndimage

    f, s = params.coarse_factor, cam.mm_per_px
    nc = -(-cam.size_px // f)
    dt = min(params.coarse_mm, float(np.linalg.norm(head.affine[:3, :3], axis=0).min()))
    nd = int(np.ceil(2 * cam.radius / dt)) + 1
    # output index (a, b, c) -> fine pixel (f a + (f-1)/2, f b + (f-1)/2), depth c dt -> voxel
    start = cam.origin + (f - 1) / 2.0 * s * (cam.right - cam.up)
    to_world = np.column_stack([-f * s * cam.up, f * s * cam.right, dt * cam.direction])
    inv = np.linalg.inv(head.affine)
    sampled = ndimage.affine_transform(head.mask.astype(np.uint8), inv[:3, :3] @ to_world,
                                       offset=inv[:3, :3] @ start + inv[:3, 3],
                                       output_shape=(nc, nc, nd), order=0, cval=0)
    depth = np.argmax(sampled, axis=2).astype(float) * dt
    depth[~sampled.any(axis=2)] = np.inf
    return depth


def _fine_window(coarse: np.ndarray, size_px: int, params) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel depth window [lo, hi] (full resolution) bracketing the coarse first hit."""
    from scipy import ndimage

    lo = ndimage.minimum_filter(coarse, size=3, mode="constant", cval=np.inf)
    hi = ndimage.maximum_filter(np.where(np.isfinite(coarse), coarse, -np.inf), size=3,
                                mode="constant", cval=-np.inf)
    f = params.coarse_factor
    lo = np.repeat(np.repeat(lo, f, axis=0), f, axis=1)[:size_px, :size_px]
    hi = np.repeat(np.repeat(hi, f, axis=0), f, axis=1)[:size_px, :size_px]
    margin = 1.5 * params.coarse_mm
    return lo - margin, hi + margin


def head_reach(head: HeadMask) -> np.ndarray:
    """The coarse voxels where the skin of the head component may lie: the component grown by one
    coarse voxel (26-neighbourhood), the same cells the skin mesh is made in
    (recognizers._backends.mesh).

    Why grown: linear interpolation crosses the threshold up to half a voxel before the nearest
    voxel is above it, so a sample on the skin can round to a coarse voxel outside the component.
    Gating on the component itself dropped those samples and pushed the hit one sample deeper:
    rays grazing the skin (sides of the head, under the nose) came out 1-3 mm too deep."""
    from scipy import ndimage

    return ndimage.maximum_filter(head.mask.view(np.uint8), size=3, mode="constant", cval=0).view(bool)


def _in_head(points: np.ndarray, head: HeadMask, reach: np.ndarray, volume: Volume) -> np.ndarray:
    """Whether volume voxel coordinates (3, N) fall in ``reach`` (nearest coarse voxel of ``head``)."""
    minv = np.linalg.inv(head.affine) @ volume.affine
    idx = np.rint(minv[:3, :3] @ points + minv[:3, 3:4]).astype(np.intp)
    inside = np.all((idx >= 0) & (idx < np.array(reach.shape)[:, None]), axis=0)
    ok = np.zeros(points.shape[1], dtype=bool)
    ok[inside] = reach[tuple(idx[:, inside])]
    return ok


def depth_map(cam: OrthoCamera, volume: Volume, head: HeadMask, threshold: float, params,
              reach: np.ndarray | None = None) -> np.ndarray:
    """Sub-sample first-hit depth (mm) per pixel; +inf where the ray misses the head. ``reach``:
    :func:`head_reach` of ``head``, made once per volume by a caller rendering several cameras."""
    from scipy import ndimage

    lo, hi = _fine_window(_coarse_depth(cam, head, params), cam.size_px, params)
    rows, cols = np.nonzero(np.isfinite(lo))
    depth = np.full((cam.size_px, cam.size_px), np.inf)
    if rows.size == 0:
        return depth
    lo_s, hi_s = lo[rows, cols], hi[rows, cols]
    k = params.fine_samples
    step = np.maximum(params.fine_step_mm, (hi_s - lo_s) / (k - 1))
    t = lo_s[:, None] + step[:, None] * np.arange(k)[None, :]
    inv = np.linalg.inv(volume.affine)
    base = cam.world(rows.astype(float), cols.astype(float)) @ inv[:3, :3].T + inv[:3, 3]
    vdir = inv[:3, :3] @ cam.direction
    flat = (base.T[:, :, None] + vdir[:, None, None] * t[None, :, :]).reshape(3, -1)
    values = ndimage.map_coordinates(volume.data, flat, order=1, cval=-1000.0,
                                     prefilter=False).reshape(t.shape)
    # a sample counts only within reach of the head's component, so a holder near the skin stays
    # out; looked up only for the samples above the threshold
    above = values > threshold
    cand = np.flatnonzero(above)
    reach = head_reach(head) if reach is None else reach
    above.ravel()[cand[~_in_head(flat[:, cand], head, reach, volume)]] = False
    hit = above.any(axis=1)
    first = np.argmax(above, axis=1)
    prev = np.maximum(first - 1, 0)
    i = np.arange(t.shape[0])
    v0, v1 = values[i, prev], values[i, first]
    frac = np.where((first > 0) & (v1 != v0), (threshold - v0) / np.where(v1 != v0, v1 - v0, 1), 0)
    t_hit = t[i, prev] + np.clip(frac, 0, 1) * (t[i, first] - t[i, prev])
    t_hit[first == 0] = t[i, 0][first == 0]
    depth[rows[hit], cols[hit]] = t_hit[hit]
    return depth
