#!/usr/bin/env python
"""QC figures of every defaced volume of a finished run, on the QC grid (what the run cached) and
on the volumes' own grid with every mask recomputed (``QCParams(grid_mm=0)``, the definition
before issue #15), side by side: labels, brain Dice and the fractions.

Why: the QC grid is only acceptable where it leaves labels and brain Dice in place (issue #15:
Dice moves < 0.005). Run after a run, with its cache::

    python scripts/qc_grid_check.py CACHE_DIR
"""

from __future__ import annotations

import glob
import sys
from pathlib import Path

FIELDS = ("brain_dice", "head_removed_fraction", "face_removed_fraction", "brain_changed_fraction")


def main(cache_dir: str) -> None:
    from defacebench.anatomy.cleanup import CleanupParams
    from defacebench.anatomy.qc import QCParams, assess
    from defacebench.data.volume import load_volume
    from defacebench.run.cache import file_hash
    from defacebench.run.stage_base import NotCached, lookup_only
    from defacebench.run.stages import DefaceTask, QCTask, StageEnv, deface_task, qc_task

    env, changes, n, worst = StageEnv(cache_dir), 0, 0, {}
    for vol in sorted(glob.glob(f"{cache_dir}/convert/*/*/volume.nii.gz")):
        digest, original = file_hash(Path(vol)), load_volume(Path(vol))
        for defacer in ("quickshear", "pydeface_ants"):
            try:
                with lookup_only():  # only what the run defaced (the probes' acquisitions)
                    done = deface_task(DefaceTask(env, vol, digest, defacer, CleanupParams(policy="mask")))
                    new = qc_task(QCTask(env, vol, digest, done, QCParams())).qc
            except NotCached:
                continue
            defaced = load_volume(Path(done.path), modality=original.modality) if done.ok else None
            old = assess(original, defaced, params=QCParams(grid_mm=0))
            n, changes = n + 1, changes + (old.label != new.label)
            for k in FIELDS:
                worst[(defacer, k)] = max(worst.get((defacer, k), 0.0), abs(getattr(new, k) - getattr(old, k)))
            print(Path(vol).parent.name[:8], defacer, old.label, "->", new.label,
                  *(f"{k} {getattr(old, k):.4f} -> {getattr(new, k):.4f}" for k in FIELDS), flush=True)
    print(f"label changes: {changes} of {n}")
    for (defacer, k), v in sorted(worst.items()):
        print(f"max |QC grid - fine| {defacer:14s} {k:24s} {v:.4f}")


if __name__ == "__main__":
    main(sys.argv[1])
