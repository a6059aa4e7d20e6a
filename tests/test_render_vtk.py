"""The `vtk_volume` renderer (the seed study's VTK ray-cast render), offscreen through EGL."""

from __future__ import annotations

import numpy as np
import pytest

from recognizers.render.vtk_volume import EGL_PACKAGES, VtkVolumeParams, VtkVolumeRenderer


@pytest.fixture(scope="module")
def renderer():
    plugin = VtkVolumeRenderer()
    avail = plugin.available()
    if not avail.ok:
        assert EGL_PACKAGES in avail.reason or "vtk" in avail.reason  # the reason says what to install
        pytest.skip(avail.reason)
    return plugin


def test_study_settings_are_the_defaults():
    p = VtkVolumeParams()
    assert p.size_px == 800 and p.camera_position == (0.0, 700.0, 290.0) and p.dolly == 2.0
    assert dict((hu, a) for hu, a in p.opacity)[0] == 0.2 and p.color[0] == (-3024, 0, 0, 0)


def test_renders_the_head_offscreen(head_volume, renderer):
    """800 x 800 RGB, the head lit in skin tones on a black background, same image twice."""
    small = VtkVolumeRenderer(VtkVolumeParams(size_px=200))
    views = small.render(head_volume())
    assert [v.view_id for v in views] == ["frontal"]
    image = views[0].image
    assert image.shape == (200, 200, 3) and image.dtype == np.uint8
    assert image.mean() > 20 and image[:5, :5].max() < 10  # head present, black corner
    assert image[..., 0].mean() >= image[..., 2].mean()  # warm (skin) colours dominate
    assert np.array_equal(image, small.render(head_volume())[0].image)
    assert views[0].camera["view_up"][2] > 0.9
