"""The harness's own performance measurements (issue 7, item 5: d, e, f, a2; render seconds per view).

Measuring code lives here so that ``scripts/benchmarks.py`` (prints a Markdown table with the
machine) and the pytest-benchmark tests under ``tests/perf/`` report the same quantities from the
same functions. Modules: :mod:`~defacebench.perf.measure` (figures, clocks, machine, table),
:mod:`~defacebench.perf.convert` (d), :mod:`~defacebench.perf.runs` (e, f: whole ``defacebench run``
processes), :mod:`~defacebench.perf.attacker` (a2, render seconds). Issue 15's full-grid benchmark (``scripts/full_grid.py``) uses
:mod:`~defacebench.perf.grid` (measured runs, per-unit costs), :mod:`~defacebench.perf.projection`
(the arithmetic) and :mod:`~defacebench.perf.grid_report` (its tables). Like the rest of the engine
it never imports a plugin package: plugins come from the registry.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

from defacebench.perf.attacker import measure_matrix
from defacebench.perf.convert import measure_convert
from defacebench.perf.measure import BenchmarkError, BenchParams, Figure, machine, markdown
from defacebench.perf.runs import measure_memory, measure_sample_run

MEASUREMENTS: dict[str, Callable[[BenchParams, Path], list[Figure]]] = {
    "convert": measure_convert, "sample_run": measure_sample_run, "memory": measure_memory, "matrix": measure_matrix,
}

__all__ = ["MEASUREMENTS", "BenchParams", "BenchmarkError", "Figure", "measure", "report"]


def measure(names: list[str], params: BenchParams, workdir: Path) -> list[Figure]:
    """Run the chosen measurements (in :data:`MEASUREMENTS` order, each in ``workdir/<name>``);
    an unknown name raises BenchmarkError listing the known ones before anything runs."""
    unknown = sorted(set(names) - set(MEASUREMENTS))
    if unknown:
        raise BenchmarkError(f"unknown measurement(s) {unknown}; choose from {', '.join(MEASUREMENTS)}")
    figures: list[Figure] = []
    for name, fn in MEASUREMENTS.items():
        if name in names:
            figures += fn(params, workdir / name)
            print(f"[{name} done]", file=sys.stderr)
    return figures


def report(figures: list[Figure]) -> str:
    """The figures as a Markdown table headed by this machine."""
    return markdown(figures, machine())
