"""The `surface` renderer on real HU volumes: framing, direction, scale, the head-only rule, speed."""

from __future__ import annotations

import numpy as np
import pytest

from defacebench.contracts import Volume
from recognizers.render.surface import SurfaceParams, SurfaceRenderer, camera_axes, view_id


def _foreground(image: np.ndarray) -> np.ndarray:
    return image.max(axis=2) > 0


def _render(volume: Volume, **kw) -> np.ndarray:
    return SurfaceRenderer(SurfaceParams(**kw)).render(volume)[0].image


def test_frontal_render_is_framed_on_the_head(renders):
    """A 512 px RGB image, head in the middle, black corners."""
    image = renders()[0]
    assert image.shape == (512, 512, 3) and image.dtype == np.uint8
    fg = _foreground(image)
    rows, cols = np.nonzero(fg)
    assert 0.2 < fg.mean() < 0.6
    assert abs(rows.mean() - 256) < 40 and abs(cols.mean() - 256) < 40
    assert not fg[:20, :20].any() and not fg[-20:, -20:].any()


def test_view_ids_and_camera_conventions(head_volume):
    """frontal looks from anterior (-y direction), up is superior, image right is the subject's left;
    the camera record names the view's triple and its scale."""
    assert view_id(0, 0) == "yaw+0_pitch+0_light0" and view_id(20, -10, 2) == "yaw+20_pitch-10_light2"
    direction, right, up = camera_axes(0, 0)
    assert np.allclose(direction, [0, -1, 0]) and np.allclose(up, [0, 0, 1]) and np.allclose(right, [-1, 0, 0])
    views = SurfaceRenderer(SurfaceParams(views=((0, 0), (20, -10)), size_px=128)).render(head_volume())
    assert [v.view_id for v in views] == ["yaw+0_pitch+0_light0", "yaw+20_pitch-10_light0"]
    cam = views[1].camera
    assert (cam["yaw"], cam["pitch"], cam["light"], cam["mm_per_px"]) == (20, -10, 0, 0.7)
    assert cam["method"] == "mesh" and len(cam["light_dir"]) == 3


def test_render_uses_the_affine_not_the_array_order(head_volume):
    """The same head stored flipped (LAS) or with permuted axes renders to the same picture."""
    vol = head_volume()
    ref = _render(vol, size_px=256, mm_per_px=1.4)
    flip = np.diag([-1.0, 1, 1, 1])
    flip[0, 3] = vol.data.shape[0] - 1
    flipped = Volume(np.ascontiguousarray(vol.data[::-1]), vol.affine @ flip)
    perm = np.eye(4)[[2, 0, 1, 3]]  # new index (k, i, j) -> old (i, j, k)
    permuted = Volume(np.ascontiguousarray(vol.data.transpose(2, 0, 1)), vol.affine @ perm.T)
    for other in (flipped, permuted):
        img = _render(other, size_px=256, mm_per_px=1.4)
        assert np.mean(np.abs(img.astype(int) - ref.astype(int))) < 3.0


def test_back_view_differs_from_frontal(head_volume):
    """Turning the camera 180 degrees shows the back of the head, not a mirror of the face."""
    front = _render(head_volume(), size_px=256, mm_per_px=1.4)
    back = SurfaceRenderer(SurfaceParams(views=((180, 0),), size_px=256, mm_per_px=1.4)).render(head_volume())[0]
    assert back.view_id == "yaw+180_pitch+0_light0"
    assert np.mean(np.abs(back.image.astype(int) - front[:, ::-1].astype(int))) > 5.0


def test_fixed_physical_scale(head_volume):
    """Coarser voxels of the same head give the same head size in pixels (mm per pixel is fixed)."""
    vol = head_volume()
    coarse = Volume(np.ascontiguousarray(vol.data[::2, ::2, ::2]), vol.affine @ np.diag([2.0, 2, 2, 1]))
    a = _foreground(_render(vol, size_px=256, mm_per_px=1.4)).sum()
    b = _foreground(_render(coarse, size_px=256, mm_per_px=1.4)).sum()
    assert abs(a - b) / a < 0.06
    wide = _foreground(_render(vol, size_px=256, mm_per_px=2.8)).sum()
    assert 0.2 < wide / a < 0.3  # twice the mm per pixel: a quarter of the area


def test_only_the_head_component_is_rendered(head_volume, rng):
    """A table and a head rest touching the back of the head never enter the frontal image."""
    from defacebench.data.phantom.hardware import HardwareParams, add_cradle_and_table, back_of_head

    vol = head_volume()
    data = vol.data.copy()
    top = float((vol.affine @ [0, 0, data.shape[2] - 1, 1])[2])
    back = back_of_head(data, vol.affine, z_from=top - 120.0, body_hu=-300.0)
    add_cradle_and_table(data, vol.affine, back, top - 110.0, HardwareParams(), air_hu=-900.0)
    assert (data != vol.data).sum() > 500  # the cradle and table are there, touching the head
    ref = _foreground(_render(vol, size_px=256, mm_per_px=1.4))
    cluttered = _foreground(_render(Volume(data, vol.affine), size_px=256, mm_per_px=1.4))
    assert abs(int(cluttered.sum()) - int(ref.sum())) < 0.03 * ref.sum()
    cols_ref, cols = np.flatnonzero(ref.any(axis=0)), np.flatnonzero(cluttered.any(axis=0))
    assert abs(cols[0] - cols_ref[0]) <= 3 and abs(cols[-1] - cols_ref[-1]) <= 3  # no rest beside the head


def test_small_oblique_volume_and_empty_volume():
    """A small non-cubic ellipsoid with an oblique affine is rendered; an empty volume is black."""
    shape = (30, 40, 24)
    idx = np.indices(shape).astype(float)
    centre = (np.array(shape) - 1) / 2
    r = np.sqrt(sum(((idx[a] - centre[a]) / (shape[a] / 2.5)) ** 2 for a in range(3)))
    data = np.where(r < 1, 40.0, -1000.0).astype(np.float32)
    c, s = np.cos(0.3), np.sin(0.3)
    affine = np.array([[3 * c, -4 * s, 0, -40], [3 * s, 4 * c, 0, -60], [0, 0, 5, -50], [0, 0, 0, 1]])
    image = _render(Volume(data, affine), size_px=128, mm_per_px=1.5)
    assert 0.1 < _foreground(image).mean() < 0.4
    empty = SurfaceRenderer(SurfaceParams(size_px=64)).render(Volume(np.full(shape, -1000, np.float32), affine))
    assert empty[0].view_id == "yaw+0_pitch+0_light0" and empty[0].image.shape == (64, 64, 3) and empty[0].image.max() == 0


def test_threshold_is_respected(head_volume):
    """Raising the threshold above soft tissue (bone only) changes the render: skin is gone."""
    skin = _render(head_volume(), size_px=128, mm_per_px=2.8)
    bone = _render(head_volume(), size_px=128, mm_per_px=2.8, threshold_hu=400.0)
    assert _foreground(bone).sum() < _foreground(skin).sum()


@pytest.mark.slow
def test_render_time_per_view_512_cube(head_volume):
    """<= 1 s per view on a 512 x 512 x 300 volume (one core, warm)."""
    import time

    from scipy import ndimage

    vol = head_volume()
    factors = np.array([512, 512, 300]) / np.array(vol.data.shape)
    data = ndimage.zoom(vol.data, factors, order=1).astype(np.float32)
    big = Volume(data, vol.affine @ np.diag([*(1 / factors), 1.0]))
    renderer = SurfaceRenderer()
    renderer.render(big)
    start = time.perf_counter()
    renderer.render(big)
    assert time.perf_counter() - start < 1.5  # 1 s target, margin for a loaded CI machine
