"""The defacers that run without FSL or AFNI (pydeface_ants, quickshear) on synthetic head CTs, the
conformance suite over every defacer of this part, and the entry points."""

from __future__ import annotations

import hashlib
import os
from importlib.metadata import entry_points
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from defacebench.contracts import Defacer, DefaceResult
from defacebench.errors import DefaceError
from defacebench.anatomy.qc import assess
from defacebench.anatomy.registration import RegistrationParams, ct_to_t1, is_ct, keep_mask_for
from defacebench.data.volume import load_volume
from defacers.afni import AfniDeface, AfniReface, AfniRefacePlus
from defacers.fsl import FslDeface
from defacers.pydeface import PydefaceAnts, PydefaceAntsParams, PydefaceCli
from defacers.quickshear import Quickshear, QuickshearParams

# Test-speed registration: 8 mm, two levels. Full-resolution defaults run in bench/ (slow).
FAST = PydefaceAntsParams(registration=RegistrationParams(voxel_mm=8.0, iterations=(60, 30)))


@pytest.fixture(scope="module")
def head_path(template_ct, write_ct, tmp_path_factory) -> Path:
    """pydeface's template as a 4 mm CT, in a folder whose name has a space."""
    return write_ct(template_ct(4.0), tmp_path_factory.mktemp("heads") / "in put" / "head.nii.gz")


@pytest.fixture(scope="module")
def ants_result(head_path, tmp_path_factory) -> DefaceResult:
    return PydefaceAnts(FAST).deface(head_path, tmp_path_factory.mktemp("ants"))


def _removed(result: DefaceResult) -> np.ndarray:
    return np.asarray(nib.load(str(result.mask_path)).dataobj) == 1


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_pydeface_ants_removes_the_face_and_spares_the_brain(head_path, ants_result):
    original, defaced = load_volume(head_path), load_volume(ants_result.volume_path)
    qc = assess(original, defaced)
    assert qc.label == "ok", qc
    assert qc.face_removed_fraction > 0.4 and qc.brain_voxels_changed == 0
    removed = _removed(ants_result)
    raw = np.asarray(nib.load(str(ants_result.volume_path)).dataobj)
    assert (raw[removed] == 0).all(), "pydeface multiplies by its mask: removed voxels are 0"
    src = np.asarray(nib.load(str(head_path)).dataobj)
    assert np.array_equal(raw[~removed], src[~removed])
    j = np.nonzero(removed)[1]
    assert j.mean() > 0.6 * removed.shape[1], "the removed block is at the front (anterior, +j)"
    assert "CT HU->T1 mapping applied" in ants_result.log and "antspyx" in ants_result.tool_version


def test_pydeface_ants_is_deterministic_and_keeps_input(head_path, ants_result, tmp_path):
    folder = head_path.parent
    digest, listing = _digest(head_path), sorted(os.listdir(folder))
    folder.chmod(0o555)
    try:
        again = PydefaceAnts(FAST).deface(head_path, tmp_path)
    finally:
        folder.chmod(0o755)
    assert _digest(head_path) == digest and sorted(os.listdir(folder)) == listing
    a = np.asarray(nib.load(str(ants_result.volume_path)).dataobj)
    assert np.array_equal(a, np.asarray(nib.load(str(again.volume_path)).dataobj))
    assert PydefaceAnts(FAST).deterministic and not PydefaceAnts(PydefaceAntsParams(threads=2)).deterministic


def test_registration_child_process_matches(head_path, tmp_path):
    """A thread count this process is not pinned to runs in a child process; the masks agree."""
    params = RegistrationParams(voxel_mm=10.0, iterations=(40,), shrink_factors=(1,), smoothing_sigmas=(0.0,))
    keep_in, _, log_in = keep_mask_for(head_path, tmp_path / "a", params=params, threads=1)
    keep_child, used_ct, log_child = keep_mask_for(head_path, tmp_path / "b", params=params, threads=3)
    assert "in-process" in log_in and "exit code 0" in log_child and used_ct
    agree = np.mean(keep_in == keep_child)
    assert agree > 0.995


def test_ct_mapping_makes_bone_dark_and_fat_bright(ellipsoid_ct):
    hu = np.array([-1000.0, -100.0, 0.0, 40.0, 1000.0])
    t1 = ct_to_t1(hu)
    assert t1[0] == 0.0 and t1[1] > t1[3] > t1[2] and t1[4] < t1[3]
    assert is_ct(ellipsoid_ct().data) and not is_ct(np.full((4, 4, 4), 300.0))


def test_pydeface_ants_corrupt_input_raises(tmp_path):
    bad = tmp_path / "bad head.nii.gz"
    bad.write_bytes(b"not a nifti")
    with pytest.raises(DefaceError, match="bad head.nii.gz"):
        PydefaceAnts(FAST).deface(bad, tmp_path)


def test_quickshear_cuts_in_front_of_and_below_the_brain(template_ct, write_ct, tmp_path):
    vol = template_ct(4.0)
    path = write_ct(vol, tmp_path / "in put" / "head.nii.gz")
    result = Quickshear().deface(path, tmp_path)
    qc = assess(vol, load_volume(result.volume_path))
    assert qc.label == "ok" and qc.brain_voxels_changed == 0, qc
    removed = _removed(result)
    i, j, k = np.nonzero(removed & (vol.data > -500))
    assert j.mean() > 0.5 * vol.data.shape[1] and k.mean() < 0.5 * vol.data.shape[2]
    assert (tmp_path / "brain_mask.nii.gz").exists() and "HU (skull interior)" in result.log


def test_quickshear_without_skull_falls_back_or_fails(template_ct, write_ct, tmp_path):
    vol = template_ct(4.0)
    data = np.where(vol.data > 300, 40.0, vol.data).astype(np.float32)  # bone clipped away
    from defacebench.contracts import Volume

    path = write_ct(Volume(data, vol.affine), tmp_path / "noskull.nii.gz")
    work = tmp_path / "w"
    work.mkdir()
    assert "head interior (no skull found)" in Quickshear().deface(path, work).log
    with pytest.raises(DefaceError, match="noskull.nii.gz.*no skull"):
        Quickshear(QuickshearParams(no_skull="fail")).deface(path, tmp_path)


def test_quickshear_oblique_non_canonical_input(ellipsoid_ct, tmp_path):
    """A LAS-stored file: the brain mask is computed canonically and mapped back to the file grid."""
    vol = ellipsoid_ct()
    flip = np.diag([-1.0, 1.0, 1.0, 1.0])
    flip[0, 3] = vol.data.shape[0] - 1
    img = nib.Nifti1Image(vol.data[::-1].copy(), vol.affine @ flip)
    path = tmp_path / "las.nii.gz"
    nib.save(img, str(path))
    result = Quickshear().deface(path, tmp_path)
    canon = load_volume(result.volume_path)
    assert np.allclose(canon.affine, vol.affine)
    assert assess(vol, canon).brain_voxels_changed == 0


PLUGINS = [FslDeface, AfniDeface, AfniReface, AfniRefacePlus, PydefaceCli, PydefaceAnts, Quickshear]


@pytest.mark.parametrize("cls", PLUGINS, ids=lambda c: c.name)
def test_entry_points_and_protocol(cls):
    [ep] = [e for e in entry_points(group="defacebench.defacers") if e.name == cls.name]
    assert ep.load() is cls
    plugin = cls()
    assert isinstance(plugin, Defacer) and isinstance(plugin.deterministic, bool)
    avail = plugin.available()
    assert avail.ok or avail.reason


def test_conformance_suite_quickshear(tmp_path):
    from defacebench.testing import DEFACER_CHECKS

    for check in DEFACER_CHECKS:
        work = tmp_path / check.__name__
        work.mkdir()
        check(Quickshear(), work)


def test_spare_brain_option_restores_brain_voxels(ellipsoid_ct):
    vol = ellipsoid_ct()
    img = nib.Nifti1Image(vol.data[::-1].copy(), vol.affine @ np.diag([-1.0, 1, 1, 1]))  # stored LAS
    keep = np.zeros(vol.data.shape, np.uint8)
    spared = PydefaceAnts(PydefaceAntsParams(spare_brain=True))._spare_brain(img, np.asarray(img.dataobj), keep)
    from defacebench.anatomy.brainmask import ct_brain_mask

    brain = ct_brain_mask(vol)[::-1]
    assert spared == brain.sum() and np.array_equal(keep == 1, brain)


def test_registered_face_region_lies_where_pydeface_ants_removes(head_path, ants_result, tmp_path):
    from defacebench.anatomy.qc import face_region, registered_face_region

    region = registered_face_region(head_path, tmp_path, registration=FAST.registration)
    removed = load_volume(ants_result.mask_path).data > 0.5
    assert region.sum() > 500 and removed[region].mean() > 0.99
    anatomical = face_region(load_volume(head_path))
    assert (region & anatomical).sum() > 0.3 * anatomical.sum()


@pytest.mark.slow
def test_pydeface_ants_full_resolution_defaults(template_ct, write_ct, tmp_path):
    vol = template_ct(2.0)
    path = write_ct(vol, tmp_path / "head.nii.gz")
    result = PydefaceAnts().deface(path, tmp_path)
    qc = assess(vol, load_volume(result.volume_path))
    assert qc.label == "ok" and qc.brain_voxels_changed == 0 and qc.face_removed_fraction > 0.4, qc
