"""Markdown tables of the full-grid measurement (issue 15 items 4, 5): the measured runs, the
per-unit costs, the projection with and without multiview, and the Dask scale-out.

Kept apart from :mod:`defacebench.perf.grid` (which runs things) so that the arithmetic of the
report can be tested on recorded manifests without running anything.
"""

from __future__ import annotations

import shlex

from tabulate import tabulate

from defacebench.perf.grid import MeasuredRun
from defacebench.perf.projection import Projection, Unit


def command(run: MeasuredRun) -> str:
    """The run's command as a shell line, with ``python -m`` for the interpreter's path."""
    argv = ["python", *run.argv[1:]]
    return shlex.join(argv)


def runs_table(runs: dict[str, MeasuredRun]) -> str:
    rows = [(name, f"{r.measure.seconds:.1f}", f"{r.measure.cpu_seconds:.1f}", f"{r.measure.mean_load:.1f}",
             f"{r.measure.tree_peak_mib:.0f}", r.manifest.get("executor", {}).get("kind", "?"))
            for name, r in runs.items()]
    return tabulate(rows, headers=("run", "wall s", "CPU s", "mean load (1 min)", "tree peak RSS MiB", "executor"),
                    tablefmt="github", disable_numparse=True)


def units_table(units: dict[tuple[str, str], Unit], measured: dict[tuple[str, str], float]) -> str:
    rows = [(u.stage, u.unit, f"{u.cpu_s:.3f}", f"{u.wall_s:.3f}",
             f"{measured[k]:.0f}" if k in measured else "-") for k, u in units.items()]
    return tabulate(rows, headers=("stage", "per", "CPU s / unit", "item wall s / unit", "units measured"),
                    tablefmt="github", disable_numparse=True)


def projection_table(without: Projection, with_mv: Projection) -> str:
    """Per stage: units and CPU hours without and with multiview, and each stage's share."""
    keys = list(dict.fromkeys([(r[0], r[1]) for r in with_mv.rows] + [(r[0], r[1]) for r in without.rows]))
    a = {(r[0], r[1]): r for r in without.rows}
    b = {(r[0], r[1]): r for r in with_mv.rows}

    def cell(rows: dict, key: tuple[str, str], total: float) -> tuple[str, str]:
        if key not in rows:
            return "-", "-"
        _, _, n, cpu = rows[key]
        return f"{n:,.0f}", f"{cpu / 3600:.2f} ({100 * cpu / total:.0f} %)"

    body = [(k[0], k[1], *cell(a, k, without.cpu_s), *cell(b, k, with_mv.cpu_s)) for k in keys]
    body.append(("**total**", "", "", f"**{without.cpu_s / 3600:.2f}**", "", f"**{with_mv.cpu_s / 3600:.2f}**"))
    return tabulate(body, headers=("stage", "per", "units", "CPU h (share)", "units, +multiview",
                                   "CPU h (share), +multiview"), tablefmt="github", disable_numparse=True)


def wall_table(without: Projection, with_mv: Projection, efficiency: float) -> str:
    """Wall hours: this machine's 2 cores to ourselves, this machine at the measured busy share
    (other jobs took the rest), and k single-threaded Dask workers kept busy."""
    rows = []
    for name, p in (("rescan only", without), ("rescan + multiview", with_mv)):
        rows.append((name, f"{p.cpu_s / 3600:.1f}", f"{p.wall_s(2) / 3600:.1f}", f"{p.wall_s(2, efficiency) / 3600:.1f}",
                     f"{p.wall_s(1) / 3600:.1f}", f"{p.wall_s(8) / 3600:.2f}", f"{p.wall_s(32) / 3600:.2f}"))
    return tabulate(rows, headers=("grid", "CPU h", "2 idle cores (h)", f"2 cores at the measured {100 * efficiency:.0f} % "
                                   "busy (h)", "per Dask worker = 1 worker (h)", "8 workers (h)", "32 workers (h)"),
                    tablefmt="github", disable_numparse=True)


def dask_table(runs: dict[int, MeasuredRun]) -> str:
    """Wall, CPU, speed-up against 1 worker, and per-worker peak RSS, with the load."""
    base = runs.get(1)
    rows = []
    for k, r in sorted(runs.items()):
        workers = worker_peaks(r)
        speed = f"{base.measure.seconds / r.measure.seconds:.2f}" if base else "-"
        cpu_speed = f"{base.measure.cpu_seconds / r.measure.cpu_seconds:.2f}" if base else "-"
        rows.append((k, f"{r.measure.seconds:.1f}", f"{r.measure.cpu_seconds:.1f}", speed, cpu_speed,
                     ", ".join(f"{m:.0f}" for m in workers) or "?", f"{root_peak(r):.0f}",
                     f"{r.measure.tree_peak_mib:.0f}", f"{r.measure.mean_load:.1f}"))
    return tabulate(rows, headers=("workers", "wall s", "CPU s", "wall speed-up", "CPU ratio 1/k",
                                   "peak RSS per worker MiB", "client+scheduler MiB", "tree peak MiB",
                                   "mean load"), tablefmt="github", disable_numparse=True)


def worker_peaks(run: MeasuredRun) -> list[float]:
    """Peak RSS of the Dask worker processes (spawned by multiprocessing; its resource tracker excluded)."""
    return sorted((mib for cmd, mib in run.measure.process_peaks_mib
                   if "multiprocessing" in cmd and "resource_tracker" not in cmd), reverse=True)


def root_peak(run: MeasuredRun) -> float:
    """Peak RSS of the run process itself (client, scheduler, nannies for a LocalCluster)."""
    peaks = run.measure.process_peaks_mib
    return peaks[0][1] if peaks else float("nan")


def dominant(p: Projection) -> str:
    """One sentence: the largest stages and their shares."""
    stages = p.by_stage()
    top = list(stages.items())[:3]
    return ", ".join(f"{s} {100 * c / p.cpu_s:.0f} %" for s, c in top)
