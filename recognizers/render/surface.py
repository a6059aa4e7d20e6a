"""`surface` renderer: a shaded skin isosurface found by first-hit ray casting through the HU volume.

Why this renderer: a face recognizer needs a face-like picture, and the skin surface is what a
photograph shows. The render is direction-aware (it uses the affine: the face is at +y anterior
in RAS, "frontal" looks from anterior to posterior with +z superior up), has a fixed physical
scale (``mm_per_px``) so the same head is the same size in every scan, is framed on the centre of
the head's bounding box, and keeps only the head's largest connected component so a head holder,
pillow or table never enters the image.

Projection is orthographic. Ray casting is two-stage so one 512 px view of a 512 x 512 x 300
volume costs well under a second on one core:

1. coarse: the volume is thresholded and block-OR pooled to ``coarse_mm`` voxels (conservative: a
   coarse voxel is skin when any of its voxels is), and the head's component is kept (largest component
   after eroding thin contacts away, regrown inside the mask). That mask
   is resampled into the camera frame at 1/``coarse_factor`` of the image resolution and the first
   hit along depth is taken (``argmax``).
2. fine: for every pixel near a coarse hit, the full-resolution HU volume is sampled at
   ``fine_samples`` points in a short window around the coarse depth (``map_coordinates``, linear),
   the first sample above the threshold is found and refined to sub-sample accuracy by linear
   interpolation of the crossing.

Normals come from the gradient of the depth map, smoothed first by a Gaussian scaled to the voxel
size (the stair-step texture of large voxels changes with pose and would swamp identity); shading
is Lambert with a small ambient term and a fixed light direction given in the camera frame (so
every view is lit the same way).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from defacebench.contracts import Availability, View, Volume


@dataclass(frozen=True)
class SurfaceParams:
    """Render settings (all recorded in results and cache keys).

    ``views``: (yaw, pitch) in degrees; yaw turns the camera about the superior axis toward the
    subject's left for positive values, pitch raises the camera above the face for positive values.
    ``mm_per_px``: fixed physical scale (0.7 mm: a head fills about half of a 512 px frame).
    ``light``: direction toward the light in the camera frame (image right, image up, toward the
    camera), so every view is lit alike; ``ambient``: light added everywhere; ``color``: RGB albedo.
    ``coarse_mm`` / ``coarse_factor``: grid of the coarse stage (volume mm, image pixels).
    ``detach_mm`` / ``regrow_mm`` / ``regrow_fraction``: how the head is separated from objects
    touching it (see :func:`_largest_detached`). ``fine_samples`` / ``fine_step_mm``: samples per
    pixel of the fine stage. ``depth_smoothing_mm`` / ``voxel_smoothing``: depth-map smoothing
    before shading (see :func:`smoothing_sigma_mm`). ``threshold_hu``: the skin level on CT;
    ``mri_threshold`` / ``mri_threshold_scale``: on MRI (no HU) the skin level is
    ``mri_threshold_scale`` x Otsu's threshold of the volume ("otsu"), or that scale x the 99th
    percentile ("percentile"); see :func:`defacebench.anatomy.mrimask.mri_skin_level`.
    """

    threshold_hu: float = -400.0
    mri_threshold: str = "otsu"
    mri_threshold_scale: float = 0.6
    views: tuple[tuple[int, int], ...] = ((0, 0),)
    size_px: int = 512
    mm_per_px: float = 0.7
    light: tuple[float, float, float] = (-0.3, 0.35, 1.0)
    ambient: float = 0.15
    color: tuple[float, float, float] = (0.92, 0.78, 0.68)
    coarse_mm: float = 2.0
    coarse_factor: int = 4
    detach_mm: float = 12.0
    regrow_mm: float = 30.0
    regrow_fraction: float = 0.95
    fine_samples: int = 24
    fine_step_mm: float = 0.35
    depth_smoothing_mm: float = 0.5
    voxel_smoothing: float = 1.0


def view_id(yaw: int, pitch: int) -> str:
    """The view id of a (yaw, pitch) view: "frontal" for (0, 0), else "yaw+20_pitch-10"."""
    if int(yaw) == 0 and int(pitch) == 0:
        return "frontal"
    return f"yaw{int(yaw):+d}_pitch{int(pitch):+d}"


def camera_axes(yaw: float, pitch: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World (RAS) unit vectors (direction into the scene, image right, image up) for a view.

    Frontal looks from anterior to posterior (direction -y), up is superior (+z), so image right is
    the subject's left (-x), as in a photograph of a person facing the camera.
    """
    y, p = np.deg2rad(yaw), np.deg2rad(pitch)
    # camera position relative to the head: anterior (+y), turned by yaw about +z toward the
    # subject's left (-x) for positive yaw, raised above the face for positive pitch
    pos = np.array([-np.sin(y) * np.cos(p), np.cos(y) * np.cos(p), np.sin(p)])
    direction = -pos / np.linalg.norm(pos)
    world_up = np.array([0.0, 0.0, 1.0])
    right = np.cross(direction, world_up)
    if np.linalg.norm(right) < 1e-9:  # looking straight up or down: keep the frontal image right
        right = np.array([-np.cos(y), -np.sin(y), 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, direction)
    return direction, right, up


def _block_any(mask: np.ndarray, factors: tuple[int, int, int]) -> np.ndarray:
    """Block-wise logical OR of a boolean volume by integer ``factors`` per axis (last block partial).

    ``reduceat`` along one axis at a time is ~5x faster than a padded 6-D reshape on 512^2 x 300.
    """
    out = mask
    for axis, f in enumerate(factors):
        if f > 1:
            out = np.logical_or.reduceat(out, np.arange(0, out.shape[axis], f), axis=axis)
    return out


def _largest_component(mask: np.ndarray) -> np.ndarray | None:
    """The largest 6-connected component of a boolean volume (None when it is empty)."""
    from scipy import ndimage

    labels, n = ndimage.label(mask)
    if n == 0:
        return None
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def _largest_detached(coarse: np.ndarray, spacing: np.ndarray, params: SurfaceParams) -> np.ndarray | None:
    """The head: the largest component once contacts are cut, plus the small parts near it.

    A head holder or table touching the scalp joins the head's component. Keeping only voxels
    deeper than ``detach_mm`` inside the mask (Euclidean distance transform) removes anything
    thinner than 2 x ``detach_mm`` and cuts such contacts; the largest remaining component, grown
    back by ``detach_mm`` inside the mask, is the opened head. What the opening removed splits into
    components: nose, ears and other thin parts of the head lie (almost) entirely within
    ``regrow_mm`` of the opened head and are kept; a holder, pillow or table extends far beyond
    it and is dropped whole.
    """
    from scipy import ndimage

    depth = ndimage.distance_transform_edt(coarse, sampling=spacing)
    core = _largest_component(depth > params.detach_mm)
    if core is None:  # everything thinner than the cut: fall back to the plain component
        return _largest_component(coarse)
    from_core = ndimage.distance_transform_edt(~core, sampling=spacing)
    head = coarse & (from_core <= params.detach_mm)
    labels, n = ndimage.label(coarse & ~head)
    if n == 0:
        return head
    near = from_core <= params.detach_mm + params.regrow_mm
    total = np.bincount(labels.ravel(), minlength=n + 1)
    close = np.bincount(labels[near], minlength=n + 1)
    keep = np.flatnonzero(close >= params.regrow_fraction * np.maximum(total, 1))
    keep = keep[keep > 0]
    return head | np.isin(labels, keep) if keep.size else head


def head_component(volume: Volume, params: SurfaceParams) -> tuple[np.ndarray, np.ndarray] | None:
    """Coarse mask of the head's largest connected component and its voxel-to-world affine.

    Returns None when nothing in the volume is above the threshold (e.g. the head was removed).
    """
    zooms = np.asarray(volume.zooms)
    factors = tuple(int(max(1, round(params.coarse_mm / z))) for z in zooms)
    coarse = _block_any(np.asarray(volume.data) > params.threshold_hu, factors)
    # the component analysis runs on a grid twice as coarse (8x fewer voxels, it dominates the
    # cost); the result is intersected with the coarse mask, so the head keeps coarse_mm detail
    spacing = zooms * np.asarray(factors)
    head = _largest_detached(_block_any(coarse, (2, 2, 2)), 2 * spacing, params)
    if head is None:
        return None
    up = np.repeat(np.repeat(np.repeat(head, 2, axis=0), 2, axis=1), 2, axis=2)
    mask = coarse & up[: coarse.shape[0], : coarse.shape[1], : coarse.shape[2]]
    scale = np.diag([*factors, 1]).astype(float)
    scale[:3, 3] = (np.asarray(factors) - 1) / 2.0  # block centre in fine voxel indices
    return mask, volume.affine @ scale


def _world_bbox(mask: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre (RAS mm) and half-diagonal radius (mm) of the head's bounding box.

    The box is the voxel-index extent of the mask mapped to world coordinates (its 8 corners), which
    is exact for axis-aligned affines and slightly generous for oblique ones; cheap either way.
    """
    extent = []
    for axis in range(3):
        present = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        extent.append((present[0], present[-1]))
    corners = np.array([[i, j, k] for i in extent[0] for j in extent[1] for k in extent[2]], dtype=float)
    world = corners @ affine[:3, :3].T + affine[:3, 3]
    lo, hi = world.min(axis=0), world.max(axis=0)
    step = float(np.linalg.norm(affine[:3, :3], axis=0).max())
    return (lo + hi) / 2.0, float(np.linalg.norm(hi - lo) / 2.0 + 2 * step)


class _Camera:
    """Orthographic camera: pixel (row, col) and depth t map to a world point."""

    def __init__(self, yaw: float, pitch: float, center: np.ndarray, radius: float, params: SurfaceParams):
        self.direction, self.right, self.up = camera_axes(yaw, pitch)
        self.center, self.radius, self.params = center, radius, params
        n = params.size_px
        self.origin = (center - self.direction * radius
                       - (n - 1) / 2.0 * params.mm_per_px * (self.right - self.up))

    def world(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """World points (…, 3) of pixel centres at depth 0 (the near plane)."""
        s = self.params.mm_per_px
        return (self.origin + cols[..., None] * s * self.right - rows[..., None] * s * self.up)

    def as_dict(self, yaw: int, pitch: int) -> dict:
        """A JSON-able description of the camera, stored with the view."""
        return {"yaw": int(yaw), "pitch": int(pitch), "projection": "orthographic",
                "direction": self.direction.round(6).tolist(), "right": self.right.round(6).tolist(),
                "up": self.up.round(6).tolist(), "center_mm": self.center.round(3).tolist(),
                "mm_per_px": self.params.mm_per_px, "size_px": self.params.size_px}


def _coarse_depth(cam: _Camera, mask: np.ndarray, mask_affine: np.ndarray) -> np.ndarray:
    """First-hit depth (mm from the near plane) of the coarse head mask on a coarse pixel grid."""
    from scipy import ndimage

    p = cam.params
    f = p.coarse_factor
    nc = -(-p.size_px // f)
    dt = min(p.coarse_mm, float(np.linalg.norm(mask_affine[:3, :3], axis=0).min()))
    nd = int(np.ceil(2 * cam.radius / dt)) + 1
    # output index (a, b, c) -> fine pixel (f a + (f-1)/2, f b + (f-1)/2), depth c dt -> voxel
    s = p.mm_per_px
    cols_dir, rows_dir = f * s * cam.right, -f * s * cam.up
    start = cam.origin + (f - 1) / 2.0 * s * (cam.right - cam.up)
    to_world = np.column_stack([rows_dir, cols_dir, dt * cam.direction])
    inv = np.linalg.inv(mask_affine)
    matrix = inv[:3, :3] @ to_world
    offset = inv[:3, :3] @ start + inv[:3, 3]
    sampled = ndimage.affine_transform(mask.astype(np.uint8), matrix, offset=offset,
                                       output_shape=(nc, nc, nd), order=0, cval=0)
    hit = sampled.any(axis=2)
    depth = np.argmax(sampled, axis=2).astype(float) * dt
    depth[~hit] = np.inf
    return depth


def _fine_window(coarse: np.ndarray, params: SurfaceParams) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel depth window [lo, hi] (full resolution) bracketing the coarse first hit."""
    from scipy import ndimage

    lo = ndimage.minimum_filter(coarse, size=3, mode="constant", cval=np.inf)
    hi_src = np.where(np.isfinite(coarse), coarse, -np.inf)
    hi = ndimage.maximum_filter(hi_src, size=3, mode="constant", cval=-np.inf)
    f, n = params.coarse_factor, params.size_px
    lo = np.repeat(np.repeat(lo, f, axis=0), f, axis=1)[:n, :n]
    hi = np.repeat(np.repeat(hi, f, axis=0), f, axis=1)[:n, :n]
    margin = 1.5 * params.coarse_mm
    return lo - margin, hi + margin


def _fine_depth(cam: _Camera, volume: Volume, coarse: np.ndarray, mask: np.ndarray,
                mask_affine: np.ndarray) -> np.ndarray:
    """Sub-sample first-hit depth (mm) per pixel; +inf where the ray misses the head."""
    from scipy import ndimage

    p = cam.params
    lo, hi = _fine_window(coarse, p)
    rows, cols = np.nonzero(np.isfinite(lo))
    depth = np.full((p.size_px, p.size_px), np.inf)
    if rows.size == 0:
        return depth
    lo_s, hi_s = lo[rows, cols], hi[rows, cols]
    k = p.fine_samples
    step = np.maximum(p.fine_step_mm, (hi_s - lo_s) / (k - 1))
    t = lo_s[:, None] + step[:, None] * np.arange(k)[None, :]
    inv = np.linalg.inv(volume.affine)
    base = cam.world(rows.astype(float), cols.astype(float)) @ inv[:3, :3].T + inv[:3, 3]
    vdir = inv[:3, :3] @ cam.direction
    coords = base.T[:, :, None] + vdir[:, None, None] * t[None, :, :]
    flat = coords.reshape(3, -1)
    values = ndimage.map_coordinates(volume.data, flat, order=1, cval=-1000.0,
                                     prefilter=False).reshape(t.shape)
    # a sample counts only inside the head's component, so a holder near the skin stays out;
    # looked up (nearest coarse voxel) only for the samples above the threshold
    above = values > p.threshold_hu
    cand = np.flatnonzero(above)
    minv = np.linalg.inv(mask_affine) @ volume.affine
    idx = np.rint(minv[:3, :3] @ flat[:, cand] + minv[:3, 3:4]).astype(np.intp)
    inside = np.all((idx >= 0) & (idx < np.array(mask.shape)[:, None]), axis=0)
    ok = np.zeros(cand.size, dtype=bool)
    ok[inside] = mask[tuple(idx[:, inside])]
    above.ravel()[cand[~ok]] = False
    hit = above.any(axis=1)
    first = np.argmax(above, axis=1)
    prev = np.maximum(first - 1, 0)
    idx = np.arange(t.shape[0])
    v0, v1 = values[idx, prev], values[idx, first]
    frac = np.where((first > 0) & (v1 != v0), (p.threshold_hu - v0) / np.where(v1 != v0, v1 - v0, 1), 0)
    t_hit = t[idx, prev] + np.clip(frac, 0, 1) * (t[idx, first] - t[idx, prev])
    t_hit[first == 0] = t[idx, 0][first == 0]
    depth[rows[hit], cols[hit]] = t_hit[hit]
    return depth


def smoothing_sigma_mm(params: SurfaceParams, voxel_mm: float) -> float:
    """Gaussian sigma (mm) applied to the depth map before normals are taken.

    Large voxels leave a stair-step texture on a first-hit surface that changes with the head's
    pose; smoothing by ``voxel_smoothing`` x the largest voxel size removes it (identity lives in
    the head's shape, not in the voxel grid), with ``depth_smoothing_mm`` as the floor.
    """
    return max(params.depth_smoothing_mm, params.voxel_smoothing * voxel_mm)


def shade(depth: np.ndarray, params: SurfaceParams, sigma_mm: float | None = None) -> np.ndarray:
    """Lambert-shaded RGB uint8 image of a depth map (mm); +inf depth is black background."""
    from scipy import ndimage

    hit = np.isfinite(depth)
    if not hit.any():
        return np.zeros((*depth.shape, 3), dtype=np.uint8)
    far = float(depth[hit].max()) + 5.0
    filled = np.where(hit, depth, far)
    sigma = params.depth_smoothing_mm if sigma_mm is None else sigma_mm
    if sigma > 0:
        filled = ndimage.gaussian_filter(filled, sigma / params.mm_per_px)
    g_row, g_col = np.gradient(filled, params.mm_per_px)
    # camera frame (right, up, toward camera): depth grows away from the camera, rows grow downward
    normal = np.stack([g_col, -g_row, np.ones_like(filled)], axis=-1)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    light = np.asarray(params.light, dtype=float)
    light /= np.linalg.norm(light)
    lambert = np.clip(normal @ light, 0.0, 1.0)
    intensity = params.ambient + (1.0 - params.ambient) * lambert
    rgb = intensity[..., None] * np.asarray(params.color)[None, None, :]
    rgb[~hit] = 0.0
    return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)


class SurfaceRenderer:
    """First-hit skin isosurface renderer (see the module docstring); one View per (yaw, pitch)."""

    name = "surface"
    version = "1"

    def __init__(self, params: SurfaceParams | None = None) -> None:
        self.params = params if params is not None else SurfaceParams()

    def available(self) -> Availability:
        """Always available: needs only numpy and scipy."""
        return Availability.yes()

    def render(self, volume: Volume) -> list[View]:
        """Render every view of ``params.views``; an empty head gives black images (no face)."""
        if volume.modality == "mri":  # no HU: a level from the volume's own intensities, head made solid
            import dataclasses

            from defacebench.anatomy.mrimask import mri_skin_level, solid_head

            level = mri_skin_level(volume.data, self.params.mri_threshold, self.params.mri_threshold_scale)
            params = dataclasses.replace(self.params, threshold_hu=level)
            return SurfaceRenderer(params)._render(solid_head(volume, level))
        return self._render(volume)

    def _render(self, volume: Volume) -> list[View]:
        """:meth:`render` with ``params.threshold_hu`` as the skin level."""
        comp = head_component(volume, self.params)
        views = []
        for yaw, pitch in self.params.views:
            if comp is None:
                image = np.zeros((self.params.size_px, self.params.size_px, 3), dtype=np.uint8)
                views.append(View(view_id(yaw, pitch), image, {"yaw": int(yaw), "pitch": int(pitch),
                                                             "empty": True}))
                continue
            views.append(self._render_view(volume, comp, int(yaw), int(pitch)))
        return views

    def _render_view(self, volume: Volume, comp: tuple[np.ndarray, np.ndarray], yaw: int, pitch: int) -> View:
        """Ray cast and shade one view of the head component."""
        mask, mask_affine = comp
        center, radius = _world_bbox(mask, mask_affine)
        cam = _Camera(yaw, pitch, center, radius, self.params)
        coarse = _coarse_depth(cam, mask, mask_affine)
        depth = _fine_depth(cam, volume, coarse, mask, mask_affine)
        sigma = smoothing_sigma_mm(self.params, max(volume.zooms))
        return View(view_id(yaw, pitch), shade(depth, self.params, sigma), cam.as_dict(yaw, pitch))
