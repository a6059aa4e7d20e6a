#!/usr/bin/env python
"""Full-grid benchmark (issue 15 items 4, 5): measure a small run, project the study's grid.

Synthesises ``--subjects`` subjects (or takes ``--dataset``), runs every defacer x attacker given
with ``defacebench run`` on a cold cache (rescan, then the multiview increment on the same cache),
reads the per-stage timing from both manifests, and projects ``--target-subjects`` x
``--target-defacers`` x the attackers measured, with and without multiview, on this machine and per
Dask worker. ``--dask 1,2`` also reruns the rescan run on a LocalCluster of 1 and 2 single-threaded
workers (cold cache each). Run, e.g.::

    python scripts/full_grid.py --subjects 8 --dask 1,2

The measuring code is :mod:`defacebench.perf.grid` (shared with tests/perf/test_perf_grid.py).
Timings on a shared machine vary with its load: every run prints its mean load average.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from defacebench.perf import grid_report as rep
from defacebench.perf.grid import (GridParams, load_run, measure_dask, measure_grid, measured_counts,
                                   unit_costs)
from defacebench.perf.measure import BenchmarkError, machine
from defacebench.perf.projection import Grid, project, without_multiview


def _names(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    d = GridParams()
    ap.add_argument("--subjects", type=int, default=100, help="subjects to synthesise and run (default 100)")
    ap.add_argument("--dataset", type=Path, default=None, help="an existing DICOM dataset instead of synthesising")
    ap.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: a fresh temp folder)")
    ap.add_argument("--defacers", default=",".join(d.defacers), help="defacers measured (none first)")
    ap.add_argument("--renderer", default=d.renderer)
    ap.add_argument("--detectors", default=",".join(d.detectors), help="one attacker per detector")
    ap.add_argument("--recognizer", default=d.recognizer)
    ap.add_argument("--multiview-detector", default=d.multiview_detector)
    ap.add_argument("--target-subjects", type=int, default=300)
    ap.add_argument("--target-defacers", type=int, default=5, help="tested defacers (the control comes on top)")
    ap.add_argument("--dask", default="", help="comma list of Dask LocalCluster worker counts to measure, e.g. 1,2")
    ap.add_argument("--reuse", action="store_true",
                    help="rebuild the tables from the runs already measured in --workdir (nothing is run)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    p = GridParams(subjects=args.subjects, defacers=_names(args.defacers), renderer=args.renderer,
                   detectors=_names(args.detectors), recognizer=args.recognizer,
                   multiview_detector=args.multiview_detector)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="defacebench-grid-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if args.reuse:
            dataset = args.dataset
            rescan, mv = (load_run(work / "results-grid", r) for r in ("rescan", "multiview"))
            dask = {int(k): load_run(work / f"results-dask{k}", f"dask{k}") for k in _names(args.dask)}
        else:
            dataset = args.dataset or _sample(args.subjects, work)
            rescan, mv = measure_grid(p, dataset, work)
            print("[grid runs done]", file=sys.stderr, flush=True)
            dask = {int(k): measure_dask(p, dataset, work, int(k)) for k in _names(args.dask)}
        units, face_rate, grid_face_rate = unit_costs(p, rescan, mv)
        target = Grid(args.target_subjects, args.target_defacers, p.detectors, (p.multiview_detector,), p.views)
        with_mv = project(target, units, face_rate, grid_face_rate)
        plain = project(without_multiview(target), units, face_rate, grid_face_rate)
    except (BenchmarkError, OSError) as exc:
        print(f"full_grid: {exc}", file=sys.stderr)
        return 2
    efficiency = rescan.measure.cpu_seconds / (rescan.measure.seconds * 2)
    info = machine()
    print(f"Machine: {info['cores']} cores, {info['ram_gib']} GiB RAM, {info['cpu']}; Python {info['python']}\n")
    print(f"Dataset: {dataset} ({args.subjects} subjects); work folder {work}\n")
    print("Commands:\n")
    runs = {"rescan (cold)": rescan, "multiview increment (same cache)": mv,
            **{f"dask {k} worker(s) (cold)": r for k, r in dask.items()}}
    for name, r in runs.items():
        print(f"- {name}: `{rep.command(r)}`")
    print("\n" + rep.runs_table(runs) + "\n")
    print(f"Per-unit costs (faces per default-view image {face_rate:.2f}, per new grid image {grid_face_rate:.2f}):\n")
    print(rep.units_table(units, measured_counts(p, rescan, mv)) + "\n")
    print(f"Projection: {target.subjects} subjects x {target.defacers} defacers (+ control) x "
          f"{len(target.detectors)} attackers; multiview: {target.views} views/scan for "
          f"{p.renderer}-{p.multiview_detector}-{p.recognizer}\n")
    print(rep.projection_table(plain, with_mv) + "\n")
    print(rep.wall_table(plain, with_mv, min(1.0, efficiency)) + "\n")
    print(f"Dominant stages: without multiview {rep.dominant(plain)}; with multiview {rep.dominant(with_mv)}\n")
    if dask:
        print(rep.dask_table(dask))
    return 0


def _sample(n: int, work: Path) -> Path:
    """Synthesise the dataset (untimed: it is the input)."""
    from defacebench.data.sample import SampleParams, make_sample_dataset

    return make_sample_dataset(work / f"sample-{n}", SampleParams(n_subjects=n))


if __name__ == "__main__":
    sys.exit(main())
