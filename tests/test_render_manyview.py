"""Issue 23, many-view sets: the faster `surface` shading and z-buffer give the very images of the
reference code, and view grids are searched with the detector's recorded view-set params while
single views keep the detector's own."""

from __future__ import annotations

import threading

from functools import lru_cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from defacebench.contracts import Volume
from defacebench.plugins.params import view_set_params
from defacebench.run.records import Detected, Rendered, RenderedView
from defacebench.run.stage_base import plugin_identity
from recognizers._backends.head import HeadSeparation, head_component
from recognizers._backends.mesh import depth_map, skin_mesh
from recognizers._backends.views import OrthoCamera, multiview_grid, view_specs
from recognizers.detect.dlib import DlibHog, DlibHogParams
from recognizers.render.surface import SurfaceParams, SurfaceRenderer, box_normals, lambert, smoothing_sigma_mm

SMALL = dict(size_px=160, mm_per_px=1.8)


@lru_cache(maxsize=1)
def _head() -> Volume:
    from defacebench.data.phantom.anatomy import head_ct

    return Volume(*head_ct(2.0))


# --------------------------------------------------------------- reference code (main before issue 23)

def _reference_normals(depth, mm_per_px, sigma_mm):
    """The full-frame normals of `surface` v4 before issue 23 (stacked vector, np.linalg.norm)."""
    from scipy import ndimage

    out = np.zeros((*depth.shape, 3))
    out[..., 2] = 1.0
    hit = np.isfinite(depth)
    if not hit.any():
        return out
    sigma_px = sigma_mm / mm_per_px
    reach = int(4.0 * sigma_px + 0.5) + 2
    rows, cols = np.flatnonzero(hit.any(axis=1)), np.flatnonzero(hit.any(axis=0))
    box = (slice(max(rows[0] - reach, 0), rows[-1] + reach + 1), slice(max(cols[0] - reach, 0), cols[-1] + reach + 1))
    filled = np.where(hit[box], depth[box], float(depth[hit].max()) + 5.0)
    if sigma_mm > 0:
        filled = ndimage.gaussian_filter(filled, sigma_px)
    g_row, g_col = np.gradient(filled, mm_per_px)
    normal = np.stack([g_col, -g_row, np.ones_like(filled)], axis=-1)
    out[box] = normal / np.linalg.norm(normal, axis=-1, keepdims=True)
    return out


def _reference_lambert(normal, hit, light, params):
    direction = np.asarray(light, dtype=float)
    direction = direction / np.linalg.norm(direction)
    intensity = params.ambient + (1.0 - params.ambient) * np.clip(normal[hit] @ direction, 0.0, 1.0)
    rgb = np.zeros((*hit.shape, 3), dtype=np.uint8)
    rgb[hit] = np.clip(np.round(intensity[:, None] * np.asarray(params.color)[None, :] * 255.0), 0, 255)
    return rgb


def _reference_depth(mesh, cam):
    """The z-buffer before issue 23 (``%`` and ``//`` per candidate)."""
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
    nx = x1 - x0 + 1
    count = nx * (y1 - y0 + 1)
    tri = np.repeat(np.arange(keep.size), count)
    k = np.arange(tri.size) - (np.cumsum(count) - count)[tri]
    px, py = x0[tri] + k % nx[tri], y0[tri] + k // nx[tri]
    g = keep[tri]
    cx, cy = px.astype(np.float32), py.astype(np.float32)
    xa, xb, xc, ya, yb, yc = (v[g] - c for v, c in ((xa, cx), (xb, cx), (xc, cx), (ya, cy), (yb, cy), (yc, cy)))
    e0, e1, e2 = xb * yc - yb * xc, xc * ya - yc * xa, xa * yb - ya * xb
    area = e0 + e1 + e2
    tol = -1e-6 * np.abs(area)
    inside = np.flatnonzero((area > 0) & (e0 >= tol) & (e1 >= tol) & (e2 >= tol))
    g, area = g[inside], area[inside]
    depth = (e0[inside] * z[f0[g]] + e1[inside] * z[f1[g]] + e2[inside] * z[f2[g]]) / area
    zbuf = np.full(n * n, np.inf, dtype=np.float32)
    np.minimum.at(zbuf, py[inside] * n + px[inside], depth)
    return zbuf.reshape(n, n).astype(float)


# --------------------------------------------------------------------------------- surface: exact

def test_a_many_view_set_is_identical_to_the_reference_renderer():
    """Every view of the 15-view grid (synthetic CT head): depth maps and RGB images equal, bit for bit,
    what the code before issue 23 made of the same mesh and cameras."""
    p = SurfaceParams(views=multiview_grid(), **SMALL)
    vol = _head()
    head = head_component(vol, p.threshold_hu, HeadSeparation.of(p))
    mesh = skin_mesh(vol, head, p.threshold_hu, p.mesh_mm)
    center, radius = head.bounds(p.head_height_mm)
    sigma = smoothing_sigma_mm(p, max(vol.zooms))
    views = SurfaceRenderer(p).render(vol)
    assert len(views) == 15
    for spec, view in zip(view_specs("surface", p.views, p.lights), views):
        cam = OrthoCamera.looking_at(spec, center, radius, p.size_px, p.mm_per_px)
        depth = depth_map(mesh, cam)
        np.testing.assert_array_equal(depth, _reference_depth(mesh, cam))
        hit = np.isfinite(depth)
        assert hit.sum() > 1000, spec
        expected = _reference_lambert(_reference_normals(depth, p.mm_per_px, sigma), hit, cam.light(), p)
        np.testing.assert_array_equal(view.image, expected, err_msg=spec.view_id)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2 ** 31 - 1), st.floats(0.0, 3.0), st.floats(0.3, 1.5))
def test_box_shading_equals_full_frame_shading(seed, sigma_mm, mm_per_px):
    """Random blobs of depth (including none, and ones touching the frame's edge): the box-limited
    normals and shading give the full-frame reference's image exactly."""
    rng = np.random.default_rng(seed)
    depth = np.full((48, 40), np.inf)
    r0, c0 = rng.integers(-5, 40, 2)
    h, w = rng.integers(0, 30, 2)
    patch = depth[max(r0, 0):max(r0 + h, 0), max(c0, 0):max(c0 + w, 0)]
    patch[...] = rng.uniform(10.0, 60.0, patch.shape)
    p = SurfaceParams(mm_per_px=mm_per_px)
    light = rng.normal(size=3) + np.array([0.0, 0.0, 2.0])
    found = box_normals(depth, mm_per_px, sigma_mm)
    hit = np.isfinite(depth)
    expected = _reference_lambert(_reference_normals(depth, mm_per_px, sigma_mm), hit, light, p)
    if found is None:
        assert not hit.any()
        return
    np.testing.assert_array_equal(lambert(found[1], hit, light, p, box=found[0]), expected)


# ------------------------------------------------------------------------- detection on view sets

def test_view_set_params_are_recorded_and_key_the_cache():
    """dlib_hog's view-set params differ from its own only in upsample; both are params fields, so
    the detect stage's cache key and the results' params record them."""
    own = DlibHogParams()
    sets = view_set_params(DlibHog(own))
    assert own.upsample == 1 and own.view_set_upsample == 0
    assert sets == DlibHogParams(upsample=0)
    assert plugin_identity(DlibHog(sets)) != plugin_identity(DlibHog(own))
    assert plugin_identity(DlibHog(own))["params"]["view_set_upsample"] == 0
    # equal settings: the detector's own params (and cache keys) on view sets too
    assert view_set_params(DlibHog(DlibHogParams(view_set_upsample=1))) is None

    class NoHook:
        params = object()

    assert view_set_params(NoHook()) is None


def test_grids_are_detected_with_view_set_params_single_views_with_their_own(monkeypatch, tmp_path):
    """BenchmarkRun.detected hands the view-set params to the detect tasks of a view grid only."""
    from defacebench.run import pipeline
    from defacebench.run.stage_base import StageEnv

    run = pipeline.BenchmarkRun.__new__(pipeline.BenchmarkRun)
    run._memo, run.env = {}, StageEnv(str(tmp_path))
    run._locks, run._guard = {}, threading.RLock()  # the memo's per-key locks (BenchmarkRun.__init__)
    views = Rendered((RenderedView("v0", "a.png", "h0"), RenderedView("v1", "b.png", "h1")))
    monkeypatch.setattr(run, "rendered", lambda *a: {"acq": views})
    monkeypatch.setattr(run, "plugin", lambda kind, name: DlibHog())
    seen = []

    def fake_map(fn, tasks, stage, plugin):
        seen.append([t.params for t in tasks])
        return [Detected((), None) for _ in tasks]

    monkeypatch.setattr(run, "_map", fake_map)
    run.detected("none", "surface", "dlib_hog", None)
    run.detected("none", "surface", "dlib_hog", ((0.0, 0.0, 0), (15.0, 0.0, 0)))
    assert seen == [[None, None], [DlibHogParams(upsample=0)] * 2]


@pytest.mark.slow
def test_view_set_detection_agrees_with_the_single_view_setting(renders):
    """On the synthetic head's renders (faces ~150 px), upsample 0 finds every face upsample 1 finds,
    at boxes of about the same place and size."""
    full, fast = DlibHog(), DlibHog(DlibHogParams().for_view_sets())
    if not full.available().ok:
        pytest.skip(full.available().reason)
    for image in renders():
        a, b = full.detect(image), fast.detect(image)
        assert bool(a) == bool(b)
        if a:
            width = a[0].box[2] - a[0].box[0]
            assert np.abs(np.subtract(a[0].box, b[0].box)).max() < 0.35 * width


# ------------------------------------------------------------------------------ framing: exact

def _reference_bounds(head, head_height_mm):
    """HeadMask.bounds before issue 23: every voxel's world coordinates when the cut crosses the head."""
    from recognizers._backends.head import run_ends

    world = head._world(np.argwhere(run_ends(head.mask)))
    top = world[:, 2].max()
    if world[:, 2].min() < top - head_height_mm:
        world = head._world(np.argwhere(head.mask))
        world = world[world[:, 2] >= top - head_height_mm]
    step = float(np.linalg.norm(head.affine[:3, :3], axis=0).max())
    lo, hi = world.min(axis=0), world.max(axis=0)
    return (lo + hi) / 2.0, float(np.linalg.norm(hi - lo) / 2.0 + 2 * step)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2 ** 31 - 1), st.floats(2.0, 60.0))
def test_bounds_above_a_cut_equal_the_every_voxel_reference(seed, height):
    """Random blobby masks under oblique, scaled, mirrored affines: centre and radius equal, bit for
    bit, those of every voxel's coordinates (the run-ends path drops only interior voxels)."""
    from scipy import ndimage, stats

    from recognizers._backends.head import HeadMask

    rng = np.random.default_rng(seed)
    mask = ndimage.gaussian_filter(rng.normal(size=(9, 11, 13)), 1.5) > 0.05
    if not mask.any():
        mask[4, 5, 6] = True
    affine = np.eye(4)
    affine[:3, :3] = stats.special_ortho_group.rvs(3, random_state=seed) @ np.diag(rng.uniform(0.5, 4.0, 3))
    affine[:3, :3] *= rng.choice([-1.0, 1.0], 3)
    affine[:3, 3] = rng.uniform(-100, 100, 3)
    head = HeadMask(mask, affine, (2, 2, 2))
    centre, radius = head.bounds(height)
    ref_centre, ref_radius = _reference_bounds(head, height)
    np.testing.assert_array_equal(centre, ref_centre)
    assert radius == ref_radius
