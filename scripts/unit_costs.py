#!/usr/bin/env python
"""CPU seconds per unit of work of the harness's costly steps (issue 23 items 1 and 3), and the same
measured on a former commit, interleaved, with medians over repeats and the ratio.

Units (each measured on the first ``--n`` scan acquisitions of a sample dataset, after one warm-up
call on the first of them so imports, template reads and render windows are not counted; a unit's
figure per repeat is its total CPU over the acquisitions divided by the units made):

- ``vtk_volume``: one view of the `vtk_volume` renderer (its default single view);
- ``surface_multiview``: one view of the `surface` renderer with the multiview grid (15 views);
- ``quickshear_mask``: quickshear's brain mask of one volume (``Quickshear._brain_mask``);
- ``pydeface_ants`` / ``caideface_ants``: one volume defaced (mostly the ANTs registration);
- ``dlib_hog_multiview``: `dlib_hog` on one multiview render, with the params the pipeline uses on
  view grids (``DlibHogParams.for_view_sets()`` where the code has it);
- ``dlib_resnet``: `dlib_resnet` embedding of one face, a volume's multiview set per call.

CPU = ``time.process_time()`` plus the reaped children's user + system time (ANTs may run in a
child). Run, e.g.::

    python scripts/unit_costs.py --dataset DIR --n 4 --repeats 3                  # this checkout
    python scripts/unit_costs.py --dataset DIR --n 4 --repeats 3 --ref main       # before vs now

``--ref REF`` checks REF out in a git worktree (``/tmp/unit-costs-<commit>``) and alternates, per
repeat, a child process importing REF's code (``PYTHONPATH``) with one importing this checkout's, so
both see the same machine load. Each child prints JSON; the table has per unit the median CPU s per
unit of each side and after / before. DATASET is a ``defacebench sample-data`` output folder.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

UNITS = ("vtk_volume", "surface_multiview", "quickshear_mask", "pydeface_ants", "caideface_ants",
         "dlib_hog_multiview", "dlib_resnet")
ROOT = Path(__file__).resolve().parents[1]


def cpu() -> float:
    """CPU seconds of this process and its reaped children."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def _paths(dataset: Path, n: int) -> list[Path]:
    """NIfTI copies of the first ``n`` subjects' first scans."""
    from defacebench.data.sample import subject_ids
    from defacebench.data.sample_write import nifti_copy_path

    root = dataset / "dicom" if (dataset / "dicom").is_dir() else dataset
    paths = [nifti_copy_path(root, sid, "scan") for sid in subject_ids(n)]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise SystemExit(f"{missing[0]} does not exist: give a `defacebench sample-data` folder with >= {n} subjects")
    return paths


def _volume(path: Path):
    from defacebench.data.volume import load_volume

    return load_volume(path)


def _per_unit(fn, items) -> float:
    """CPU seconds per unit: ``fn(item)`` returns how many units it made."""
    start, units = cpu(), 0
    for item in items:
        units += fn(item)
    return (cpu() - start) / max(units, 1)


def _renderer(name: str):
    if name == "vtk_volume":
        from recognizers.render.vtk_volume import VtkVolumeRenderer

        return VtkVolumeRenderer()
    from defacebench.run.viewgrid import default_grid  # the multiview scenario's grid
    from recognizers.render.surface import SurfaceParams, SurfaceRenderer

    return SurfaceRenderer(SurfaceParams(views=default_grid()))


def _multiview_sets(volumes) -> list[list]:
    """Per volume, its 15 surface renders (images only)."""
    renderer = _renderer("surface")
    return [[v.image for v in renderer.render(vol)] for vol in volumes]


def measure_unit(unit: str, paths: list[Path], work: Path) -> float:
    """CPU seconds per unit of ``unit`` on ``paths`` (after a warm-up on the first)."""
    if unit in ("vtk_volume", "surface_multiview"):
        renderer = _renderer("vtk_volume" if unit == "vtk_volume" else "surface")
        volumes = [_volume(p) for p in paths]
        renderer.render(volumes[0])
        return _per_unit(lambda vol: len(renderer.render(vol)), volumes)
    if unit == "quickshear_mask":
        import nibabel as nib

        from defacers.quickshear import Quickshear

        q = Quickshear()
        imgs = [(nib.load(str(p)), p) for p in paths]
        for img, _ in imgs:
            img.get_fdata()  # read once: the unit is the mask, not the gzip
        q._brain_mask(*imgs[0])
        return _per_unit(lambda it: (q._brain_mask(*it), 1)[1], imgs)
    if unit in ("pydeface_ants", "caideface_ants"):
        defacer = _defacer(unit)
        counter = iter(range(10 ** 6))

        def one(path: Path) -> int:
            folder = work / f"{unit}-{next(counter)}"
            folder.mkdir(parents=True)
            defacer.deface(path, folder)
            return 1

        one(paths[0])
        return _per_unit(one, paths)
    sets = _multiview_sets([_volume(p) for p in paths])
    if unit == "dlib_hog_multiview":
        det = _view_set_hog()
        det.detect(sets[0][0])
        return _per_unit(lambda images: len([det.detect(im) for im in images]), sets)
    if unit == "dlib_resnet":
        from recognizers.embed.dlib_resnet import DlibResnet

        det, rec = _view_set_hog(), DlibResnet()
        faced = [[(im, f[0]) for im in images if (f := det.detect(im))] for images in sets]
        faced = [items for items in faced if items]
        rec.embed(faced[0])
        return _per_unit(lambda items: (rec.embed(items), len(items))[1], faced)
    raise SystemExit(f"unknown unit {unit!r}; choose from {', '.join(UNITS)}")


def _view_set_hog():
    """`dlib_hog` as the pipeline runs it on a view grid: its ``for_view_sets()`` params where the
    code has them (issue 23: no 2x pyramid level on many-view sets), else its defaults."""
    from recognizers.detect.dlib import DlibHog

    det = DlibHog()
    hook = getattr(det.params, "for_view_sets", None)
    return DlibHog(hook()) if callable(hook) else det


def _defacer(name: str):
    if name == "pydeface_ants":
        from defacers.pydeface import PydefaceAnts

        return PydefaceAnts()
    from defacers.caideface import CaidefaceAnts

    return CaidefaceAnts()


def child(args) -> int:
    """Measure the units in this process (the code on ``sys.path``) and print one JSON object."""
    import defacebench

    paths = _paths(args.dataset, args.n)
    out = {"code": str(Path(defacebench.__file__).resolve().parents[1]), "cpu_s_per_unit": {}}
    with tempfile.TemporaryDirectory(prefix="unit-costs-") as tmp:
        for unit in args.units:
            out["cpu_s_per_unit"][unit] = measure_unit(unit, paths, Path(tmp))
    print(json.dumps(out))
    return 0


def _worktree(ref: str) -> Path:
    """A detached worktree of ``ref`` (made once per commit, reused)."""
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", ref], capture_output=True, text=True,
                         check=True).stdout.strip()
    path = Path(tempfile.gettempdir()) / f"unit-costs-{sha[:12]}"
    if not path.is_dir():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), sha], check=True,
                       capture_output=True)
    return path


def child_run(script: Path, code: Path, child_args: list[str], label: str) -> dict:
    """Run ``script --child child_args`` with the code of ``code`` first on its path; its last stdout
    line, parsed as JSON. Refuses a child that imported another checkout's code."""
    env = {**os.environ, "PYTHONPATH": str(code), "DEFACEBENCH_WEIGHTS": str((ROOT / "weights").resolve())}
    argv = [sys.executable, str(script.resolve()), "--child", *child_args]
    run = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=str(code))
    if run.returncode != 0:
        raise SystemExit(f"child for {code} ({label}) failed:\n{run.stderr[-3000:]}")
    got = json.loads(run.stdout.strip().splitlines()[-1])
    if Path(got["code"]) != code.resolve():
        raise SystemExit(f"child imported {got['code']}, not {code}: PYTHONPATH did not take precedence")
    return got


def _run_child(code: Path, args, unit: str) -> dict:
    """One child measuring ``unit`` with the code of ``code`` first on its path."""
    got = child_run(Path(__file__), code, ["--dataset", str(args.dataset), "--n", str(args.n), "--units", unit], unit)
    return got["cpu_s_per_unit"]


def compare(args) -> int:
    """Alternate children of REF and of this checkout; print the medians and ratios."""
    sides = {"before": _worktree(args.ref), "after": ROOT}
    figures = {s: {u: [] for u in args.units} for s in sides}
    for unit in args.units:
        for r in range(args.repeats):
            order = ("before", "after") if r % 2 == 0 else ("after", "before")
            for side in order:
                figures[side][unit].append(_run_child(sides[side], args, unit)[unit])
            print(f"# {unit} repeat {r + 1}: before {figures['before'][unit][-1]:.3f}, "
                  f"after {figures['after'][unit][-1]:.3f}", file=sys.stderr, flush=True)
    print(f"| unit | before ({args.ref}) CPU s | after CPU s | after / before |")
    print("|---|---|---|---|")
    for unit in args.units:
        b, a = statistics.median(figures["before"][unit]), statistics.median(figures["after"][unit])
        print(f"| {unit} | {b:.3f} | {a:.3f} | {a / b:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"ref": args.ref, "n": args.n, "figures": figures}, indent=1))
    return 0


def alone(args) -> int:
    """This checkout only: medians over repeats, each repeat a fresh child."""
    figures = {u: [] for u in args.units}
    for unit in args.units:
        for _ in range(args.repeats):
            figures[unit].append(_run_child(ROOT, args, unit)[unit])
    print("| unit | CPU s per unit (median) | repeats |")
    print("|---|---|---|")
    for unit in args.units:
        print(f"| {unit} | {statistics.median(figures[unit]):.3f} | {len(figures[unit])} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"n": args.n, "figures": figures}, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, required=True, help="a `defacebench sample-data` output folder")
    ap.add_argument("--n", type=int, default=4, help="acquisitions per unit (default 4)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--units", default=",".join(UNITS), help=f"comma list of {', '.join(UNITS)}")
    ap.add_argument("--ref", default=None, help="git ref to compare against (e.g. main)")
    ap.add_argument("--json", default=None, help="also write every figure to this file")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.units = [u.strip() for u in args.units.split(",") if u.strip()]
    unknown = [u for u in args.units if u not in UNITS]
    if unknown:
        ap.error(f"unknown unit(s) {unknown}; choose from {', '.join(UNITS)}")
    args.dataset = args.dataset.resolve()
    if args.child:
        return child(args)
    return compare(args) if args.ref else alone(args)


if __name__ == "__main__":
    sys.exit(main())
