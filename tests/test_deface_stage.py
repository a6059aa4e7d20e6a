"""The deface stage stores an unchanged defacing (the ``none`` control) as a copy of its input
(issue #15): same bytes, same hash, and it reads back exactly as the former decode-clean-re-encode
path wrote it. Anything else (a tool mask, a change, a seed-range cleanup) takes the cleanup path."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from defacebench.anatomy.cleanup import CleanupParams, apply_cleanup
from defacebench.contracts import DefaceResult, Volume
from defacebench.data.volume import load_volume, save_volume
from defacebench.run.cache import file_hash
from defacebench.run.stages import DefaceTask, StageEnv, _unchanged_copy, deface_task


def _former_stored(original_path: Path, tmp: Path, policy: str) -> Volume:
    """What the deface stage stored for ``none`` before: the input decoded, cleaned and re-encoded."""
    original = load_volume(original_path)
    defaced = load_volume(original_path, modality=original.modality)
    cleaned = apply_cleanup(original, defaced, mask=None, defacer="none", params=CleanupParams(policy=policy))
    return load_volume(save_volume(cleaned, tmp / f"former-{policy}.nii.gz"))


@pytest.mark.parametrize("policy", ["mask", "none", "seed_range"])
def test_the_control_is_stored_as_a_byte_copy_that_reads_as_before(ellipsoid_ct, tmp_path, policy):
    head = ellipsoid_ct(tilt_deg=7.0)
    # a non-canonical file (x flipped), as a NIfTI dataset could give: reads must still agree
    flipped = np.diag([-1.0, 1, 1, 1]) @ head.affine
    flipped[0, 3] += head.affine[0, 0] * (head.data.shape[0] - 1)
    path = tmp_path / "original.nii.gz"
    nib.save(nib.Nifti1Image(head.data[::-1].astype(np.float32), flipped), str(path))
    task = DefaceTask(StageEnv(str(tmp_path / "cache")), str(path), file_hash(path), "none",
                      CleanupParams(policy=policy))
    done = deface_task(task)
    assert done.ok and done.mask_path is None
    assert Path(done.path).read_bytes() == path.read_bytes() and done.hash == task.volume_hash
    stored, former = load_volume(Path(done.path)), _former_stored(path, tmp_path, policy)
    assert np.array_equal(stored.data, former.data) and np.array_equal(stored.affine, former.affine)
    assert stored.modality == former.modality == "ct"
    again = deface_task(task)  # a cache hit: the same artifact and hash
    assert (again.path, again.hash) == (done.path, done.hash)


def test_only_an_unchanged_output_without_a_tool_mask_is_copied(tmp_path):
    volume = Volume(np.arange(24, dtype=np.float32).reshape(2, 3, 4), np.diag([2.0, 3.0, 1.5, 1.0]))
    same, changed = tmp_path / "in.nii.gz", tmp_path / "changed.nii.gz"
    save_volume(volume, same)
    save_volume(Volume(volume.data + 1, volume.affine), changed)
    env, h = StageEnv(str(tmp_path / "cache")), file_hash(same)

    def copied(defacer: str, policy: str, out: Path, mask: Path | None = None) -> bool:
        task = DefaceTask(env, str(same), h, defacer, CleanupParams(policy=policy))
        return _unchanged_copy(task, defacer, DefaceResult(volume_path=out, mask_path=mask))

    assert copied("none", "mask", same) and copied("none", "none", same) and copied("none", "seed_range", same)
    assert not copied("none", "mask", changed)
    assert not copied("tool", "mask", same, mask=same)  # a tool mask is applied by the cleanup
    assert not copied("pydeface", "seed_range", same)  # its range replaces voxels of any volume
