#!/usr/bin/env python
"""Per-stage CPU seconds of a cold, serial `defacebench run` (issue #15's profile run), and two
such profiles side by side.

Why: the harness's own cost (conversion, QC, rendering...) has to be compared with a former
commit's, which has no per-stage timing in its manifest; cProfile with a CPU-time clock measures
both alike. Run from the worktree of the product to measure, with its venv::

    python scripts/profile_stages.py run OUT [--dataset DIR]   # writes OUT/run.prof, OUT/totals.json
    python scripts/profile_stages.py table BEFORE/run.prof AFTER/run.prof
    python scripts/profile_stages.py compare BEFORE AFTER    # same results? (OUT folders of two runs)

A stage's seconds are the cumulative CPU time of its stage function (``defacebench/stages.py`` in
the former layout, ``defacebench/run/stages.py`` now); "other" is the rest of the run. cProfile's
own overhead inflates pure-Python code (pydicom parsing) much more than C code (ANTs, VTK, dlib).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

RUN_ARGS = ["--executor", "serial", "--defacers", "none,quickshear,pydeface_ants", "--renderers", "surface",
            "--detectors", "dlib_hog,opencv_haar", "--recognizers", "dlib_resnet"]


def run_args() -> list[str]:
    """The profile run's product, named explicitly: every plugin list, and the scenario. The
    product measured in ff3af89 ran only the rescan scenario (its default, ``--scenario``); main
    since runs more scenarios by default (``--scenarios``), so they are pinned to rescan here."""
    try:
        import defacebench.run.scenarios  # noqa: F401 - the layout with --scenarios
    except ImportError:
        return [*RUN_ARGS, "--scenario", "rescan"]
    return [*RUN_ARGS, "--scenarios", "rescan"]


def profile_run(out: Path, dataset: str) -> None:
    """The profile run into ``out`` (cold: a fresh cache under ``out``)."""
    import cProfile

    from defacebench.cli import main

    argv = ["run", "--dataset", dataset, *run_args(), "--cache-dir", str(out / "cache"), "--results", str(out / "results")]
    prof = cProfile.Profile(time.process_time)  # CPU seconds of the process (all its threads)
    wall = time.perf_counter()
    prof.enable()
    code = main(argv)
    prof.disable()
    prof.dump_stats(str(out / "run.prof"))
    own = resource.getrusage(resource.RUSAGE_SELF)
    (out / "totals.json").write_text(json.dumps({"exit": code, "argv": argv, "wall_s": time.perf_counter() - wall,
                                                 "cpu_s": own.ru_utime + own.ru_stime}, indent=1))


def _cum(stats: dict, file_part: str, name: str) -> float:
    """Cumulative seconds of every function ``name`` whose file path contains ``file_part``."""
    return sum(v[3] for (f, _, n), v in stats.items() if n == name and file_part in f)


def stages(path: Path) -> dict[str, float]:
    """CPU seconds per stage of one profile (see the module docstring)."""
    import pstats

    st = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    total = max(v[3] for v in st.values())
    s = "defacebench/stages.py" if _cum(st, "defacebench/stages.py", "convert_task") else "defacebench/run/stages.py"
    nested_qc = _cum(st, s, "_build_qc")  # the former layout ran QC inside the deface task
    qc = nested_qc or _cum(st, s, "qc_task")
    deface_all, reg = _cum(st, s, "deface_task"), _cum(st, "registration.py", "keep_mask_for")
    out = {"convert": _cum(st, s, "convert_task"), "deface (tools + cleanup)": deface_all - nested_qc,
           "  of which pydeface_ants registration": reg, "qc": qc, "render": _cum(st, s, "render_task"),
           "detect": _cum(st, s, "detect_task"), "embed": _cum(st, s, "embed_task")}
    staged = out["convert"] + deface_all + (0 if nested_qc else qc) + out["render"] + out["detect"] + out["embed"]
    out["other (discovery, evaluation, reports, imports)"] = total - staged
    out["total"] = total
    out["total without registration"] = total - reg
    return out


def table(before: Path, after: Path) -> str:
    """Markdown table of both profiles' stages side by side."""
    b, a = stages(before), stages(after)
    rows = ["| stage | before, CPU s | after, CPU s | after / before |", "|---|---:|---:|---:|"]
    rows += [f"| {k} | {b[k]:.1f} | {a[k]:.1f} | {a[k] / b[k]:.0%} |" for k in b]
    return "\n".join(rows)


def _without_timing(obj):
    """``obj`` (parsed JSON) without its timing fields (seconds, which differ between any two runs)."""
    if isinstance(obj, dict):
        return {k: _without_timing(v) for k, v in obj.items() if "second" not in k}
    return [_without_timing(v) for v in obj] if isinstance(obj, list) else obj


def compare(before: Path, after: Path) -> list[str]:
    """One line per compared artifact of two profile runs (``OUT`` folders), "same" or "DIFF":
    every configuration's distances.csv byte for byte, its metrics.json without timing fields, and
    the QC records (every ``qc.json`` of the qc stage, as a sorted list)."""
    runs = [next((out / "results").iterdir()) for out in (before, after)]
    lines = []
    for config in sorted(p.name for p in runs[0].iterdir() if p.is_dir()):
        a, b = (run / config for run in runs)
        lines.append(("same" if (a / "distances.csv").read_bytes() == (b / "distances.csv").read_bytes() else "DIFF")
                     + f" {config}/distances.csv")
        same = _without_timing(json.loads((a / "metrics.json").read_text())) == _without_timing(
            json.loads((b / "metrics.json").read_text()))
        lines.append(("same" if same else "DIFF") + f" {config}/metrics.json (timing fields left out)")
    qc = [sorted(json.dumps(json.loads(p.read_text()), sort_keys=True) for p in (out / "cache").rglob("qc/*/*/qc.json"))
          for out in (before, after)]
    lines.append(("same" if qc[0] == qc[1] else "DIFF") + f" QC records ({len(qc[0])} and {len(qc[1])})")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run")
    run.add_argument("out", type=Path)
    run.add_argument("--dataset", default="/work/data/sample16-old/dicom")
    tab = sub.add_parser("table")
    tab.add_argument("before", type=Path)
    tab.add_argument("after", type=Path)
    cmp = sub.add_parser("compare")
    cmp.add_argument("before", type=Path)
    cmp.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.cmd == "run":
        args.out.mkdir(parents=True, exist_ok=True)
        profile_run(args.out, args.dataset)
    elif args.cmd == "compare":
        lines = compare(args.before, args.after)
        print("\n".join(lines))
        raise SystemExit(any(line.startswith("DIFF") for line in lines))
    else:
        print(table(args.before, args.after))


if __name__ == "__main__":
    main()
