#!/usr/bin/env python
"""Per-acquisition cost of each pipeline stage on a dataset's first DICOM acquisitions.

Why: the sample dataset decides what CI pays per acquisition at every stage (conversion, defacing,
QC, rendering). This measures the stages one by one, in one process, so a change of the sample's
matrix or slice thickness can be read as a cost ratio per stage. Run, e.g.::

    python scripts/stage_costs.py --dataset ~/.cache/defacebench/sample-... --n 2

Prints one line per stage: median wall and CPU seconds per acquisition, and the volume's shape.
Timings on a shared machine vary with its load (printed too).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def _cpu() -> float:
    """CPU seconds of this process and its reaped children (dcm2niix, registration children)."""
    import resource

    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def _timed(fn, *args):
    """(result, wall seconds, CPU seconds): CPU barely moves with other jobs on the machine."""
    wall, cpu = time.perf_counter(), _cpu()
    out = fn(*args)
    return out, time.perf_counter() - wall, _cpu() - cpu


def measure(dataset: Path, n: int, stages: list[str], work: Path) -> dict[str, list[tuple[float, float]]]:
    """Wall/CPU seconds of every stage for the first ``n`` DICOM acquisitions of ``dataset``."""
    from defacebench.anatomy.qc import assess
    from defacebench.data.convert import ConversionParams, convert_acquisition
    from defacebench.data.dataset import discover
    from defacebench.data.volume import load_volume
    from defacers.pydeface import PydefaceAnts
    from defacers.quickshear import Quickshear
    from recognizers.render.surface import SurfaceRenderer
    from recognizers.render.vtk_volume import VtkVolumeRenderer

    acqs = [a for a in discover(dataset).acquisitions if a.kind == "dicom"][:n]
    costs: dict[str, list[tuple[float, float]]] = {s: [] for s in stages}
    for i, acq in enumerate(acqs):
        out = work / f"v{i}.nii.gz"
        rec, wall, cpu = _timed(convert_acquisition, acq, out, ConversionParams("dicom2nifti"))
        costs.setdefault("convert", []).append((wall, cpu))
        volume = load_volume(out)
        print(f"{acq.acq_id}: shape {volume.data.shape} zooms {np.round(volume.zooms, 3)}", flush=True)
        for stage in stages:
            if stage == "convert":
                continue
            wd = work / f"{stage}{i}"
            wd.mkdir()
            if stage in ("quickshear", "pydeface_ants"):
                defacer = Quickshear() if stage == "quickshear" else PydefaceAnts()
                res, wall, cpu = _timed(defacer.deface, out, wd)
                if stage == "quickshear":
                    _, w2, c2 = _timed(assess, volume, load_volume(res.volume_path))
                    costs.setdefault("qc", []).append((w2, c2))
            elif stage == "surface":
                _, wall, cpu = _timed(SurfaceRenderer().render, volume)
            elif stage == "vtk_volume":
                _, wall, cpu = _timed(VtkVolumeRenderer().render, volume)
            costs[stage].append((wall, cpu))
    return costs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--n", type=int, default=2)
    parser.add_argument("--stages", default="convert,quickshear,pydeface_ants,surface,vtk_volume")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stage-costs-") as tmp:
        costs = measure(args.dataset, args.n, args.stages.split(","), Path(tmp))
    print(f"load average {os.getloadavg()[0]:.1f}")
    for stage, values in costs.items():
        if values:
            wall = float(np.median([w for w, _ in values]))
            cpu = float(np.median([c for _, c in values]))
            print(f"{stage:14s} wall {wall:6.2f} s  cpu {cpu:6.2f} s  (median of {len(values)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
