"""The qc stage segments each original once (issue #15): one ``qc_anatomy`` cache entry per
acquisition, shared by every defacer's QC, and the same figures as an uncached assessment."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from defacebench.anatomy.qc import QCParams, assess, face_region
from defacebench.contracts import Volume
from defacebench.run.cache import file_hash
from defacebench.run.records import Defaced
from defacebench.run.stages import QCTask, StageEnv, qc_task


def _entries(cache: Path, stage: str) -> int:
    folder = cache / stage
    return sum(1 for shard in folder.iterdir() for _ in shard.iterdir()) if folder.exists() else 0


def test_original_masks_are_computed_once_per_acquisition(ellipsoid_ct, write_ct, tmp_path):
    head = ellipsoid_ct()
    original = write_ct(head, tmp_path / "original.nii.gz")
    faceless = Volume(np.where(face_region(head), -1000.0, head.data).astype(np.float32), head.affine)
    env, params = StageEnv(str(tmp_path / "cache")), QCParams()
    records = {
        "none": Defaced("none", True, str(original), file_hash(original)),
        "cut": Defaced("cut", True, str(write_ct(faceless, tmp_path / "cut.nii.gz")), None),
        "broken": Defaced("broken", False, error="broken: failed"),
    }
    records["cut"] = Defaced("cut", True, records["cut"].path, file_hash(Path(records["cut"].path)))
    results = {name: qc_task(QCTask(env, str(original), file_hash(original), rec, params)).qc
               for name, rec in records.items()}
    assert _entries(tmp_path / "cache", "qc_anatomy") == 1 and _entries(tmp_path / "cache", "qc") == 3
    assert results["none"].label == "face_intact" and results["broken"].label == "failed"
    assert results["cut"] == assess(head, faceless)
    # a second QC of the same pair reads the cache, a QC param change recomputes both entries
    assert qc_task(QCTask(env, str(original), file_hash(original), records["cut"], params)).qc == results["cut"]
    qc_task(QCTask(env, str(original), file_hash(original), records["cut"], QCParams(grid_mm=0)))
    assert _entries(tmp_path / "cache", "qc_anatomy") == 2 and _entries(tmp_path / "cache", "qc") == 4
