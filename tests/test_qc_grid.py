"""Cheap QC (issue #15): the coarse QC grid and back, slice-wise hole filling in one call, the
original's masks computed once (Anatomy, cached by the qc stage per acquisition) and the defaced
volume judged from what changed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from defacebench.anatomy import qc as qc_module
from defacebench.anatomy.brainmask import ct_brain_mask, dice, fill_slices
from defacebench.anatomy.grid import coarsen, grid_factors, refine
from defacebench.anatomy.qc import Anatomy, QCParams, assess, face_region, original_anatomy
from defacebench.contracts import Volume


def _oblique(shape=(13, 10, 7), zooms=(1.5, 2.0, 2.5)) -> Volume:
    """A small non-cubic volume with a rotated, anisotropic, shifted affine and distinct voxel values."""
    a = np.deg2rad(12.0)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag(zooms)
    affine[:3, 3] = [-20.0, 7.5, 3.0]
    data = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    return Volume(data, affine)


def _centres(volume: Volume) -> np.ndarray:
    ijk = np.indices(np.shape(volume.data)).reshape(3, -1)
    return (volume.affine[:3, :3] @ ijk + volume.affine[:3, 3:]).reshape((3,) + np.shape(volume.data))


def test_grid_factors_bring_voxels_near_the_qc_grid():
    assert grid_factors((2.0, 2.0, 2.0), 4.0) == (2, 2, 2)
    assert grid_factors((0.5, 1.0, 5.0), 4.0) == (8, 4, 1)
    assert grid_factors((2.0, 2.0, 2.0), 0.0) == (1, 1, 1)


def test_coarse_voxels_are_block_means_at_block_centres():
    fine = _oblique()
    factors = (2, 3, 2)
    coarse = coarsen(fine, factors)
    assert coarse.data.shape == (7, 4, 4) and coarse.modality == fine.modality
    block = fine.data[2:4, 3:6, 4:6]
    assert coarse.data[1, 1, 2] == pytest.approx(block.mean())
    fine_xyz, coarse_xyz = _centres(fine), _centres(coarse)
    np.testing.assert_allclose(coarse_xyz[:, 1, 1, 2], fine_xyz[:, 2:4, 3:6, 4:6].reshape(3, -1).mean(axis=1),
                               atol=1e-9)
    # a partial last block (13 = 6 x 2 + 1 along i) averages the voxels it has
    assert coarse.data[6, 0, 0] == pytest.approx(fine.data[12, 0:3, 0:2].mean())


def test_refine_repeats_blocks_and_keeps_the_fine_shape():
    coarse = np.zeros((7, 4, 4), bool)
    coarse[1, 2, 3] = True
    fine = refine(coarse, (2, 3, 2), (13, 10, 7))
    assert fine.shape == (13, 10, 7) and fine.sum() == 2 * 3 * 1  # the last k block holds one voxel (7 = 3 x 2 + 1)
    assert fine[2:4, 6:9, 6].all()


@settings(max_examples=60, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 9))), st.integers(0, 2))
def test_fill_slices_equals_filling_every_slice(mask, axis):
    expected = np.empty_like(mask)
    for n in range(mask.shape[axis]):
        index = [slice(None)] * 3
        index[axis] = n
        expected[tuple(index)] = ndimage.binary_fill_holes(mask[tuple(index)])
    assert np.array_equal(fill_slices(mask, axis), expected)


@pytest.fixture(scope="module")
def head(ellipsoid_ct) -> Volume:
    return ellipsoid_ct(zooms=(2.0, 1.75, 2.25), shape=(92, 132, 104))


def test_fine_grid_anatomy_is_the_full_resolution_masks(head):
    fine = original_anatomy(head, QCParams(grid_mm=0))
    assert fine.factors == (1, 1, 1)
    assert np.array_equal(fine.brain, ct_brain_mask(head)) and np.array_equal(fine.face, face_region(head))


def test_coarse_anatomy_agrees_with_the_fine_masks(head):
    coarse, fine = original_anatomy(head), original_anatomy(head, QCParams(grid_mm=0))
    assert coarse.factors == (2, 2, 2) and coarse.brain.shape == head.data.shape
    assert dice(coarse.brain, fine.brain) > 0.97 and dice(coarse.head, fine.head) > 0.97
    assert dice(coarse.face, fine.face) > 0.85


def test_anatomy_round_trips_through_its_file(head, tmp_path):
    anatomy = original_anatomy(head)
    anatomy.save(tmp_path / "anatomy.npz")
    back = Anatomy.load(tmp_path / "anatomy.npz")
    assert back.factors == anatomy.factors
    for name in ("head", "brain", "face"):
        assert np.array_equal(getattr(back, name), getattr(anatomy, name)) and getattr(back, name).dtype == bool


def test_given_anatomy_gives_the_same_result_without_segmenting_the_original(head, monkeypatch):
    defaced = Volume(np.where(face_region(head), -1000.0, head.data).astype(np.float32), head.affine)
    anatomy = original_anatomy(head)
    expected = assess(head, defaced)
    calls = []
    real = qc_module.brain_mask
    monkeypatch.setattr(qc_module, "brain_mask", lambda v, p: calls.append(np.shape(v.data)) or real(v, p))
    assert assess(head, defaced, anatomy=anatomy) == expected
    assert calls == []  # neither the original (given) nor the defaced volume (judged from what changed)


def test_unchanged_volume_needs_no_segmentation(head, monkeypatch):
    anatomy = original_anatomy(head)
    monkeypatch.setattr(qc_module, "brain_mask", lambda *a: pytest.fail("segmented an unchanged volume"))
    result = assess(head, Volume(head.data.copy(), head.affine), anatomy=anatomy)
    assert result.brain_dice == 1.0 and result.label == "face_intact"


def test_qc_grid_moves_labels_and_brain_dice_little(head):
    brain = ct_brain_mask(head)
    cut = np.zeros(head.data.shape, bool)
    cut[:, :, np.nonzero(brain)[2].max() - 5:] = True  # a vertex slab through skull into brain
    for removed in (face_region(head), face_region(head) | cut):
        defaced = Volume(np.where(removed, 0.0, head.data).astype(np.float32), head.affine)
        fine, coarse = assess(head, defaced, params=QCParams(grid_mm=0)), assess(head, defaced)
        assert coarse.label == fine.label
        assert abs(coarse.brain_dice - fine.brain_dice) < 0.02
