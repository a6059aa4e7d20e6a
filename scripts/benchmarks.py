#!/usr/bin/env python
"""Pipeline performance measurements of issue 7 item 5 (d, e, f, a2), printed as a Markdown table.

A thin wrapper: the measuring code is :mod:`defacebench.perf` (shared with the pytest-benchmark
tests under tests/perf/). Run, e.g.::

    python scripts/benchmarks.py --only convert,matrix
    python scripts/benchmarks.py --only sample_run --sample-defacers none,quickshear --sample-renderers surface

Every figure comes with the machine it was measured on (cores, RAM, CPU model).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from defacebench.perf import MEASUREMENTS, BenchmarkError, BenchParams, measure, report


def main(argv: list[str] | None = None) -> int:
    """Parse options, run the chosen measurements, print the Markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(MEASUREMENTS), help=f"comma list of {', '.join(MEASUREMENTS)}")
    ap.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: a fresh temp folder)")
    for kind in ("defacers", "renderers", "detectors", "recognizers"):
        ap.add_argument(f"--sample-{kind}", default=None, help=f"restrict the sample run's {kind} (default: all)")
    ap.add_argument("--memory-subjects", type=int, default=BenchParams.memory_subjects)
    ap.add_argument("--matrix-n", type=int, default=BenchParams.matrix_n)
    ap.add_argument("--matrix-pairs", type=int, default=BenchParams.matrix_pairs)
    args = ap.parse_args(argv)
    params = BenchParams(sample_defacers=args.sample_defacers, sample_renderers=args.sample_renderers,
                         sample_detectors=args.sample_detectors, sample_recognizers=args.sample_recognizers,
                         memory_subjects=args.memory_subjects, matrix_n=args.matrix_n,
                         matrix_pairs=args.matrix_pairs)
    names = [m.strip() for m in args.only.split(",") if m.strip()]
    work = args.workdir or Path(tempfile.mkdtemp(prefix="defacebench-bench-"))
    try:
        figures = measure(names, params, work)
    except BenchmarkError as exc:
        ap.exit(2, f"benchmarks: {exc}\n")
    print(report(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
