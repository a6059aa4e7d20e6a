"""HeadMask.bounds from the mask's run ends equals the bounds over every voxel, bit for bit.

Why: the renderer frames its camera on these bounds; the faster computation (issue #15) must not
move a single pixel of any render, so it is compared exactly with the former all-voxel formula.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from recognizers._backends.head import HeadMask, run_ends


def all_voxel_bounds(head: HeadMask, head_height_mm: float) -> tuple[np.ndarray, float]:
    """The former definition: every voxel of the mask in world coordinates."""
    idx = np.argwhere(head.mask)
    world = idx @ head.affine[:3, :3].T + head.affine[:3, 3]
    world = world[world[:, 2] >= world[:, 2].max() - head_height_mm]
    step = float(np.linalg.norm(head.affine[:3, :3], axis=0).max())
    lo, hi = world.min(axis=0), world.max(axis=0)
    return (lo + hi) / 2.0, float(np.linalg.norm(hi - lo) / 2.0 + 2 * step)


def oblique_affine(rng: np.random.Generator) -> np.ndarray:
    """A random rotation (any sign pattern) times non-isotropic zooms, with a random offset."""
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    affine = np.eye(4)
    affine[:3, :3] = q @ np.diag(rng.uniform(0.37, 3.3, 3))
    affine[:3, 3] = rng.uniform(-200, 200, 3)
    return affine


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), height=st.sampled_from([float("inf"), 240.0, 30.0, 7.5, 0.0]),
       fill=st.floats(0.05, 0.95))
def test_bounds_equal_the_all_voxel_bounds_exactly(seed, height, fill):
    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in rng.integers(1, 23, 3))
    mask = rng.random(shape) < fill
    mask.flat[rng.integers(mask.size)] = True  # never empty (a HeadMask never is)
    head = HeadMask(mask, oblique_affine(rng), (1, 1, 1))
    centre, radius = head.bounds(height)
    want_centre, want_radius = all_voxel_bounds(head, height)
    assert np.array_equal(centre, want_centre) and radius == want_radius


def test_bounds_of_a_head_shaped_mask_on_the_sample_grid():
    """A solid ellipsoid on a 2 mm grid with a neck below it: with and without the height cut."""
    i, j, k = np.meshgrid(*(np.arange(n) for n in (49, 67, 81)), indexing="ij")
    mask = ((i - 24) / 20) ** 2 + ((j - 33) / 28) ** 2 + ((k - 50) / 30) ** 2 <= 1
    mask |= ((i - 24) ** 2 + (j - 33) ** 2 <= 64) & (k < 25)
    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    affine[:3, 3] = (-97, -134, -134)
    head = HeadMask(mask, affine, (2, 2, 2))
    for height in (float("inf"), 240.0, 100.0):
        centre, radius = head.bounds(height)
        want_centre, want_radius = all_voxel_bounds(head, height)
        assert np.array_equal(centre, want_centre) and radius == want_radius
    assert run_ends(mask).sum() < mask.sum() / 5  # the point: few voxels to transform


def test_run_ends_marks_the_first_and_last_voxel_of_every_run():
    line = np.array([[[0, 1, 1, 1, 0, 1, 0, 1, 1]]], dtype=bool)
    assert run_ends(line).astype(int).tolist() == [[[0, 1, 0, 1, 0, 1, 0, 1, 1]]]


def test_bounds_under_a_cut_through_an_oblique_head_transform_few_voxels():
    """The height cut crossing a tilted head with a neck (the sample's case): bounds exact, and
    the cut's candidates are few of the mask's voxels (why the cut case is fast)."""
    i, j, k = np.meshgrid(*(np.arange(n) for n in (45, 61, 74)), indexing="ij")
    mask = ((i - 22) / 19) ** 2 + ((j - 30) / 26) ** 2 + ((k - 44) / 28) ** 2 <= 1
    mask |= ((i - 22) ** 2 + (j - 30) ** 2 <= 60) & (k < 22)
    affine = oblique_affine(np.random.default_rng(7))
    affine[:3, :3] = np.linalg.qr(np.eye(3) + 0.15 * np.random.default_rng(3).normal(size=(3, 3)))[0] @ np.diag([2.4, 2.5, 4.0])
    head = HeadMask(mask, affine, (2, 2, 2))
    top = (np.argwhere(mask) @ affine[:3, :3].T + affine[:3, 3])[:, 2].max()
    for height in (150.0, 90.0, 33.3, 4.0):
        centre, radius = head.bounds(height)
        want_centre, want_radius = all_voxel_bounds(head, height)
        assert np.array_equal(centre, want_centre) and radius == want_radius
        assert head._cut_candidates(top - height).sum() < mask.sum() / 5
