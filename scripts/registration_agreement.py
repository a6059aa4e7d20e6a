#!/usr/bin/env python
"""Removed-voxel agreement and CPU of the template defacers and deepdefacer, this checkout against a
former commit (issue 23: the ANTs registration <= 2 CPU s per volume at Dice >= 0.98 with today's
masks; deepdefacer's inference cost at unchanged masks).

For each defacer (``pydeface_ants``, ``caideface_ants``, ``deepdefacer``) a child process per side (REF's code via
``PYTHONPATH``, then this checkout's) defaces every acquisition of a sample dataset (both sessions
of each subject) after one warm-up call on the first (template reads are not counted), records the
CPU s of each volume (process + reaped children) and keeps its removed-voxel mask. The parent prints,
per defacer, the median CPU s per volume of each side, their ratio, and the Dice of the two removed
masks over the volumes (min and median; every volume's figure with ``--json``). Run::

    python scripts/registration_agreement.py --dataset DIR --ref main
    python scripts/registration_agreement.py --dataset DIR --ref main --defacers deepdefacer

DATASET is a ``defacebench sample-data`` output folder.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

from defacebench.anatomy.brainmask import dice

sys.path.insert(0, str(Path(__file__).resolve().parent))
from unit_costs import ROOT, _defacer, _worktree, child_run, cpu  # noqa: E402  (the sibling script's helpers)

DEFACERS = ("pydeface_ants", "caideface_ants", "deepdefacer")


def volumes(dataset: Path, n: int | None) -> list[Path]:
    """Every acquisition's NIfTI copy of the first ``n`` subjects (all when None), sorted."""
    found = sorted((dataset / "nifti").glob("sub-*/ses-*/*/*.nii.gz"))
    if n is not None:
        keep = {f"sub-{i + 1:03d}" for i in range(n)}
        found = [p for p in found if p.name.split("_")[0] in keep]
    if not found:
        raise SystemExit(f"no acquisitions under {dataset / 'nifti'}: give a `defacebench sample-data` folder")
    return found


def _make(name: str):
    """The defacer ``name`` with its default params (the sibling script knows the template ones)."""
    if name == "deepdefacer":
        from defacers.deepdefacer import Deepdefacer

        return Deepdefacer()
    return _defacer(name)


def child(args) -> int:
    """Deface every volume with ``args.defacer`` (the code on ``sys.path``); save removed masks in
    ``args.out`` and print the CPU s of each volume as JSON."""
    import nibabel as nib

    import defacebench

    defacer, out = _make(args.defacer), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = volumes(args.dataset, args.n)
    seconds = {}
    with tempfile.TemporaryDirectory(prefix="reg-agree-") as tmp:
        for i, path in [("warm-up", paths[0]), *enumerate(paths)]:
            workdir = Path(tmp) / str(i)
            workdir.mkdir()
            start = cpu()
            result = defacer.deface(path, workdir)
            if i == "warm-up":
                continue
            seconds[path.name] = cpu() - start
            removed = np.asarray(nib.load(str(result.mask_path)).dataobj) > 0
            np.save(out / f"{path.name}.npy", np.packbits(removed))
    print(json.dumps({"code": str(Path(defacebench.__file__).resolve().parents[1]), "cpu_s": seconds}))
    return 0


def _side(code: Path, args, defacer: str, out: Path) -> dict:
    child_args = ["--dataset", str(args.dataset), "--defacer", defacer, "--out", str(out)]
    got = child_run(Path(__file__), code, child_args + (["--n", str(args.n)] if args.n else []), defacer)
    return got["cpu_s"]


def compare(args) -> int:
    sides = {"before": _worktree(args.ref), "after": ROOT}
    report = {}
    with tempfile.TemporaryDirectory(prefix="reg-agree-") as tmp:
        for defacer in args.defacers:
            cpu_s = {s: _side(code, args, defacer, Path(tmp) / s / defacer) for s, code in sides.items()}
            dices = {}
            for name in cpu_s["before"]:
                a, b = (np.load(Path(tmp) / s / defacer / f"{name}.npy") for s in sides)
                dices[name] = dice(np.unpackbits(a).astype(bool), np.unpackbits(b).astype(bool))
            report[defacer] = {"cpu_s": cpu_s, "dice": dices}
            if args.json:  # after each defacer: a later failure keeps the figures so far
                Path(args.json).write_text(json.dumps({"ref": args.ref, "report": report}, indent=1))
    print(f"| defacer | volumes | before ({args.ref}) CPU s | after CPU s | after / before | Dice min | Dice median |")
    print("|---|---|---|---|---|---|---|")
    for defacer, r in report.items():
        b, a = (statistics.median(r["cpu_s"][s].values()) for s in ("before", "after"))
        d = list(r["dice"].values())
        print(f"| {defacer} | {len(d)} | {b:.3f} | {a:.3f} | {a / b:.2f} | {min(d):.4f} | {statistics.median(d):.4f} |")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, required=True, help="a `defacebench sample-data` output folder")
    ap.add_argument("--ref", default="main", help="git ref of today's code (default main)")
    ap.add_argument("--defacers", default=",".join(DEFACERS[:2]), help=f"comma list of {', '.join(DEFACERS)}")
    ap.add_argument("--n", type=int, default=None, help="first N subjects only (default all)")
    ap.add_argument("--json", default=None, help="also write every figure to this file")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--defacer", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.dataset = args.dataset.resolve()
    if args.child:
        return child(args)
    args.defacers = [d.strip() for d in args.defacers.split(",") if d.strip()]
    unknown = [d for d in args.defacers if d not in DEFACERS]
    if unknown:
        ap.error(f"unknown defacer(s) {unknown}; choose from {', '.join(DEFACERS)}")
    return compare(args)


if __name__ == "__main__":
    sys.exit(main())
