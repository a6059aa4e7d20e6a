"""The `vtk_volume` renderer (the seed study's VTK ray-cast render), offscreen through EGL: the
default head framing (same camera grid and scale as `surface`) and the study's own camera."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from defacebench.contracts import Volume
from defacebench.errors import PluginError
from recognizers.render.surface import SurfaceParams, SurfaceRenderer
from recognizers.render.vtk_volume import EGL_PACKAGES, STUDY_OPACITY, VtkVolumeParams, VtkVolumeRenderer, smoothed

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
    assert seed.opacity == STUDY_OPACITY and dict(seed.opacity)[0] == 0.2 and p.color[0] == (-3024, 0, 0, 0)
    assert (seed.smooth_mm, seed.smooth_voxels, seed.head_only) == (0.0, 0.0, False)
    assert (p.smooth_mm, p.smooth_voxels, p.head_only) == (1.0, 0.6, True)
    assert dict(p.opacity)[-300] == 1.0  # the default ramp makes skin opaque
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
    """Same camera grid, centre and mm per pixel as `surface`: the silhouettes overlap. A light
    along the view lights every visible point (the opaque skin has no ambient term)."""
    head_on = ((0.0, 0.0, 1.0),)
    vtk = _render(views=((yaw, pitch),), lights=head_on, **SMALL)[0].image
    surf = SurfaceRenderer(SurfaceParams(views=((yaw, pitch),), lights=head_on, **SMALL)).render(head_volume())[0].image
    a, b = vtk.max(axis=2) > 0, surf.max(axis=2) > 0  # silhouettes
    assert (a & b).sum() / (a | b).sum() > 0.85
    # beyond a one-pixel edge (the skin ramp's edge is not the -400 HU isosurface) they agree
    from scipy import ndimage
    grown_a, grown_b = ndimage.binary_dilation(a, iterations=2), ndimage.binary_dilation(b, iterations=2)
    assert (a & ~grown_b).sum() < 0.03 * a.sum() and (b & ~grown_a).sum() < 0.03 * b.sum()


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


def _slab(bone: bool, holder: bool) -> Volume:
    """A soft-tissue block (0 HU) in air, 1.5 x 2 x 2.5 mm voxels, anterior face at +y; optionally a
    bone plate (1000 HU) 4 mm under that face and a separate holder plate behind and beside it."""
    data = np.full((40, 36, 30), -1000.0, np.float32)
    data[10:30, 8:26, 6:24] = 0.0
    if bone:
        data[15:25, 22:24, 10:20] = 1000.0  # y voxels 22-23: 4-8 mm behind the face at y = 26
    if holder:
        data[2:38, 1:4, 2:28] = -100.0  # posterior plate, wider than the block, 8 mm behind it
    affine = np.diag([1.5, 2.0, 2.5, 1.0])
    affine[:3, 3] = (-30.0, -36.0, -37.5)
    return Volume(data, affine)


def test_default_skin_is_opaque_and_the_studys_is_not(renderer):
    """Bone 4 mm under the skin shows through the study's ramp (the 'spectacles' of the orbits on
    the sample) but not through the default skin ramp."""
    def diff(**kw):
        r = VtkVolumeRenderer(VtkVolumeParams(size_px=96, mm_per_px=1.0, head_only=False, **kw))
        a, b = (r.render(_slab(bone, False))[0].image.astype(int) for bone in (False, True))
        return np.abs(a - b).max()
    raw = dict(smooth_mm=0.0, smooth_voxels=0.0)
    assert diff(opacity=STUDY_OPACITY, **raw) > 20
    assert diff(**raw) <= 2


def test_head_only_drops_a_detached_holder(renderer):
    """The holder plate behind the block is in the render with head_only off, gone by default."""
    kw = dict(size_px=96, mm_per_px=1.0, detach_mm=4.0, regrow_mm=2.0)
    with_holder = VtkVolumeRenderer(VtkVolumeParams(head_only=False, **kw)).render(_slab(False, True))[0].image
    default = VtkVolumeRenderer(VtkVolumeParams(**kw)).render(_slab(False, True))[0].image
    alone = VtkVolumeRenderer(VtkVolumeParams(**kw)).render(_slab(False, False))[0].image
    assert _fg(with_holder).sum() > 1.3 * _fg(alone).sum()
    assert (_fg(default) ^ _fg(alone)).sum() < 0.02 * _fg(alone).sum()


def test_smoothing_keeps_a_constant_and_reduces_noise():
    rng = np.random.default_rng(0)
    vol = Volume(rng.normal(0, 30, (20, 16, 12)).astype(np.float32), np.diag([0.5, 0.8, 2.0, 1.0]))
    assert smoothed(vol, 0.0) is vol
    assert smoothed(vol, 1.0).data.std() < 0.5 * vol.data.std()
    flat = Volume(np.full((8, 9, 10), 40.0, np.float32), np.eye(4))
    assert np.allclose(smoothed(flat, 1.5).data, 40.0)


def test_smoothing_in_voxels_follows_thick_slices():
    """An impulse spreads ``sigma_voxels`` voxels along a 5 mm axis where 1 mm alone is < 0.5 voxel."""
    data = np.zeros((15, 15, 15), np.float32)
    data[7, 7, 7] = 1.0
    vol = Volume(data, np.diag([0.5, 0.5, 5.0, 1.0]))
    def spread(out, axis):
        profile = out.data.sum(axis=tuple(a for a in range(3) if a != axis))
        x = np.arange(15) - 7
        return float(np.sqrt((profile * x ** 2).sum() / profile.sum()))
    assert spread(smoothed(vol, 1.0, 0.0), 2) < 0.1  # sigma 0.2 voxel: the slices stay apart
    assert spread(smoothed(vol, 1.0, 0.6), 2) == pytest.approx(0.6, abs=0.05)
    assert spread(smoothed(vol, 1.0, 0.6), 0) == pytest.approx(2.0, abs=0.05)  # 1 mm = 2 voxels of 0.5 mm
