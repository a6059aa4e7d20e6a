"""Gantry tilt: shear detection and resampling to an orthogonal grid (defacebench.data.tilt)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from defacebench.data.tilt import detilt, is_tilted, orthogonal_affine, shear_deg


def tilted_affine(tilt_deg: float, spacing=(0.9, 1.1, 2.5), origin=(-50.0, -40.0, -30.0)) -> np.ndarray:
    """A CT grid whose slice planes are tilted about x while the table steps along z."""
    g = np.deg2rad(tilt_deg)
    a = np.eye(4)
    a[:3, 0] = (spacing[0], 0, 0)
    a[:3, 1] = (0, spacing[1] * np.cos(g), spacing[1] * np.sin(g))
    a[:3, 2] = (0, 0, spacing[2])
    a[:3, 3] = origin
    return a


@settings(max_examples=40, deadline=None)
@given(tilt=st.floats(-30.0, 30.0))
def test_shear_angle_is_the_gantry_tilt_and_the_target_grid_is_orthogonal(tilt):
    a = tilted_affine(tilt)
    assert abs(shear_deg(a) - abs(tilt)) < 1e-6
    t = orthogonal_affine(a)
    m = t[:3, :3]
    np.testing.assert_allclose(m.T @ m, np.diag(np.diag(m.T @ m)), atol=1e-9)
    np.testing.assert_allclose(t[:3, [0, 2, 3]], a[:3, [0, 2, 3]])  # row axis, table step, origin kept
    assert is_tilted(a) == (abs(tilt) > 0.01)


def test_detilt_keeps_a_point_where_it_is_in_the_world():
    a = tilted_affine(20.0)
    shape = (40, 50, 30)
    data = np.full(shape, -1000.0, np.float32)
    target = np.array([-30.0, -10.0, 20.0])
    idx = np.linalg.solve(a[:3, :3], target - a[:3, 3])
    i, j, k = np.round(idx).astype(int)
    data[i - 1:i + 2, j - 1:j + 2, k - 1:k + 2] = 1000.0
    world = a[:3, :3] @ np.array([i, j, k]) + a[:3, 3]
    out, grid = detilt(data, a)
    hot = np.argwhere(out > 500).mean(axis=0)
    np.testing.assert_allclose(grid[:3, :3] @ hot + grid[:3, 3], world, atol=1.5)
    assert out.min() == -1000.0  # outside the acquired slab: the series' minimum (air)
    same, aff = detilt(data, np.diag([1.0, 1.0, 2.0, 1.0]))
    assert same is data and not is_tilted(aff)
