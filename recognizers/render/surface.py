"""`surface` renderer: a shaded skin isosurface of the head, from a grid of cameras and lights.

Why this renderer: a face recognizer needs a face-like picture, and the skin surface is what a
photograph shows. The render is direction-aware (it uses the affine: the face is at +y anterior
in RAS, the frontal camera looks from anterior to posterior with +z superior up), has a fixed
physical scale (``mm_per_px``) so the same head is the same size in every scan, is framed on the
centre of the head's bounding box, and keeps only the head's connected component so a head holder,
pillow or table never enters the image (recognizers._backends.head).

Views: every camera of ``views`` under every light of ``lights`` (recognizers._backends.views;
default one frontal camera, one light). Per volume the work is done once: the head component and,
with ``method = "mesh"`` (the default), the skin mesh (marching cubes near the component's
boundary, recognizers._backends.mesh); each camera then costs one z-buffer rasterisation of the
mesh and each light one shading pass. ``method = "raycast"`` is the v1 path (first-hit ray
casting per camera, recognizers.render._raycast): the same surface to ~0.02 mm, several times
slower per view, kept as the reference.

Projection is orthographic. Normals come from the gradient of the depth map, smoothed first by a
Gaussian scaled to the voxel size (the stair-step texture of large voxels changes with pose and
would swamp identity); shading is Lambert with a small ambient term and the view's light (fixed to the head).
"""

from __future__ import annotations

import contextlib
import dataclasses

from dataclasses import dataclass
from typing import Annotated

import numpy as np

from defacebench.contracts import Availability, Range, View, Volume
from defacebench.errors import PluginError

from recognizers._backends.head import HeadMask, HeadSeparation, head_component
from recognizers._backends.views import OrthoCamera, ViewSpec, camera_axes, view_id, view_specs

__all__ = ["SurfaceParams", "SurfaceRenderer", "camera_axes", "view_id", "shade", "skin_threshold"]

METHODS = ("mesh", "raycast")


@dataclass(frozen=True)
class SurfaceParams:
    """Render settings (all recorded in results and cache keys).

    ``views``: (yaw, pitch, light index) triples in degrees, or (yaw, pitch) pairs meaning that
    camera under every light; ``lights``: light directions fixed to the head, given in the frontal
    camera's frame (image right, image up, toward the camera); see recognizers._backends.views,
    which also builds the multiview and published grids.
    ``mm_per_px``: fixed physical scale (0.7 mm: a head fills about half of a 512 px frame).
    ``ambient``: light added everywhere; ``color``: RGB albedo. ``method``: "mesh" or "raycast";
    ``mesh_mm``: voxels finer than this are averaged in blocks before the mesh is made (a
    0.4 x 0.5 x 0.9 mm CT becomes 0.8 x 0.5 x 0.9 mm cells; 2 mm voxels are left alone).
    ``coarse_mm``: grid of the head component; ``detach_mm`` / ``regrow_mm`` / ``regrow_fraction``:
    how the head is separated from objects touching it (recognizers._backends.head);
    ``head_height_mm``: the camera is centred on the top this many mm of the component, so a scan
    that also holds the neck and shoulders is framed on the head.
    ``coarse_factor`` / ``fine_samples`` / ``fine_step_mm``: the ray caster's coarse image grid and
    samples per pixel. ``depth_smoothing_mm`` / ``voxel_smoothing``: depth-map smoothing before
    shading (see :func:`smoothing_sigma_mm`). ``threshold_hu``: the skin level on CT;
    ``mri_threshold`` / ``mri_threshold_scale``: on MRI (no HU) the skin level is
    ``mri_threshold_scale`` x Otsu's threshold of the volume ("otsu"), or that scale x the 99th
    percentile ("percentile"); see :func:`defacebench.anatomy.mrimask.mri_skin_level`.
    """

    threshold_hu: float = -400.0
    mri_threshold: str = "otsu"
    mri_threshold_scale: float = 0.6
    views: tuple[tuple[float, ...], ...] = ((0.0, 0.0, 0),)
    lights: tuple[tuple[float, float, float], ...] = ((0.0, 0.35, 1.0),)
    method: str = "mesh"
    mesh_mm: Annotated[float, Range(gt=0)] = 1.0
    size_px: Annotated[int, Range(ge=16)] = 512
    mm_per_px: Annotated[float, Range(gt=0)] = 0.7
    ambient: Annotated[float, Range(ge=0, le=1)] = 0.15
    color: tuple[float, float, float] = (0.92, 0.78, 0.68)
    coarse_mm: float = 2.0
    detach_mm: float = 12.0
    regrow_mm: float = 30.0
    regrow_fraction: float = 0.95
    head_height_mm: float = 240.0
    coarse_factor: Annotated[int, Range(ge=1)] = 4
    fine_samples: Annotated[int, Range(ge=1)] = 24
    fine_step_mm: Annotated[float, Range(gt=0)] = 0.35
    depth_smoothing_mm: float = 0.5
    voxel_smoothing: float = 1.0


def skin_threshold(volume: Volume, params: SurfaceParams) -> float:
    """The value whose isosurface is the skin: ``threshold_hu`` (CT: between air and soft tissue).

    The one place the threshold is chosen, so a modality-aware choice changes only this function.
    """
    return float(params.threshold_hu)


def smoothing_sigma_mm(params: SurfaceParams, voxel_mm: float) -> float:
    """Gaussian sigma (mm) applied to the depth map before normals are taken.

    Large voxels leave a stair-step texture on a first-hit surface that changes with the head's
    pose; smoothing by ``voxel_smoothing`` x the largest voxel size removes it (identity lives in
    the head's shape, not in the voxel grid), with ``depth_smoothing_mm`` as the floor.
    """
    return max(params.depth_smoothing_mm, params.voxel_smoothing * voxel_mm)


def normals(depth: np.ndarray, mm_per_px: float, sigma_mm: float) -> np.ndarray:
    """Unit surface normals (H, W, 3) in the camera frame (right, up, toward the camera) of a depth
    map (mm, +inf = background), after Gaussian smoothing by ``sigma_mm``; (0, 0, 1) off the head's
    box (see :func:`box_normals`)."""
    out = np.zeros((*depth.shape, 3))
    out[..., 2] = 1.0
    found = box_normals(depth, mm_per_px, sigma_mm)
    if found is not None:
        box, normal = found
        out[box] = normal
    return out


def box_normals(depth: np.ndarray, mm_per_px: float, sigma_mm: float):
    """(box, unit normals (h, w, 3) inside it) of a depth map, or None when nothing is hit.

    Computed on the head's bounding box plus the filter's reach (the background beyond it is a
    constant, so the result is the same as on the whole image, at a fraction of the cost); every
    hit pixel lies in the box, so shading needs nothing outside it. The normalisation divides each
    component by ``sqrt(gx² + gy² + 1)``, the same float64 operations as ``np.linalg.norm`` over
    the stacked vector, without its (h, w, 3) temporaries (tests/test_render_manyview.py checks the
    images are identical to the stacked form's)."""
    from scipy import ndimage

    hit = np.isfinite(depth)
    rows, cols = np.flatnonzero(hit.any(axis=1)), np.flatnonzero(hit.any(axis=0))
    if rows.size == 0:
        return None
    sigma_px = sigma_mm / mm_per_px
    reach = int(4.0 * sigma_px + 0.5) + 2  # gaussian_filter's truncate=4 radius, plus the gradient's step
    box = (slice(max(rows[0] - reach, 0), rows[-1] + reach + 1), slice(max(cols[0] - reach, 0), cols[-1] + reach + 1))
    filled = np.where(hit[box], depth[box], float(depth[hit].max()) + 5.0)
    if sigma_mm > 0:
        filled = ndimage.gaussian_filter(filled, sigma_px)
    g_row, g_col = np.gradient(filled, mm_per_px)
    # depth grows away from the camera, rows grow downward
    x, y = g_col, -g_row
    length = np.sqrt(x * x + y * y + 1.0)
    normal = np.empty((*filled.shape, 3))
    np.divide(x, length, out=normal[..., 0])
    np.divide(y, length, out=normal[..., 1])
    np.divide(1.0, length, out=normal[..., 2])
    return box, normal


def lambert(normal: np.ndarray, hit: np.ndarray, light, params: SurfaceParams, box=None) -> np.ndarray:
    """RGB uint8 image: Lambert shading under ``light`` (a direction in the normals' camera frame)
    plus ambient; black off the head. ``normal`` is (H, W, 3), or with ``box`` (the slices of
    :func:`box_normals`) the normals inside that box, which holds every hit pixel."""
    direction = np.asarray(light, dtype=float)
    direction = direction / np.linalg.norm(direction)
    inner = hit if box is None else hit[box]
    intensity = params.ambient + (1.0 - params.ambient) * np.clip(normal[inner] @ direction, 0.0, 1.0)
    rgb = np.zeros((*hit.shape, 3), dtype=np.uint8)
    out = rgb if box is None else rgb[box]
    out[inner] = np.clip(np.round(intensity[:, None] * np.asarray(params.color)[None, :] * 255.0), 0, 255)
    return rgb


def shade(depth: np.ndarray, params: SurfaceParams, sigma_mm: float | None = None, light=None) -> np.ndarray:
    """Lambert-shaded RGB uint8 image of a depth map (mm); +inf depth is black background.
    ``light`` defaults to the first of ``params.lights``."""
    sigma = params.depth_smoothing_mm if sigma_mm is None else sigma_mm
    hit = np.isfinite(depth)
    return lambert(normals(depth, params.mm_per_px, sigma), hit, params.lights[0] if light is None else light,
                   params)


def one_blas_thread():
    """A context running BLAS on one thread (threadpoolctl, a scikit-learn dependency).

    Why: the renderer's matrix products are 3 x 3 by 3 x N projections, too small for BLAS threads
    to pay; outside the pipeline's single-threaded workers (a lone or serial worker, a library
    caller) OpenBLAS threads spin between those calls and a 15-view set cost ~1.5x the CPU
    (docs/benchmarks.md, "Many-view sets"). Products are the same with one thread or several
    (K = 3 is never split), so images are too."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


class SurfaceRenderer:
    """Skin isosurface renderer (see the module docstring); one View per (camera, light)."""

    name = "surface"
    version = "4"  # 4: the ray caster gates on the head grown by a voxel (head_reach)
    licence = "MIT (defacebench's own ray caster)"
    needs = "nothing beyond the base install"

    def __init__(self, params: SurfaceParams | None = None) -> None:
        self.params = params if params is not None else SurfaceParams()
        if self.params.method not in METHODS:
            raise PluginError(f"surface: params.method must be one of {METHODS}, got "
                              f"{self.params.method!r}. Fix: method = \"mesh\"")
        self.specs = view_specs(self.name, self.params.views, self.params.lights)

    def available(self) -> Availability:
        """Always available: needs only numpy, scipy and scikit-image (core dependencies)."""
        return Availability.yes()

    def render(self, volume: Volume) -> list[View]:
        """Render every view; an empty head gives black images (no face). On MRI (no HU) the skin
        level comes from the volume's own intensities and the head is made solid first (a T1's dark
        skull would otherwise leave the brain as the largest component)."""
        with one_blas_thread():
            if volume.modality == "mri":
                from defacebench.anatomy.mrimask import solid_head_at_skin

                solid, level = solid_head_at_skin(volume, self.params.mri_threshold, self.params.mri_threshold_scale)
                return SurfaceRenderer(dataclasses.replace(self.params, threshold_hu=level))._render(solid)
            return self._render(volume)

    def _render(self, volume: Volume) -> list[View]:
        """:meth:`render` with the params' skin threshold."""
        p = self.params
        threshold = skin_threshold(volume, p)
        head = head_component(volume, threshold, HeadSeparation.of(p))
        depth_of = None if head is None else self._depth_function(volume, head, threshold)
        if depth_of is None:
            return [self._empty(spec) for spec in self.specs]
        center, radius = head.bounds(self.params.head_height_mm)
        sigma = smoothing_sigma_mm(p, max(volume.zooms))
        views, shaded = [], {}
        for spec in self.specs:  # each camera's depth and normals are made once, for all its lights
            cam = OrthoCamera.looking_at(spec, center, radius, p.size_px, p.mm_per_px)
            if (spec.yaw, spec.pitch) not in shaded:
                depth = depth_of(cam)
                shaded[(spec.yaw, spec.pitch)] = (box_normals(depth, p.mm_per_px, sigma), np.isfinite(depth))
            found, hit = shaded[(spec.yaw, spec.pitch)]
            info = {**cam.as_dict(), "method": p.method}
            image = (np.zeros((p.size_px, p.size_px, 3), np.uint8) if found is None
                     else lambert(found[1], hit, cam.light(), p, box=found[0]))
            views.append(View(spec.view_id, image, info))
        return views

    def _depth_function(self, volume: Volume, head: HeadMask, threshold: float):
        """camera -> depth map, after the per-volume work of the chosen method (None: no surface)."""
        if self.params.method == "raycast":
            from recognizers.render import _raycast

            reach = _raycast.head_reach(head)
            return lambda cam: _raycast.depth_map(cam, volume, head, threshold, self.params, reach)
        from recognizers._backends import mesh as meshing

        skin = meshing.skin_mesh(volume, head, threshold, self.params.mesh_mm)
        return None if skin is None else (lambda cam: meshing.depth_map(skin, cam))

    def _empty(self, spec: ViewSpec) -> View:
        image = np.zeros((self.params.size_px, self.params.size_px, 3), dtype=np.uint8)
        info = {"yaw": spec.yaw, "pitch": spec.pitch, "light": spec.light, "light_dir": list(spec.light_dir),
                "mm_per_px": self.params.mm_per_px, "size_px": self.params.size_px, "empty": True}
        return View(spec.view_id, image, info)
