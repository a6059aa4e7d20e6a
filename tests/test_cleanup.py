"""Cleanup policies: ``mask`` touches exactly the removed voxels, ``seed_range`` reproduces the seed
study (holes included), and zero fill without cleanup renders as a shell over the face."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from defacebench.anatomy.cleanup import CleanupParams, apply_cleanup, removed_voxels, seed_range_cleanup
from defacebench.contracts import Volume


def _zero_fill_face(volume: Volume) -> tuple[Volume, np.ndarray]:
    """pydeface-style defacing: multiply by a keep mask whose face block covers skin AND the air in
    front of it (as pydeface's template mask does), so removed voxels become 0 HU."""
    shape = volume.data.shape
    removed = np.zeros(shape, bool)
    removed[:, int(shape[1] * 0.78):, : int(shape[2] * 0.5)] = True
    return Volume(volume.data * ~removed, volume.affine), removed


def _first_hit_depth(data: np.ndarray, iso_hu: float = -400.0) -> np.ndarray:
    """Index along j (counted from the anterior end) of the first voxel above ``iso_hu`` on each
    (i, k) ray cast from the front (+j) backwards: what a first-hit surface renderer shows."""
    from_front = data[:, ::-1, :] > iso_hu
    hit = from_front.any(axis=1)
    return np.where(hit, data.shape[1] - 1 - from_front.argmax(axis=1), -1)


def test_zero_fill_renders_a_shell_and_mask_cleanup_removes_it(ellipsoid_ct):
    original = ellipsoid_ct()
    defaced, removed = _zero_fill_face(original)
    face_rays = removed.any(axis=1) & (original.data > -400).any(axis=1)
    assert face_rays.sum() > 50
    i, k = np.nonzero(face_rays)

    raw_hits = _first_hit_depth(defaced.data)[i, k]
    assert removed[i, raw_hits, k].all(), "zero fill: the first hit is the removed block itself (a shell)"

    cleaned = apply_cleanup(original, defaced, mask=removed, defacer="pydeface", params=CleanupParams())
    clean_hits = _first_hit_depth(cleaned.data)[i, k]
    hit = clean_hits >= 0
    assert not removed[i[hit], clean_hits[hit], k[hit]].any(), "after mask cleanup no ray stops in removed voxels"
    assert (cleaned.data[removed] == -1000.0).all()
    assert np.array_equal(cleaned.data[~removed], original.data[~removed])


def test_mask_policy_without_tool_mask_uses_changed_voxels(ellipsoid_ct):
    original = ellipsoid_ct()
    defaced, removed = _zero_fill_face(original)
    changed = original.data != defaced.data
    cleaned = apply_cleanup(original, defaced, mask=None, defacer="quickshear", params=CleanupParams())
    assert np.array_equal(cleaned.data == -1000.0, (original.data == -1000.0) | changed)
    assert np.array_equal(cleaned.data[~changed], defaced.data[~changed])
    assert np.array_equal(cleaned.affine, original.affine)


def test_refacer_keeps_its_new_face_and_airs_only_zero_fill(ellipsoid_ct):
    original = ellipsoid_ct()
    region = np.zeros(original.data.shape, bool)
    region[:, 50:, :20] = True
    refaced = original.data.copy()
    refaced[region] = np.where(original.data[region] > -500, 55.0, 0.0)
    defaced = Volume(refaced, original.affine)
    cleaned = apply_cleanup(original, defaced, mask=region, defacer="afni_reface", params=CleanupParams())
    tissue = region & (original.data > -500)
    assert (cleaned.data[tissue] == 55.0).all()
    assert (cleaned.data[region & ~tissue] == -1000.0).all()
    assert removed_voxels(original, defaced, mask=region, defacer="afni_deface").sum() == region.sum()


def test_seed_range_reproduces_the_study_including_holes(ellipsoid_ct):
    original = ellipsoid_ct()
    defaced, removed = _zero_fill_face(original)
    data = defaced.data.copy()
    data[20:23, 20:23, 20:23] = 2.0  # water-like real tissue (e.g. CSF at 2 HU) far from the face
    defaced = Volume(data, defaced.affine)
    out = apply_cleanup(original, defaced, mask=removed, defacer="pydeface", params=CleanupParams(policy="seed_range"))
    assert (out.data[removed] == -1000.0).all()
    assert (out.data[20:23, 20:23, 20:23] == -1000.0).all(), "the study's range punches holes into tissue"
    fsl = seed_range_cleanup(defaced, defacer="fsl_deface")
    assert (fsl.data[20:23, 20:23, 20:23] == 2.0).all(), "FSL's range is [0, 0]"
    assert (fsl.data[removed] == -1000.0).all()
    unknown = seed_range_cleanup(defaced, defacer="quickshear")
    assert unknown is defaced


def test_none_policy_and_bad_policy(ellipsoid_ct):
    original = ellipsoid_ct()
    defaced, removed = _zero_fill_face(original)
    assert apply_cleanup(original, defaced, mask=removed, defacer="x", params=CleanupParams(policy="none")) is defaced
    with pytest.raises(ValueError, match="unknown"):
        CleanupParams(policy="blur")


def test_grid_mismatch_is_an_error(ellipsoid_ct):
    original = ellipsoid_ct()
    other = Volume(original.data[:-1], original.affine)
    with pytest.raises(ValueError, match="shape"):
        apply_cleanup(original, other, mask=None, defacer="x")


@settings(max_examples=40, deadline=None)
@given(
    data=arrays(np.float32, (5, 7, 3), elements=st.floats(-1024, 3000, width=32)),
    mask=arrays(bool, (5, 7, 3)),
)
def test_mask_cleanup_changes_only_removed_voxels(data, mask):
    affine = np.diag([2.0, 1.5, 3.0, 1.0])
    original = Volume(data, affine)
    defaced = Volume(np.where(mask, 0.0, data).astype(np.float32), affine)
    out = apply_cleanup(original, defaced, mask=mask, defacer="pydeface", params=CleanupParams())
    assert np.array_equal(out.data[~mask], data[~mask])
    assert (out.data[mask] == -1000.0).all()
    assert np.array_equal(defaced.data, np.where(mask, 0.0, data).astype(np.float32)), "input not modified"
