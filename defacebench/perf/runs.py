"""Items e and f: whole ``defacebench run`` processes, cold and warm, and peak memory over many subjects.

Why a subprocess: these figures are what a user pays for a run, imports and worker start-up
included, and the peak memory is that of the whole process tree (the run and its workers), which
only polling from outside sees.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from defacebench.perf.measure import BenchmarkError, BenchParams, Figure, cpu_now


def run_argv(dataset: Path | None, results: Path, run_id: str, plugins: dict[str, str | None],
             n_bootstrap: int, cache: Path) -> list[str]:
    """The ``defacebench run`` command line of a measured run (as docs/benchmarks.md shows it)."""
    argv = [sys.executable, "-m", "defacebench", "run", "--results", str(results), "--run-id", run_id,
            "--n-bootstrap", str(n_bootstrap), "--cache-dir", str(cache)]
    if dataset is not None:
        argv += ["--dataset", str(dataset)]
    for kind, names in plugins.items():
        if names:
            argv += [f"--{kind}", names]
    return argv


@dataclass(frozen=True)
class RunMeasure:
    """Wall and CPU seconds, peak RSS summed over the process tree (psutil polling), largest single
    process RSS (MiB), and the mean 1-minute load average during the run (other jobs on the machine
    inflate wall times: the load says how much). ``process_peaks_mib``: (command, peak RSS MiB) of
    every process seen, the run itself first (a worker's own peak, e.g. per Dask worker)."""

    seconds: float
    cpu_seconds: float
    tree_peak_mib: float
    largest_process_mib: float
    mean_load: float
    returncode: int
    stdout: str
    stderr: str
    process_peaks_mib: tuple[tuple[str, float], ...] = ()


def measure_process(argv: list[str], env: dict, poll_s: float = 0.1) -> RunMeasure:
    """Run ``argv`` and poll the RSS of it and all its descendants every ``poll_s`` seconds."""
    import psutil

    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    start, cpu = time.perf_counter(), cpu_now()
    proc = psutil.Popen(argv, env=env, stdout=out, stderr=err)
    tree_peak = single_peak = 0
    loads = []
    peaks: dict[int, tuple[str, int]] = {}
    while proc.poll() is None:
        loads.append(os.getloadavg()[0])
        total = 0
        for p in [proc, *_children(proc)]:
            try:
                rss = p.memory_info().rss
            except psutil.Error:  # a worker that exited between listing and reading
                continue
            total += rss
            single_peak = max(single_peak, rss)
            peaks[p.pid] = (peaks[p.pid][0] if p.pid in peaks else _command(p), max(rss, peaks.get(p.pid, ("", 0))[1]))
        tree_peak = max(tree_peak, total)
        time.sleep(poll_s)
    seconds, cpu = time.perf_counter() - start, cpu_now() - cpu
    out.seek(0), err.seek(0)
    return RunMeasure(seconds, cpu, tree_peak / 2**20, single_peak / 2**20, float(np.mean(loads or [0.0])),
                      proc.returncode,
                      out.read().decode(errors="replace"), err.read().decode(errors="replace"),
                      tuple((cmd, rss / 2**20) for cmd, rss in peaks.values()))


def _command(proc) -> str:
    """A process's command line, shortened (which process a peak belongs to)."""
    import psutil

    try:
        return " ".join(proc.cmdline())[:200]
    except psutil.Error:
        return "?"


def _children(proc) -> list:
    """All live descendants of ``proc`` (workers, tools); none once it has exited."""
    import psutil

    try:
        return proc.children(recursive=True)
    except psutil.Error:
        return []


def _check(m: RunMeasure, what: str) -> None:
    """A failed run makes its timing meaningless: stop with the run's own message."""
    if m.returncode != 0:
        raise BenchmarkError(f"{what} exited with {m.returncode} (fix the run, then measure again):\n"
                             f"{m.stdout[-3000:]}\n{m.stderr[-3000:]}")


def measure_sample_run(p: BenchParams, work: Path) -> list[Figure]:
    """Item e: the default sample run, cold (empty cache) then warm (same cache, same command)."""
    from defacebench.data.sample import sample_dataset

    plugins = {"defacers": p.sample_defacers, "renderers": p.sample_renderers,
               "detectors": p.sample_detectors, "recognizers": p.sample_recognizers}
    sample_dataset()  # the dataset is an input, built (or found) before timing
    env = {**os.environ, **p.extra_env}
    measures = {}
    for run_id in ("cold", "warm"):
        argv = run_argv(None, work / "results-e", run_id, plugins, p.sample_bootstrap, work / "cache-e")
        measures[run_id] = measure_process(argv, env)
        _check(measures[run_id], f"{run_id} sample run")
    cold, warm = measures["cold"], measures["warm"]
    restricted = ", ".join(f"--{k} {v}" for k, v in plugins.items() if v) or "all available plugins"
    return [Figure("e", "sample run, cold (s, wall / CPU)", f"{cold.seconds:.1f} / {cold.cpu_seconds:.1f}",
                   f"{restricted}; {_summary_line(cold.stdout)}; mean load {cold.mean_load:.1f}"),
            Figure("e", "sample run, warm (s, wall / CPU)", f"{warm.seconds:.1f} / {warm.cpu_seconds:.1f}",
                   f"{_summary_line(warm.stdout)}; mean load {warm.mean_load:.1f}"),
            Figure("e", "warm / cold (wall / CPU)", f"{100 * warm.seconds / cold.seconds:.1f} % / "
                   f"{100 * warm.cpu_seconds / cold.cpu_seconds:.1f} %", "target < 10 %")]


def _summary_line(stdout: str) -> str:
    """The run's closing counts line ("N passed, N failed, N defacer_failed, N skipped")."""
    return next((ln for ln in stdout.splitlines() if re.match(r"\d+ passed, \d+ failed", ln)), "")


def volumes_float32_bytes(root: Path) -> tuple[int, int]:
    """(number of volumes, total bytes as float32) of every acquisition of a DICOM dataset, from the
    DICOM headers (rows x columns x slices x 4), without loading a volume."""
    import pydicom

    n, total = 0, 0
    for series in sorted({f.parent for f in root.rglob("*.dcm")}):
        files = list(series.glob("*.dcm"))
        head = pydicom.dcmread(files[0], stop_before_pixels=True)
        total += int(head.Rows) * int(head.Columns) * len(files) * 4
        n += 1
    return n, total


@dataclass(frozen=True)
class MemoryRun:
    """One cold-cache run over a generated sample: its measure and the size of its volumes."""

    n_subjects: int
    n_volumes: int
    volumes_mib: float
    measure: RunMeasure


def memory_run(p: BenchParams, work: Path, n_subjects: int) -> MemoryRun:
    """A cold-cache run of the restricted plugins over an ``n_subjects`` sample (built first, untimed)."""
    from defacebench.data.sample import SampleParams, make_sample_dataset

    tag = f"n{n_subjects}"
    root = make_sample_dataset(work / f"sample-{tag}", SampleParams(n_subjects=n_subjects, seed=p.memory_seed))
    n_vol, vol_bytes = volumes_float32_bytes(root)
    argv = run_argv(root, work / f"results-{tag}", "mem", dict(p.memory_plugins), p.sample_bootstrap,
                    work / f"cache-{tag}")
    m = measure_process(argv, {**os.environ, **p.extra_env})
    _check(m, f"{n_subjects}-subject run")
    return MemoryRun(n_subjects, n_vol, vol_bytes / 2**20, m)


def measure_memory(p: BenchParams, work: Path) -> list[Figure]:
    """Item f: peak RSS and wall time over ``memory_subjects`` subjects, against the same run over
    ``memory_reference_subjects``: if volumes were held all at once, the peak would grow by at
    least the growth of the volumes' total size."""
    ref = memory_run(p, work, p.memory_reference_subjects)
    big = memory_run(p, work, p.memory_subjects)
    restricted = " ".join(f"--{k} {v}" for k, v in p.memory_plugins)
    rows = []
    for r in (ref, big):
        m = r.measure
        rows += [Figure("f", f"{r.n_subjects}-subject run (s, wall / CPU)", f"{m.seconds:.1f} / {m.cpu_seconds:.1f}",
                        f"cold cache; {restricted}; mean load {m.mean_load:.1f}"),
                 Figure("f", f"{r.n_subjects} subjects: peak RSS, tree sum / largest process (MiB)",
                        f"{m.tree_peak_mib:.0f} / {m.largest_process_mib:.0f}", "psutil, polled every 0.1 s"),
                 Figure("f", f"{r.n_subjects} subjects: all {r.n_volumes} volumes as float32 (MiB)",
                        f"{r.volumes_mib:.0f}")]
    growth = (big.measure.tree_peak_mib - ref.measure.tree_peak_mib) / (big.volumes_mib - ref.volumes_mib)
    return rows + [Figure("f", "peak growth / volume growth", f"{growth:.3f}",
                          "1.0 or more would mean the volumes accumulate in memory")]
