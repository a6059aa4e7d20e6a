"""caideface_ants: caideface's rule (keep = clip(warped face mask + dilated brain, 0, 1) > 0, the rest
set to the modality's background) with the files taken out of the exact wheels; its dilation is
caideface's own; a missing or corrupt file makes it unavailable with the command that fetches it."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from defacebench.anatomy.qc import assess
from defacebench.contracts import Volume
from defacebench.data.volume import load_volume, tag_modality
from defacebench.errors import DefaceError
from defacers.caideface import FETCH, FILES, CaidefaceAnts, CaidefaceAntsParams, dilate_box

READY = CaidefaceAnts().available()
REAL_PATHS = {f.name: f.path() for f in FILES.values()}  # before a test redirects DEFACEBENCH_WEIGHTS
needs_files = pytest.mark.skipif(not READY.ok, reason=f"caideface_ants unavailable: {READY.reason}")


def _caideface_dilation(mask: np.ndarray, zooms, dilation_mm: float = 14.0) -> np.ndarray:
    """caideface 0.4.0's skull_strip step, as it runs: a ones box of round(mm / voxel) per axis
    (1..30) given to scipy's binary_dilation."""
    shape = tuple(min(30, max(1, int(round(dilation_mm / z)))) for z in zooms)
    return ndimage.binary_dilation(mask, structure=np.ones(shape, np.uint8))


@settings(max_examples=25, deadline=None)
@given(st.tuples(*[st.sampled_from([0.8, 1.0, 1.5, 2.0, 3.3, 5.0])] * 3), st.sampled_from([4.0, 7.0, 14.0]),
       st.integers(0, 2**31 - 1))
def test_dilation_is_caidefaces_voxel_for_voxel(zooms, dilation_mm, seed):
    rng = np.random.default_rng(seed)
    mask = rng.random((17, 22, 13)) > 0.995
    mask[8, 11, 6] = True
    assert np.array_equal(dilate_box(mask, zooms, dilation_mm), _caideface_dilation(mask, zooms, dilation_mm))


def test_files_missing_or_corrupt_make_it_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("DEFACEBENCH_WEIGHTS", str(tmp_path))
    reason = CaidefaceAnts().available().reason
    assert "is missing" in reason and FETCH in reason
    if not READY.ok:
        pytest.skip(f"the real files are needed to make a corrupt copy: {READY.reason}")
    for entry in FILES.values():
        target = entry.path(tmp_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REAL_PATHS[entry.name], target)
    assert CaidefaceAnts().available().ok
    victim = FILES["ct_mask"].path(tmp_path)
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    victim.write_bytes(bytes(raw))
    reason = CaidefaceAnts().available().reason
    assert "wrong sha256" in reason and f"{FETCH} --force" in reason and "ct_face_mask" in reason


def test_weight_records_name_the_exact_wheels():
    records = {r.name: r for r in CaidefaceAnts().weights()}
    assert set(records) == {"t1_mask.nii.gz", "mni_icbm152_t1_tal_nlin_sym_55_ext_brain_only.nii.gz",
                            "ct_face_mask.nii.gz", "ct_brain_atlas_1mm.nii.gz"}
    assert "caideface==0.4.0" in records["ct_face_mask.nii.gz"].url
    assert "totalsegmentator==2.18.0" in records["ct_brain_atlas_1mm.nii.gz"].url
    assert all(len(r.sha256) == 64 and r.fetch is not None and r.how == FETCH for r in records.values())
    assert "caideface 0.4.0" in CaidefaceAnts().tool_version() and "totalsegmentator 2.18.0" in CaidefaceAnts().tool_version()


@pytest.fixture(scope="module")
def ct_path(template_ct, write_ct, tmp_path_factory) -> Path:
    return write_ct(template_ct(4.0), tmp_path_factory.mktemp("caide") / "in put" / "head.nii.gz")


@pytest.fixture(scope="module")
def ct_result(ct_path, tmp_path_factory):
    return CaidefaceAnts().deface(ct_path, tmp_path_factory.mktemp("caide_out"))


def _removed(result) -> np.ndarray:
    return np.asarray(nib.load(str(result.mask_path)).dataobj) == 1


@needs_files
def test_ct_removes_the_face_keeps_the_brain_and_fills_air(ct_path, ct_result):
    original, defaced = load_volume(ct_path), load_volume(ct_result.volume_path)
    qc = assess(original, defaced)
    assert qc.label == "ok" and qc.brain_voxels_changed == 0 and qc.face_removed_fraction > 0.5, qc
    raw, src = (np.asarray(nib.load(str(p)).dataobj) for p in (ct_result.volume_path, ct_path))
    removed = _removed(ct_result)
    assert (raw[removed] == -1000.0).all() and np.array_equal(raw[~removed], src[~removed])
    i, j, k = np.nonzero(removed & (src > -500))
    assert j.mean() > 0.55 * src.shape[1] or k.mean() < 0.4 * src.shape[2], "the face (front, below) goes"
    assert "ct mask and template" in ct_result.log and "antspyx in-process" in ct_result.log


@needs_files
def test_the_keep_rule_spares_the_dilated_brain_and_what_the_mask_covers(ct_path, ct_result, tmp_path):
    """outside_value 1 (keep what the mask does not reach) removes a subset of what 0 (caideface's
    BRAINSResample default) removes; a wider dilation keeps a superset."""
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    keep_outside = CaidefaceAnts(CaidefaceAntsParams(outside_value=1.0)).deface(ct_path, tmp_path / "a")
    wide = CaidefaceAnts(CaidefaceAntsParams(dilation_mm=40.0)).deface(ct_path, tmp_path / "b")
    base = _removed(ct_result)
    for other in (keep_outside, wide):
        fewer = _removed(other)
        assert (fewer & ~base).sum() == 0 and fewer.sum() < base.sum()


@needs_files
def test_mri_uses_the_t1_mask_and_fills_zero(tmp_path):
    """The phantom's T1 (3 mm), tagged MRI, gets caideface's T1 mask and MNI template, and zero fill."""
    from defacebench.data.phantom.anatomy import base_anatomy

    base = base_anatomy()
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    affine[:3, 3] = base.grid.origin
    img = nib.Nifti1Image(ndimage.zoom(base.t1, base.grid.step / 3.0, order=1).astype(np.float32), affine)
    tag_modality(img, "mri")
    path = tmp_path / "t1.nii.gz"
    nib.save(img, str(path))
    (tmp_path / "out").mkdir()
    result = CaidefaceAnts().deface(path, tmp_path / "out")
    raw, removed = np.asarray(nib.load(str(result.volume_path)).dataobj), _removed(result)
    qc = assess(load_volume(path), load_volume(result.volume_path))
    assert "mri mask and template" in result.log and (raw[removed] == 0).all()
    assert qc.label == "ok" and qc.face_removed_fraction > 0.4 and qc.brain_voxels_changed == 0, qc


@needs_files
def test_another_thread_count_runs_in_a_child_and_agrees(ct_path, ct_result, tmp_path):
    result = CaidefaceAnts(CaidefaceAntsParams(threads=3)).deface(ct_path, tmp_path)
    assert "exit code 0" in result.log and not CaidefaceAnts(CaidefaceAntsParams(threads=3)).deterministic
    assert np.mean(_removed(result) == _removed(ct_result)) > 0.995


def test_no_brain_falls_back_or_fails(ellipsoid_ct, write_ct, tmp_path):
    vol = ellipsoid_ct()
    path = write_ct(Volume(np.where(vol.data > 300, 40.0, vol.data).astype(np.float32), vol.affine),
                    tmp_path / "noskull.nii.gz")
    with pytest.raises(DefaceError, match="noskull.nii.gz.*no brain found"):
        CaidefaceAnts(CaidefaceAntsParams(no_brain="fail")).deface(path, tmp_path)
    with pytest.raises(ValueError, match="no_brain"):
        CaidefaceAntsParams(no_brain="guess")
    if READY.ok:
        work = tmp_path / "w"
        work.mkdir()
        assert "head interior (no brain found)" in CaidefaceAnts().deface(path, work).log


def test_list_shows_licence_and_modalities(capsys):
    import json

    from defacebench.cli import main

    assert main(["list", "--json", "--kind", "defacers"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert "Apache-2.0" in rows["caideface_ants"]["notes"] and "modalities: ct, mri" in rows["caideface_ants"]["notes"]
    assert "BSD-3-Clause" in rows["mne_deface"]["notes"] and rows["none"]["notes"] == ""
    assert rows["caideface_ants"]["default"] and rows["mne_deface"]["default"]
