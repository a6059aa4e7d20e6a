"""Automatic defacing QC: labels for the control, whole-head removal, face-only and brain-hitting
defacings, failures; plus the HU brain mask and the anatomical face region it rests on."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from defacebench.anatomy.brainmask import ct_brain_mask, ct_head_mask, dice
from defacebench.contracts import Volume
from defacebench.anatomy.qc import QCParams, assess, face_region, label_counts, summarize


@pytest.fixture(scope="module", params=["ellipsoid", "template"])
def head(ellipsoid_ct, template_ct, request) -> Volume:
    return ellipsoid_ct() if request.param == "ellipsoid" else template_ct(4.0)


def _world_y(volume: Volume) -> np.ndarray:
    ijk = np.indices(volume.data.shape).reshape(3, -1)
    return (volume.affine[1, :3] @ ijk + volume.affine[1, 3]).reshape(volume.data.shape)


def test_none_control_is_face_intact(head):
    result = assess(head, Volume(head.data.copy(), head.affine))
    assert result.label == "face_intact"
    assert result.head_removed_fraction == 0 and result.brain_dice == 1.0 and result.brain_voxels_changed == 0


def test_whole_head_removed_is_head_removed(head):
    for fill in (0.0, -1000.0):
        result = assess(head, Volume(np.full_like(head.data, fill), head.affine))
        assert result.label == "head_removed" and result.head_removed_fraction > 0.9


def test_face_only_removal_is_ok(head):
    face = face_region(head)
    defaced = Volume(np.where(face, -1000.0, head.data).astype(np.float32), head.affine)
    result = assess(head, defaced)
    assert result.label == "ok", result
    assert result.face_removed_fraction > 0.9 and result.brain_voxels_changed == 0


def test_brain_hit_is_brain_damaged(head):
    brain = ct_brain_mask(head)
    k_top = np.nonzero(brain)[2].max()
    cut = np.zeros(head.data.shape, bool)
    cut[:, :, k_top - 6:] = True  # the vertex slab, through skull into brain
    defaced = np.where(face_region(head) | cut, 0.0, head.data).astype(np.float32)
    result = assess(head, Volume(defaced, head.affine))
    assert result.label == "brain_damaged", result
    assert result.brain_voxels_changed > 0 and result.brain_dice < 1.0


def test_failed_defacing_is_failed_and_json_able(head):
    result = assess(head, None)
    assert result.label == "failed" and math.isnan(result.face_removed_fraction)
    json.dumps(result.to_dict())
    assert label_counts([result, assess(head, Volume(head.data.copy(), head.affine))]) == {
        "ok": 0, "face_intact": 1, "brain_damaged": 0, "head_removed": 0, "failed": 1}


def test_face_region_is_anterior_head_outside_brain(head):
    face, brain, skin = face_region(head), ct_brain_mask(head), ct_head_mask(head)
    assert face.sum() > 100
    assert not (face & ~skin).any() and not (face & brain).any()
    y = _world_y(head)
    assert y[face].mean() > y[brain].max() - 5.0


def test_brain_mask_is_soft_tissue_inside_skull(head):
    brain = ct_brain_mask(head)
    assert brain.sum() > 1000
    assert (head.data[brain] >= 0).all() and (head.data[brain] <= 80).all()
    assert dice(brain, brain) == 1.0 and dice(brain, ~brain) == 0.0


def test_thresholds_are_params(head):
    defaced = Volume(np.where(face_region(head), -1000.0, head.data).astype(np.float32), head.affine)
    strict = QCParams(face_removed_min=1.01)
    assert assess(head, defaced, params=strict).label == "face_intact"
    given = np.zeros(head.data.shape, bool)
    assert math.isnan(assess(head, defaced, face_region=given).face_removed_fraction)


def test_summary_counts_failures_and_medians(head):
    control = assess(head, Volume(head.data.copy(), head.affine))
    summary = summarize([control, assess(head, None), control])
    assert summary["n"] == 3 and summary["labels"]["failed"] == 1 and summary["labels"]["face_intact"] == 2
    assert summary["failure_rate"] == pytest.approx(1 / 3) and summary["ok_rate"] == 0
    assert summary["median_brain_dice"] == 1.0 and summary["median_face_removed_fraction"] == 0.0
    json.dumps(summary)
