"""The registration that stops once converged (issue 23) against antspyx's run-every-iteration one.

The template CT is posed (rotated 8 degrees about two axes, shifted) so the registration has work to
do; the grids are small (8 mm registration, a 4 mm head), so each registration takes well under a
second."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from defacebench.anatomy.brainmask import dice
from defacebench.anatomy.registration import RegistrationParams, keep_mask_for
from defacebench.contracts import Volume

# find_spec, not importorskip: importing ANTs here would unpin the ITK thread count of the session
# (registration._pin_itk_threads), which other test modules rely on
if importlib.util.find_spec("ants") is None or importlib.util.find_spec("pydeface") is None:
    pytest.skip("antspyx and pydeface are needed", allow_module_level=True)

OLD = RegistrationParams(voxel_mm=8.0, iterations=(60, 30))
NEW = replace(OLD, convergence_threshold=1e-5)


def _rotation(axis: int, degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    i, j = [k for k in range(3) if k != axis]
    r = np.eye(4)
    r[i, i], r[i, j], r[j, i], r[j, j] = np.cos(a), -np.sin(a), np.sin(a), np.cos(a)
    return r


@pytest.fixture(scope="module")
def posed_head(template_ct, write_ct, tmp_path_factory) -> Path:
    """The 4 mm template CT with a posed (rotated, shifted), non-identity affine."""
    vol = template_ct(4.0)
    pose = _rotation(0, 8.0) @ _rotation(2, -6.0)
    pose[:3, 3] = (6.0, -9.0, 5.0)
    return write_ct(Volume(vol.data, pose @ vol.affine), tmp_path_factory.mktemp("posed") / "head.nii.gz")


def _removed(path: Path, workdir: Path, params: RegistrationParams) -> np.ndarray:
    keep, used_ct, _ = keep_mask_for(path, workdir, params=params, threads=1)  # 1 thread: deterministic
    assert used_ct
    return keep == 0


def test_early_stop_agrees_with_the_full_registration(posed_head, tmp_path):
    old = _removed(posed_head, tmp_path / "old", OLD)
    new = _removed(posed_head, tmp_path / "new", NEW)
    assert old.sum() > 500, "the face mask must remove a face for the comparison to mean anything"
    assert dice(old, new) >= 0.95


def test_early_stop_is_deterministic_and_the_threshold_matters(posed_head, tmp_path):
    first = _removed(posed_head, tmp_path / "a", NEW)
    again = _removed(posed_head, tmp_path / "b", NEW)
    assert np.array_equal(first, again)
    # a threshold loose enough to stop after the first window is a different registration
    loose = _removed(posed_head, tmp_path / "c", replace(NEW, convergence_threshold=0.5, convergence_window=2))
    assert not np.array_equal(first, loose)


def test_box_warp_is_the_full_grid_warp_voxel_for_voxel(posed_head, tmp_path):
    """warp_face_mask resamples only the box that can reach the face; the full-grid warp of the
    uncropped mask must give the same voxels."""
    from defacebench.anatomy.registration import pin_itk_threads, pydeface_data, register_template, warp_face_mask

    if not pin_itk_threads(1):  # before ANTs' first import in this process: one thread, deterministic
        pytest.skip("ANTs already runs in this process with another ITK thread count")
    import ants

    transforms, subject = register_template(posed_head, tmp_path, template=pydeface_data("mean_reg2mean.nii.gz"),
                                            params=OLD, mapping=None)
    full = ants.apply_transforms(fixed=subject, moving=ants.image_read(str(pydeface_data("facemask.nii.gz"))),
                                 transformlist=transforms, interpolator="nearestNeighbor", defaultvalue=1)
    expected = (full.numpy() > 0.5).astype(np.uint8)
    got = warp_face_mask(subject, transforms, facemask=pydeface_data("facemask.nii.gz"))
    assert (expected == 0).sum() > 500
    assert np.array_equal(got, expected)


def test_params_reject_a_sampling_rate_ants_cannot_use():
    with pytest.raises(ValueError, match="fine_sampling_rate"):
        RegistrationParams(fine_sampling_rate=0.0)
    with pytest.raises(ValueError, match="sampling_rate"):
        RegistrationParams(sampling_rate=1.5)
    with pytest.raises(ValueError, match="fine_sampling_strategy"):
        RegistrationParams(fine_sampling_rate=0.3, fine_sampling_strategy="dense")


def test_fine_level_stage_carries_its_own_rate_and_only_the_last_level():
    from defacebench.anatomy.registration import _stage_args

    p = RegistrationParams(fine_sampling_rate=0.3)
    levels = list(zip(p.iterations, p.shrink_factors, p.smoothing_sigmas))
    coarse, fine = _stage_args("F", "M", levels[:-1], 1.0, p), _stage_args("F", "M", levels[-1:], 0.3, p)
    assert coarse[coarse.index("--metric") + 1] == "mattes[F,M,1,32,regular,1.0]"
    assert coarse[coarse.index("--convergence") + 1] == "[100,1e-06,10]"
    assert coarse[coarse.index("--shrink-factors") + 1] == "2"
    assert fine[fine.index("--metric") + 1] == "mattes[F,M,1,32,regular,0.3]"
    assert fine[fine.index("--convergence") + 1] == "[50,1e-06,10]"
    assert (fine[fine.index("--shrink-factors") + 1], fine[fine.index("--smoothing-sigmas") + 1]) == ("1", "0.0")
    randomly = _stage_args("F", "M", levels[-1:], 0.3, p, "random")
    assert randomly[randomly.index("--metric") + 1] == "mattes[F,M,1,32,random,0.3]"


def test_sampled_fine_level_is_deterministic_and_near_the_dense_one(posed_head, tmp_path):
    """The fine level at 30 % of its points (its own stage) lands near the one-stage dense
    registration on the posed head, the same on every run, and is not the dense one (the rate is used)."""
    sampled = replace(OLD, fine_sampling_rate=0.3)
    dense = _removed(posed_head, tmp_path / "dense", OLD)
    first = _removed(posed_head, tmp_path / "s1", sampled)
    again = _removed(posed_head, tmp_path / "s2", sampled)
    assert np.array_equal(first, again)
    assert dice(dense, first) >= 0.9
    coarse_only = _removed(posed_head, tmp_path / "s3", replace(sampled, fine_sampling_rate=0.02))
    assert not np.array_equal(first, coarse_only)


def test_random_fine_sampling_is_its_own_deterministic_registration(posed_head, tmp_path):
    """The random strategy is passed through (another registration than regular at the same rate),
    seeded (the same on every run) and lands near the dense one."""
    sampled = replace(OLD, fine_sampling_rate=0.3, fine_sampling_strategy="random")
    first = _removed(posed_head, tmp_path / "r1", sampled)
    assert np.array_equal(first, _removed(posed_head, tmp_path / "r2", sampled))
    regular = _removed(posed_head, tmp_path / "g", replace(sampled, fine_sampling_strategy="regular"))
    assert not np.array_equal(first, regular)
    assert dice(_removed(posed_head, tmp_path / "d", OLD), first) >= 0.9
