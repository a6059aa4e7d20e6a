"""The many-view path of `surface`: z-buffer rasteriser, skin mesh, agreement with the ray caster,
views independent of each other, lights, and the head-only rule on every camera of the grid."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from defacebench.contracts import Volume
from defacebench.anatomy.grid import refine
from recognizers._backends.head import HeadSeparation, block_any, head_component
from recognizers._backends.mesh import Mesh, depth_map, skin_mesh
from recognizers._backends.views import OrthoCamera, multiview_grid, view_specs
from recognizers.render import _raycast
from recognizers.render.surface import SurfaceParams, SurfaceRenderer

SMALL = dict(size_px=192, mm_per_px=1.6)  # the whole head at a fraction of the cost


@lru_cache(maxsize=1)
def head_volume() -> Volume:
    """The synthetic CT head of the attacker tests (the phantom's head in HU, 2 mm voxels)."""
    from defacebench.data.phantom.anatomy import head_ct

    return Volume(*head_ct(2.0))


def _frontal(n=32, s=1.0, center=(0.0, 0.0, 0.0), radius=50.0) -> OrthoCamera:
    spec = view_specs("t", ((0, 0),), ((0, 0, 1),))[0]
    return OrthoCamera.looking_at(spec, np.asarray(center, float), radius, n, s)


def _plane_mesh(cam: OrthoCamera, corners_px, depths, flip=False) -> Mesh:
    """A quad (two triangles) whose corners sit at pixel coordinates (col, row) and depths (mm)."""
    pts = np.array([cam.world(np.array([r]), np.array([c]))[0] + d * cam.direction
                    for (c, r), d in zip(corners_px, depths)])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    f0, f1, f2 = faces[:, 0], faces[:, 1], faces[:, 2]
    if flip:
        f1, f2 = f2, f1
    return Mesh.of(pts.T, f0, f1, f2)


@settings(max_examples=30, deadline=None)
@given(st.floats(2.0, 8.0), st.floats(20.0, 29.0), st.floats(-1.0, 1.0), st.floats(-1.0, 1.0), st.floats(10, 90))
def test_a_plane_is_drawn_exactly(lo, hi, gx, gy, d0):
    """Every pixel centre strictly inside a tilted quad gets the plane's depth; outside stays empty."""
    cam = _frontal()
    corners = [(lo, lo), (hi, lo), (hi, hi), (lo, hi)]  # clockwise on screen (rows grow down)
    plane = lambda c, r: d0 + gx * c + gy * r  # noqa: E731
    mesh = _plane_mesh(cam, corners, [plane(c, r) for c, r in corners])
    depth = depth_map(mesh, cam)
    if not np.isfinite(depth).any():
        mesh = _plane_mesh(cam, corners, [plane(c, r) for c, r in corners], flip=True)
        depth = depth_map(mesh, cam)
    rows, cols = np.indices(depth.shape)
    # a pixel centre on an edge (within rounding of the corners' round trip through world
    # coordinates) may go either way: judged only at least ``eps`` pixels from the edges
    eps = 1e-6
    inside = (cols > lo + eps) & (cols < hi - eps) & (rows > lo + eps) & (rows < hi - eps)
    outside = (cols < lo - eps) | (cols > hi + eps) | (rows < lo - eps) | (rows > hi + eps)
    assert np.allclose(depth[inside], plane(cols, rows)[inside], atol=1e-4)  # float32 depths
    assert np.isinf(depth[outside]).all()


def test_only_faces_toward_the_camera_are_drawn_and_the_nearest_wins():
    cam = _frontal()
    quad = [(4.0, 4.0), (20.0, 4.0), (20.0, 20.0), (4.0, 4.0 + 16.0)]
    a, b = _plane_mesh(cam, quad, [30.0] * 4), _plane_mesh(cam, quad, [30.0] * 4, flip=True)
    da, db = depth_map(a, cam), depth_map(b, cam)
    assert np.isfinite(da).any() != np.isfinite(db).any()  # exactly one winding faces the camera
    flip = not np.isfinite(da).any()
    front = b if flip else a
    near = _plane_mesh(cam, [(10.0, 10.0), (28.0, 10.0), (28.0, 28.0), (10.0, 28.0)], [12.0] * 4, flip=flip)
    both = Mesh.of(np.hstack([front.xyz, near.xyz]), np.r_[front.f0, near.f0 + 4],
                np.r_[front.f1, near.f1 + 4], np.r_[front.f2, near.f2 + 4])
    depth = depth_map(both, cam)
    assert depth[15, 15] == pytest.approx(12.0) and depth[6, 6] == pytest.approx(30.0)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_a_finely_split_surface_leaves_no_cracks(seed):
    """A plane cut into many small jittered triangles (as marching cubes makes) covers every
    pixel centre inside it: shared edges never drop a pixel."""
    rng = np.random.default_rng(seed)
    n = 40
    gc, gr = np.meshgrid(np.linspace(3, 28, n), np.linspace(3, 28, n))
    gc[1:-1, 1:-1] += rng.uniform(-0.2, 0.2, (n - 2, n - 2)) * 25 / n
    gr[1:-1, 1:-1] += rng.uniform(-0.2, 0.2, (n - 2, n - 2)) * 25 / n
    cam = _frontal()
    pts = cam.world(gr.ravel(), gc.ravel()) + 20.0 * cam.direction
    idx = np.arange(n * n).reshape(n, n)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, 1:].ravel(), idx[1:, :-1].ravel()
    f0, f1, f2 = np.r_[a, a], np.r_[b, c], np.r_[c, d]
    depth = depth_map(Mesh.of(pts.T, f0, f1, f2), cam)
    if not np.isfinite(depth).any():
        depth = depth_map(Mesh.of(pts.T, f0, f2, f1), cam)
    assert np.isfinite(depth[4:28, 4:28]).all()


@lru_cache(maxsize=None)
def _head_parts(flip: bool = False):
    vol = head_volume()
    if flip:  # the same head stored mirrored (LAS): the mesh's winding must follow
        m = np.diag([-1.0, 1, 1, 1])
        m[0, 3] = vol.data.shape[0] - 1
        vol = Volume(np.ascontiguousarray(vol.data[::-1]), vol.affine @ m)
    p = SurfaceParams(**SMALL)
    head = head_component(vol, p.threshold_hu, HeadSeparation.of(p))
    return vol, p, head, skin_mesh(vol, head, p.threshold_hu)


@pytest.mark.parametrize("yaw, pitch, flip", [(0, 0, False), (30, -15, False), (-30, 15, True), (180, 0, False)])
def test_mesh_depth_matches_the_ray_caster(yaw, pitch, flip):
    """The rasterised skin mesh and the first-hit ray caster see the same surface: the same pixels
    (silhouette) and depths within a fraction of a voxel."""
    vol, p, head, mesh = _head_parts(flip)
    center, radius = head.bounds()
    spec = view_specs("t", ((yaw, pitch),), p.lights)[0]
    cam = OrthoCamera.looking_at(spec, center, radius, p.size_px, p.mm_per_px)
    ours, ref = depth_map(mesh, cam), _raycast.depth_map(cam, vol, head, p.threshold_hu, p)
    a, b = np.isfinite(ours), np.isfinite(ref)
    # they differ only on the silhouette's rim (rays that graze the skin between two samples)
    inner = ndimage.binary_erosion(a | b, iterations=2)
    assert (a ^ b)[inner].sum() <= 0.001 * b.sum() and (a ^ b).sum() < 0.03 * b.sum()
    # the face where the field of view cuts the neck sits half a voxel apart by convention (see
    # test_a_head_cut_by_the_field_of_view_is_closed); a camera 15 degrees below sees it obliquely,
    # where half a voxel becomes 3 mm of depth: compared there, not here
    both = a & b & ~_beyond_the_grid(cam, ours, vol)
    diff = np.abs(ours[both] - ref[both])
    assert both.sum() > 0.9 * b.sum()
    assert np.median(diff) < 0.2 and np.percentile(diff, 95) < 0.5


def _beyond_the_grid(cam: OrthoCamera, depth: np.ndarray, vol: Volume) -> np.ndarray:
    """Pixels whose depth lies outside the volume's outermost voxel centres (the closed cut face)."""
    rows, cols = np.indices(depth.shape)
    hit = np.isfinite(depth)
    points = cam.world(rows[hit].astype(float), cols[hit].astype(float)) + depth[hit, None] * cam.direction
    inv = np.linalg.inv(vol.affine)
    ijk = points @ inv[:3, :3].T + inv[:3, 3]
    out = np.zeros(depth.shape, bool)
    out[hit] = np.any((ijk < -1e-3) | (ijk > np.array(vol.data.shape) - 1 + 1e-3), axis=1)
    return out


def test_mesh_and_raycast_images_agree():
    mesh = SurfaceRenderer(SurfaceParams(**SMALL)).render(head_volume())[0].image.astype(int)
    ray = SurfaceRenderer(SurfaceParams(method="raycast", **SMALL)).render(head_volume())[0].image.astype(int)
    assert np.abs(mesh - ray).mean() < 1.0


def test_a_head_cut_by_the_field_of_view_is_closed():
    """Seen from below, a head whose neck is cut by the bottom slice shows the cut face, as a ray
    caster sees it, not the inside of the head."""
    vol = head_volume()
    cut = Volume(np.ascontiguousarray(vol.data[:, :, 20:]), vol.affine @ np.array(
        [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 20], [0, 0, 0, 1]], float))
    p = SurfaceParams(**SMALL)
    head = head_component(cut, p.threshold_hu, HeadSeparation.of(p))
    center, radius = head.bounds()
    cam = OrthoCamera.looking_at(view_specs("t", ((0, -89),), p.lights)[0], center, radius, p.size_px, p.mm_per_px)
    ours, ref = depth_map(skin_mesh(cut, head, p.threshold_hu), cam), _raycast.depth_map(cam, cut, head, p.threshold_hu, p)
    a, b = np.isfinite(ours), np.isfinite(ref)
    assert (a ^ b)[ndimage.binary_erosion(a | b, iterations=2)].sum() <= 0.001 * b.sum()
    # the cut face lies within half a voxel (1 mm) of the ray caster's: where exactly a surface
    # beyond the last voxel centre sits is a convention of each method
    assert np.median(np.abs(ours[a & b] - ref[a & b])) < 1.0


@lru_cache(maxsize=1)
def _grid_render() -> dict:
    views = SurfaceRenderer(SurfaceParams(views=multiview_grid(), **SMALL)).render(head_volume())
    return {v.view_id: v for v in views}


def test_one_view_equals_the_frontal_view_of_the_grid():
    """A 1-view render is the frontal view of the 15-view render, pixel for pixel."""
    grid = _grid_render()
    assert len(grid) == 15
    single = SurfaceRenderer(SurfaceParams(**SMALL)).render(head_volume())
    assert len(single) == 1 and np.array_equal(single[0].image, grid[single[0].view_id].image)
    assert single[0].camera == grid[single[0].view_id].camera


@settings(max_examples=4, deadline=None)
@given(st.lists(st.sampled_from(multiview_grid()), min_size=1, max_size=3, unique=True))
def test_a_view_never_depends_on_the_other_views(cameras):
    grid = _grid_render()
    for view in SurfaceRenderer(SurfaceParams(views=tuple(cameras), **SMALL)).render(head_volume()):
        assert np.array_equal(view.image, grid[view.view_id].image)


def test_grid_order_does_not_change_a_view():
    """Light-major triples (the engine's order) give the same images as camera-major pairs."""
    lights = ((-1.0, 0.3, 1.0), (1.0, 0.3, 1.0))
    pairs = SurfaceRenderer(SurfaceParams(views=((0, 0), (20, 0)), lights=lights, **SMALL)).render(head_volume())
    triples = SurfaceRenderer(SurfaceParams(views=((0, 0, 0), (20, 0, 0), (0, 0, 1), (20, 0, 1)), lights=lights,
                                            **SMALL)).render(head_volume())
    assert [v.view_id for v in triples] == [pairs[i].view_id for i in (0, 2, 1, 3)]
    assert all(np.array_equal(v.image, pairs[i].image) for v, i in zip(triples, (0, 2, 1, 3)))


def test_lights_change_shading_not_geometry():
    """Two lights on one camera: the same silhouette; a light from image right brightens the right."""
    p = SurfaceParams(views=((0, 0),), lights=((-1.0, 0.0, 1.0), (1.0, 0.0, 1.0)), **SMALL)
    left, right = SurfaceRenderer(p).render(head_volume())
    assert (left.view_id, right.view_id) == ("yaw+0_pitch+0_light0", "yaw+0_pitch+0_light1")
    fg = left.image.max(axis=2) > 0
    assert np.array_equal(fg, right.image.max(axis=2) > 0)
    cols = np.flatnonzero(fg.any(axis=0))
    mid = (cols[0] + cols[-1]) // 2
    l_img, r_img = left.image.astype(float).mean(axis=2), right.image.astype(float).mean(axis=2)
    assert r_img[:, mid:][fg[:, mid:]].mean() > l_img[:, mid:][fg[:, mid:]].mean() + 10
    assert right.camera["light_dir"] == [1.0, 0.0, 1.0]


@pytest.mark.parametrize("yaw, pitch, bound", [(0, 0, 0.02), (0, -15, 0.03), (30, 0, 0.05), (-30, 15, 0.05)])
def test_a_holder_touching_the_head_stays_out_of_every_view(yaw, pitch, bound):
    """A head rest touching the back of the head and a table under it stay out of every view of the
    grid, but for the strip of the rest within ``detach_mm`` of the head, which a camera turned
    30 degrees sees beside the back of the head (~4 % of the silhouette at 1.6 mm per pixel)."""
    from defacebench.data.phantom.hardware import HardwareParams, add_cradle_and_table, back_of_head

    vol = head_volume()
    data = vol.data.copy()
    top = float((vol.affine @ [0, 0, data.shape[2] - 1, 1])[2])
    add_cradle_and_table(data, vol.affine, back_of_head(data, vol.affine, z_from=top - 120.0, body_hu=-300.0),
                         top - 110.0, HardwareParams(), air_hu=-900.0)
    assert (data != vol.data).sum() > 500  # the cradle and table are there, touching the head
    p = SurfaceParams(views=((yaw, pitch),), **SMALL)
    ref = SurfaceRenderer(p).render(vol)[0].image.max(axis=2) > 0
    cluttered = SurfaceRenderer(p).render(Volume(data, vol.affine))[0].image.max(axis=2) > 0
    assert (ref ^ cluttered).sum() < bound * ref.sum()


@settings(max_examples=30, deadline=None)
@given(st.tuples(*[st.integers(2, 17)] * 3), st.tuples(*[st.integers(1, 5)] * 3), st.integers(0, 2**32 - 1))
def test_block_any_is_a_blockwise_or(shape, factors, seed):
    mask = np.random.default_rng(seed).random(shape) < 0.1
    out = block_any(mask, factors)
    ref = mask
    for axis, f in enumerate(factors):
        ref = np.logical_or.reduceat(ref, np.arange(0, ref.shape[axis], f), axis=axis)
    assert np.array_equal(out, ref)
    back = refine(out, factors, shape)
    assert back.shape == shape and not (mask & ~back).any()  # every set voxel lies in a set block


def test_a_scan_with_shoulders_is_framed_on_the_head():
    """Neck and shoulders below the head join its component; the camera still centres on the top
    ``head_height_mm`` of it, so the head sits where it sits in a head-only scan."""
    vol = head_volume()
    below = 60  # 120 mm of shoulders under the cut neck
    data = np.concatenate([np.full(vol.data.shape[:2] + (below,), -1000.0, np.float32), vol.data], axis=2)
    data[:, 20:110, : below - 20] = 40.0  # shoulders: a slab as wide as the field of view
    k0 = int(np.flatnonzero((vol.data > -400).any(axis=(0, 1)))[0]) + 4  # joined to the neck by a cylinder
    neck = np.argwhere(vol.data[:, :, k0] > -400).mean(axis=0)
    ii, jj = np.indices(vol.data.shape[:2])
    inside = ((ii - neck[0]) ** 2 + (jj - neck[1]) ** 2 < 20**2)[:, :, None]
    data[inside & (np.arange(data.shape[2]) < below + k0)] = 40.0
    shift = np.eye(4)
    shift[2, 3] = -below
    tall = Volume(data, vol.affine @ shift)

    def top_row(volume, **kw):
        image = SurfaceRenderer(SurfaceParams(**SMALL, **kw)).render(volume)[0].image
        return int(np.flatnonzero((image.max(axis=2) > 0).any(axis=1))[0])

    ref = top_row(vol)
    assert abs(top_row(tall) - ref) < 15
    assert ref - top_row(tall, head_height_mm=1e6) > 25  # framed on the whole component: head pushed up
