"""The `vtk_volume` renderer (the seed study's VTK ray-cast render), offscreen through EGL: the
default head framing (same camera grid and scale as `surface`) and the study's own camera."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from defacebench.contracts import Volume
from defacebench.errors import PluginError
from recognizers.render.surface import SurfaceParams, SurfaceRenderer
from recognizers.render.vtk_volume import EGL_PACKAGES, VtkVolumeParams, VtkVolumeRenderer

SMALL = dict(size_px=160, mm_per_px=2.0)


@lru_cache(maxsize=1)
def head_volume() -> Volume:
    """The synthetic CT head of the attacker tests (pydeface's template in HU, 2 mm voxels)."""
    from defacebench.data.phantom.anatomy import head_ct

    return Volume(*head_ct(2.0))


@pytest.fixture(scope="module")
def renderer():
    plugin = VtkVolumeRenderer()
    avail = plugin.available()
    if not avail.ok:
        assert EGL_PACKAGES in avail.reason or "vtk" in avail.reason  # the reason says what to install
        pytest.skip(avail.reason)
    return plugin


@lru_cache(maxsize=None)
def _render(**kw) -> tuple:
    return tuple(VtkVolumeRenderer(VtkVolumeParams(**kw)).render(head_volume()))


def _fg(image: np.ndarray) -> np.ndarray:
    return image.max(axis=2) > 10


def test_defaults_frame_the_head_and_seed_keeps_the_study_settings():
    p, seed = VtkVolumeParams(), VtkVolumeParams.seed()
    assert p.camera == "head" and p.views == ((0.0, 0.0, 0),) and p.size_px == 512 and p.mm_per_px == 0.7
    assert seed.camera == "seed" and seed.size_px == 800 and seed.camera_position == (0.0, 700.0, 290.0)
    assert seed.dolly == 2.0 and seed.lights == ((0.0, 0.0, 1.0),)
    assert dict((hu, a) for hu, a in p.opacity)[0] == 0.2 and p.color[0] == (-3024, 0, 0, 0)
    with pytest.raises(PluginError, match="params.camera"):
        VtkVolumeRenderer(VtkVolumeParams(camera="study"))


def test_renders_the_head_offscreen(renderer):
    """RGB, the head lit in skin tones on a black background, same image twice, camera recorded."""
    views = _render(**SMALL)
    assert [v.view_id for v in views] == ["yaw+0_pitch+0_light0"]
    image = views[0].image
    assert image.shape == (160, 160, 3) and image.dtype == np.uint8
    assert image.mean() > 20 and image[:5, :5].max() < 10  # head present, black corner
    assert image[..., 0].mean() >= image[..., 2].mean()  # warm (skin) colours dominate
    assert np.array_equal(image, VtkVolumeRenderer(VtkVolumeParams(**SMALL)).render(head_volume())[0].image)
    cam = views[0].camera
    assert (cam["yaw"], cam["pitch"], cam["light"], cam["mm_per_px"], cam["camera"]) == (0, 0, 0, 2.0, "head")
    assert cam["up"][2] > 0.9


@pytest.mark.parametrize("yaw, pitch", [(0, 0), (30, -15)])
def test_head_camera_frames_like_surface(renderer, yaw, pitch):
    """Same camera grid, centre and mm per pixel as `surface`: the silhouettes overlap."""
    vtk = _render(views=((yaw, pitch),), **SMALL)[0].image
    surf = SurfaceRenderer(SurfaceParams(views=((yaw, pitch),), **SMALL)).render(head_volume())[0].image
    a, b = vtk.max(axis=2) > 0, surf.max(axis=2) > 0  # silhouettes (shadowed skin is near black)
    assert (a & b).sum() / (a | b).sum() > 0.9


def test_a_view_does_not_depend_on_the_other_views(renderer):
    grid = {v.view_id: v.image for v in _render(views=((-30, 0), (0, 0), (15, 15)), **SMALL)}
    assert len(grid) == 3
    assert np.array_equal(grid["yaw+0_pitch+0_light0"], _render(**SMALL)[0].image)


def test_lights_are_camera_lights(renderer):
    """A light from image right brightens the right half; geometry stays."""
    left, right = _render(views=((0, 0),), lights=((-1.0, 0.0, 1.0), (1.0, 0.0, 1.0)), **SMALL)
    fg = _fg(left.image) & _fg(right.image)
    cols = np.flatnonzero(fg.any(axis=0))
    half = np.zeros_like(fg)
    half[:, (cols[0] + cols[-1]) // 2:] = True
    assert right.image.mean(axis=2)[fg & half].mean() > left.image.mean(axis=2)[fg & half].mean() + 10


def test_head_camera_uses_the_affine(renderer):
    """The same head stored with its axes permuted (a proper rotation of the grid) renders alike."""
    vol = head_volume()
    perm = np.eye(4)[[2, 0, 1, 3]]  # new index (k, i, j) -> old (i, j, k)
    permuted = Volume(np.ascontiguousarray(vol.data.transpose(2, 0, 1)), vol.affine @ perm.T)
    ref = _render(**SMALL)[0].image
    other = VtkVolumeRenderer(VtkVolumeParams(**SMALL)).render(permuted)[0].image
    assert (_fg(ref) ^ _fg(other)).sum() < 0.03 * _fg(ref).sum()
    assert np.mean(np.abs(ref.astype(int) - other.astype(int))) < 6.0


def test_seed_camera_is_the_studys(renderer):
    """camera = "seed": the study's camera reset to the volume and dollied x2 fills the frame with
    the head (its forehead on this cropped volume); yaw turns it about the focal point."""
    front, turned = VtkVolumeRenderer(VtkVolumeParams.seed(size_px=120, views=((0, 0), (30, 0)))).render(head_volume())
    cam = front.camera
    assert cam["camera"] == "seed" and cam["dolly"] == 2.0 and cam["view_up"][2] > 0.8
    back = np.asarray(cam["position"]) - np.asarray(cam["focal_point"])  # toward the camera
    assert np.allclose(back / np.linalg.norm(back), np.array([0, 700, 290]) / np.linalg.norm([0, 700, 290]))
    assert _fg(front.image).mean() > 0.5  # dollied x2: the head fills most of the frame
    assert not np.array_equal(front.image, turned.image) and turned.camera["yaw"] == 30
