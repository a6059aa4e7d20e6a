#!/usr/bin/env python
"""What QC's brain figures measure, per defacer, on every acquisition of one modality whose defacings
a run cached: the original's brain-mask voxels the defacer changed, QC's label and brain Dice, and
the Dice QC version 2 reported (the brain mask segmented again on the defaced volume).

Why: version 2's re-segmented Dice labelled quickshear and caideface_ants ``brain_damaged`` on the MRI
sample with no brain voxel changed (docs/metrics.md, "MRI brain mask"); this prints the evidence for
any cache. Run after a run, with its cache::

    python scripts/qc_brain_check.py CACHE_DIR mri [N_ACQUISITIONS]
"""

from __future__ import annotations

import glob
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

DEFACERS = ("quickshear", "caideface_ants", "deepdefacer", "pydeface_ants", "mne_deface")


def main(cache_dir: str, modality: str, most: str = "1000000") -> None:
    from defacebench.anatomy.brainmask import dice
    from defacebench.anatomy.cleanup import CleanupParams
    from defacebench.anatomy.grid import coarsen, refine
    from defacebench.anatomy.masks import brain_mask
    from defacebench.anatomy.qc import QCParams, assess, original_anatomy
    from defacebench.data.volume import load_volume
    from defacebench.run.cache import file_hash
    from defacebench.run.stage_base import NotCached, StageEnv, lookup_only
    from defacebench.run.stages import DefaceTask, deface_task

    env, rows, seen = StageEnv(cache_dir), defaultdict(list), 0
    for record in sorted(glob.glob(f"{cache_dir}/convert/*/*/record.json")):
        if json.loads(Path(record).read_text()).get("modality") != modality or seen >= int(most):
            continue
        vol = str(Path(record).parent / "volume.nii.gz")
        digest, original, anatomy = file_hash(Path(vol)), None, None
        for defacer in DEFACERS:
            try:
                with lookup_only():  # only what the run defaced
                    done = deface_task(DefaceTask(env, vol, digest, defacer, CleanupParams(policy="mask")))
            except NotCached:
                continue
            if not done.ok:
                continue
            if original is None:
                original, seen = load_volume(Path(vol)), seen + 1
                anatomy = original_anatomy(original)
            defaced = load_volume(Path(done.path), modality=original.modality)
            qc = assess(original, defaced, anatomy=anatomy)
            again = refine(brain_mask(coarsen(defaced, anatomy.factors)), anatomy.factors, original.data.shape)
            rows[defacer].append((qc.brain_voxels_changed, qc.label, qc.brain_dice, dice(anatomy.brain, again)))
    print("defacer | n | original's brain voxels changed (max) | labels | brain Dice (median) | "
          "re-segmented Dice (median, min)")
    for defacer, got in rows.items():
        changed, labels, qc_dice, reseg = zip(*got)
        print(f"{defacer} | {len(got)} | {max(changed)} | {dict(Counter(labels))} | {np.median(qc_dice):.3f} | "
              f"{np.median(reseg):.3f}, {min(reseg):.3f}")


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    main(*sys.argv[1:])
