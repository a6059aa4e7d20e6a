"""QC on a T1-weighted head: brain damage is what the defacer changed inside the original's brain
mask. A face-only defacing is ``ok`` with brain Dice 1.0 even where removing the face moves the MRI
rules' references (the head's Otsu threshold, the white-matter level of its deep voxels); a cut
through the brain is ``brain_damaged``."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from defacebench.anatomy import qc as qc_module
from defacebench.anatomy.masks import brain_mask, head_and_brain_masks, head_mask
from defacebench.anatomy.mrimask import _edt_in_box
from defacebench.anatomy.qc import assess, face_region, original_anatomy
from defacebench.contracts import Volume


def _t1_head(shape=(44, 58, 50), zooms=(3.5, 3.25, 3.75), tilt_deg=9.0) -> Volume:
    """An ellipsoid T1w head on a tilted, anisotropic grid: bright scalp fat, dark skull, a brain of
    white matter (600) with a darker rim (400), a bright nose and a Rician-like air floor."""
    t = np.deg2rad(tilt_deg)
    rot = np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag(zooms)
    affine[:3, 3] = -affine[:3, :3] @ ((np.array(shape) - 1) / 2.0) + np.array([2.0, 8.0, -4.0])
    ijk = np.indices(shape).reshape(3, -1).astype(float)
    x, y, z = (affine[:3, :3] @ ijk + affine[:3, 3:]).reshape((3,) + shape)
    x0, y0, z0 = x - 2.0, y - 8.0, z + 4.0
    r = np.sqrt((x0 / 72) ** 2 + (y0 / 92) ** 2 + (z0 / 96) ** 2)
    data = np.abs(np.random.default_rng(0).normal(0.0, 15.0, shape)).astype(np.float32)
    data[r <= 1.0] = 900.0
    data[(r <= 0.93) & (r > 0.85)] = 60.0
    data[r <= 0.85] = 400.0
    data[r <= 0.75] = 600.0
    nose = (np.abs(x0) < 16) & (y0 > 78) & (y0 < 108) & (z0 > -45) & (z0 < -8) & (r > 1.0)
    data[nose] = 900.0
    return Volume(data, affine, "mri")


@pytest.fixture(scope="module")
def head() -> Volume:
    return _t1_head()


def test_the_synthetic_t1_head_has_a_brain_and_a_face(head):
    anatomy = original_anatomy(head)
    assert anatomy.brain.sum() > 5000 and anatomy.face.sum() > 200
    assert not (anatomy.brain & (head.data > 800)).any()  # scalp fat is not brain


def test_face_only_removal_is_ok_with_the_brain_untouched(head):
    defaced = Volume(np.where(face_region(head), 0.0, head.data).astype(np.float32), head.affine, "mri")
    result = assess(head, defaced)
    assert result.label == "ok", result
    assert result.brain_voxels_changed == 0 and result.brain_dice == 1.0
    assert result.face_removed_fraction > 0.9


def test_face_removal_with_a_changed_scalp_is_still_ok(head):
    """Zero the face and brighten the scalp behind it (a refacer's fill): the intensities the MRI
    rule's references come from change, the brain voxels do not, so the label stays ok."""
    face = face_region(head)
    behind = (head.data > 800) & ~face
    data = np.where(face, 0.0, np.where(behind, 2500.0, head.data)).astype(np.float32)
    defaced = Volume(data, head.affine, "mri")
    result = assess(head, defaced)
    assert result.label == "ok" and result.brain_dice == 1.0, result


def test_brain_cut_is_brain_damaged(head):
    anatomy = original_anatomy(head)
    ijk_z = np.nonzero(anatomy.brain)[2]
    cut = np.zeros(head.data.shape, bool)
    cut[:, :, int(np.percentile(ijk_z, 80)):] = True  # the vertex slab, through scalp and skull into brain
    defaced = Volume(np.where(face_region(head) | cut, 0.0, head.data).astype(np.float32), head.affine, "mri")
    result = assess(head, defaced, anatomy=anatomy)
    assert result.label == "brain_damaged", result
    assert result.brain_changed_fraction > 0.05 and result.brain_dice < 0.98


def test_a_few_changed_brain_voxels_are_brain_damaged_above_the_threshold(head):
    """``brain_changed_max`` (1 %) decides: 0.5 % of the brain changed passes, 2 % does not."""
    anatomy = original_anatomy(head)
    idx = np.flatnonzero(anatomy.brain)
    for share, expected in ((0.005, "ok"), (0.02, "brain_damaged")):
        data = np.where(face_region(head), 0.0, head.data).astype(np.float32).reshape(-1)
        data[idx[: int(share * idx.size)]] += 100.0  # intensity changed, not zeroed
        result = assess(head, Volume(data.reshape(head.data.shape), head.affine, "mri"), anatomy=anatomy)
        assert result.label == expected, (share, result)


def test_the_defaced_volume_is_never_segmented(head, monkeypatch):
    """Only the original is segmented (once per acquisition); the defaced volume is judged from what
    changed, so its brain figures cannot move with the mask rules' references."""
    anatomy = original_anatomy(head)
    defaced = Volume(np.where(face_region(head), 0.0, head.data).astype(np.float32), head.affine, "mri")
    for name in ("brain_mask", "head_mask", "head_and_brain_masks"):
        monkeypatch.setattr(qc_module, name, lambda *a, **k: pytest.fail("segmented the defaced volume"))
    assert assess(head, defaced, anatomy=anatomy).label == "ok"


def test_brain_dice_is_the_changed_share_on_the_dice_scale(head):
    anatomy = original_anatomy(head)
    brain = anatomy.brain
    data = head.data.copy()
    data[brain & (np.indices(brain.shape)[2] > np.nonzero(brain)[2].mean())] = 0.0
    result = assess(head, Volume(data, head.affine, "mri"), anatomy=anatomy)
    kept = brain.sum() - result.brain_voxels_changed
    assert result.brain_dice == pytest.approx(2 * kept / (brain.sum() + kept))
    assert brain_mask(head).sum() == brain.sum()  # QC's mask is the MRI rule's on the volume's own grid


def test_head_and_brain_masks_are_the_two_rules(head):
    both = head_and_brain_masks(head)
    assert np.array_equal(both[0], head_mask(head)) and np.array_equal(both[1], brain_mask(head))


@settings(max_examples=80, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 9))),
       st.tuples(*[st.sampled_from([0.8, 1.0, 2.5])] * 3))
def test_distance_in_the_box_is_the_whole_volume_distance(mask, zooms):
    """The brain mask's distance transforms on the mask's box (plus one voxel) equal scipy's on the
    whole array inside the box, also where the mask touches the array's edge."""
    full = ndimage.distance_transform_edt(mask, sampling=zooms)
    assert np.allclose(_edt_in_box(mask, mask, zooms)[mask], full[mask])
    if mask.any() and not mask.all():
        core = mask & (full > 1.0)
        if core.any():
            got = _edt_in_box(~core, mask, zooms)[mask]
            assert np.allclose(got, ndimage.distance_transform_edt(~core, sampling=zooms)[mask])
