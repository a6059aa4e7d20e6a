"""The renderers' view grid: ids, order, presets, validation, TOML-able params, camera frames."""

from __future__ import annotations

import dataclasses
import tomllib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from defacebench.errors import PluginError
from recognizers._backends.views import (
    OrthoCamera, angle_range, camera_axes, light_grid, multiview_grid, published_grid, view_id, view_specs)
from recognizers.render.surface import SurfaceParams, SurfaceRenderer
from recognizers.render.vtk_volume import VtkVolumeParams


def test_view_ids_are_readable_and_signed():
    assert view_id(15, -15, 0) == "yaw+15_pitch-15_light0"
    assert view_id(-0.0, 0.0) == "yaw+0_pitch+0_light0"  # never "-0"
    assert view_id(7.5, 30, 8) == "yaw+7.5_pitch+30_light8"


def test_specs_are_camera_major_with_light_indices():
    specs = view_specs("t", ((0, 0), (15, -15)), ((0, 0, 1), (1, 0, 1), (0, 1, 1)))
    assert [s.view_id for s in specs] == [
        "yaw+0_pitch+0_light0", "yaw+0_pitch+0_light1", "yaw+0_pitch+0_light2",
        "yaw+15_pitch-15_light0", "yaw+15_pitch-15_light1", "yaw+15_pitch-15_light2"]
    assert specs[4].light_dir == (1.0, 0.0, 1.0)


def test_triples_name_one_light_and_keep_their_order():
    """The engine's grids are (yaw, pitch, light) triples, frontal first, light-major."""
    lights = ((0, 0, 1), (1, 0, 1))
    specs = view_specs("t", ((0, 0, 0), (15, 0, 0), (0, 0, 1), (15, 0, 1)), lights)
    assert [s.view_id for s in specs] == ["yaw+0_pitch+0_light0", "yaw+15_pitch+0_light0",
                                          "yaw+0_pitch+0_light1", "yaw+15_pitch+0_light1"]
    assert specs[2].light_dir == (1.0, 0.0, 1.0)
    assert [s.view_id for s in view_specs("t", SurfaceParams().views, SurfaceParams().lights)] == [
        "yaw+0_pitch+0_light0"]


def test_multiview_and_published_grids():
    """The lead's multiview grid: yaw -30..30 step 15 x pitch -15..15 step 15 = 15 cameras; the
    published attack: 9 cameras x 9 lights = 81 views, every light from the front and above."""
    grid = multiview_grid()
    assert len(grid) == 15 and (-30.0, -15.0) in grid and (30.0, 15.0) in grid and (0.0, 0.0) in grid
    assert angle_range(-30, 30, 15) == (-30.0, -15.0, 0.0, 15.0, 30.0)
    assert len(multiview_grid(yaw=(-40, 40, 10), pitch=(-20, 20, 10))) == 45
    views, lights = published_grid()
    specs = view_specs("t", views, lights)
    assert len(specs) == 81 and len({s.view_id for s in specs}) == 81
    assert all(d[2] > 0 and d[1] > 0 for d in lights)  # from the front and above
    assert np.allclose(light_grid((0,), (0,))[0], (0, 0, 1))


@pytest.mark.parametrize("views, lights, field", [
    ((), ((0, 0, 1),), "views"),
    (((0, float("nan")),), ((0, 0, 1),), "views"),
    (((0, 0, 1),), ((0, 0, 1),), "views"),  # light 1 of one light
    (((0, 0),), (), "lights"),
    (((0, 0),), ((0, 0, 0),), "lights"),
    (((0, 0), (0.0, -0.0)), ((0, 0, 1),), "views"),  # the same camera twice
])
def test_bad_grids_are_refused_naming_the_field(views, lights, field):
    with pytest.raises(PluginError, match=f"params.{field}"):
        view_specs("surface", views, lights)
    with pytest.raises(PluginError, match="surface"):
        SurfaceRenderer(SurfaceParams(views=views, lights=lights))


def test_unknown_method_is_refused():
    with pytest.raises(PluginError, match="params.method"):
        SurfaceRenderer(SurfaceParams(method="splat"))


def _plain(value) -> bool:
    if isinstance(value, tuple):
        return all(_plain(v) for v in value)
    return isinstance(value, (bool, int, float, str))


@pytest.mark.parametrize("params", [SurfaceParams(), VtkVolumeParams(), VtkVolumeParams.seed()])
def test_params_are_toml_able(params):
    """Every field is a bool/int/float/str or a tuple of them, and a TOML table of the grid fields
    (lists, as tomllib gives them) builds a renderer with the same views."""
    assert all(_plain(getattr(params, f.name)) for f in dataclasses.fields(params))
    table = tomllib.loads("views = [[-15, 0], [0, 0], [15, 0]]\nlights = [[-0.3, 0.35, 1.0], [0.3, 0.35, 1.0]]")
    grid = dataclasses.replace(SurfaceParams(), **{k: tuple(map(tuple, v)) for k, v in table.items()})
    assert [s.view_id for s in SurfaceRenderer(grid).specs][:2] == ["yaw-15_pitch+0_light0", "yaw-15_pitch+0_light1"]


@settings(max_examples=40, deadline=None)
@given(st.floats(-89, 89), st.floats(-80, 80))
def test_camera_frame_is_right_handed_and_projects_back(yaw, pitch):
    """Axes are orthonormal with right x up = -direction; projecting a pixel's world point gives
    the pixel back, at depth 0 on the near plane."""
    direction, right, up = camera_axes(yaw, pitch)
    frame = np.stack([direction, right, up])
    assert np.allclose(frame @ frame.T, np.eye(3), atol=1e-9)
    assert np.allclose(np.cross(right, up), -direction, atol=1e-9)
    assert up[2] >= -1e-9  # the top of the head stays up
    spec = view_specs("t", ((yaw, pitch),), ((0, 0, 1),))[0]
    cam = OrthoCamera.looking_at(spec, np.array([3.0, -2.0, 40.0]), 150.0, 64, 1.3)
    rows, cols = np.array([0.0, 10.0, 63.0]), np.array([5.0, 31.5, 0.0])
    x, y, z = cam.project(cam.world(rows, cols))
    assert np.allclose(x, cols) and np.allclose(y, rows) and np.allclose(z, 0.0, atol=1e-9)
    cx, cy, cz = cam.project(cam.center[None, :])
    assert np.allclose([cx[0], cy[0], cz[0]], [31.5, 31.5, 150.0])


@settings(max_examples=30, deadline=None)
@given(st.floats(-60, 60), st.floats(-40, 40))
def test_lights_are_fixed_to_the_head(yaw, pitch):
    """A light is given in the frontal camera's frame: the frontal view sees it as given, a turned
    camera sees the same world direction (a light from the face's front comes from the side the
    face turns to)."""
    from recognizers._backends.views import head_frame

    light = (0.2, 0.35, 1.0)
    spec = view_specs("t", ((yaw, pitch),), (light,))[0]
    cam = OrthoCamera.looking_at(spec, np.zeros(3), 100.0, 32, 1.0)
    world = np.asarray(light) @ np.stack(head_frame())
    local = cam.light()
    assert np.isclose(np.linalg.norm(local), 1.0)
    assert np.allclose(local * np.linalg.norm(world), [world @ cam.right, world @ cam.up, -world @ cam.direction])
    front = OrthoCamera.looking_at(view_specs("t", ((0, 0),), (light,))[0], np.zeros(3), 100.0, 32, 1.0)
    assert np.allclose(front.light(), np.asarray(light) / np.linalg.norm(light))
    ahead = OrthoCamera.looking_at(view_specs("t", ((30, 0),), ((0, 0, 1),))[0], np.zeros(3), 100.0, 32, 1.0)
    assert np.allclose(ahead.light(), [-0.5, 0.0, np.sqrt(3) / 2])  # yaw +30: the face looks image-left
