"""The records and clocks every measurement shares: figures, timings, the machine, the Markdown table.

Why CPU seconds next to wall seconds: the project is measured on shared machines, where other jobs
inflate wall time; user + sys seconds of the process and its reaped children (workers, external
tools) barely change with the load, so every figure carries both.
"""

from __future__ import annotations

import os
import platform
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from defacebench.errors import DefacebenchError


class BenchmarkError(DefacebenchError):
    """A measurement could not be made (a run failed, no face to embed): its figure would be wrong."""


@dataclass(frozen=True)
class Figure:
    """One measured figure: the issue item it answers, what, the value with its unit, and how."""

    item: str
    what: str
    value: str
    note: str = ""


@dataclass(frozen=True)
class BenchParams:
    """Sizes and restrictions of the measurements (recorded with the results).

    ``sample_*``: comma lists restricting the plugins of the cold/warm sample run (None: all);
    ``memory_*``: the two generated datasets of the memory measurement and the plugins run on them;
    ``matrix_*``: N of the matrix stage and how many random pairs the per-pair loop is timed on;
    ``extra_env``: environment variables added to every measured run (e.g. a plugins file).
    """

    convert_series: int = 4
    sample_defacers: str | None = None
    sample_renderers: str | None = None
    sample_detectors: str | None = None
    sample_recognizers: str | None = None
    sample_bootstrap: int = 200
    memory_subjects: int = 100
    memory_reference_subjects: int = 16
    memory_seed: int = 1
    memory_plugins: tuple[tuple[str, str], ...] = (("defacers", "none,quickshear"), ("renderers", "surface"),
                                                   ("detectors", "dlib_hog"), ("recognizers", "dlib_resnet"))
    matrix_n: int = 200
    matrix_pairs: int = 200
    seed: int = 0
    extra_env: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Timing:
    """Wall and CPU seconds of one measured call."""

    wall: float
    cpu: float


def cpu_now() -> float:
    """CPU seconds (user + sys) of this process plus its reaped children (tools, workers)."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def timed(fn: Callable[..., Any], *args: Any) -> tuple[Any, Timing]:
    """``(fn(*args), Timing)``."""
    wall, cpu = time.perf_counter(), cpu_now()
    result = fn(*args)
    return result, Timing(time.perf_counter() - wall, cpu_now() - cpu)


def machine() -> dict:
    """Cores, RAM (GiB), CPU model, Python and OS of this machine, for the report header."""
    import psutil

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:  # not Linux: keep platform's answer
        pass
    return {"cores": os.cpu_count(), "ram_gib": round(psutil.virtual_memory().total / 2**30, 1), "cpu": model,
            "python": platform.python_version(), "os": platform.platform()}


def markdown(figures: list[Figure], info: dict) -> str:
    """The figures as a Markdown table preceded by the machine they were measured on."""
    from tabulate import tabulate

    head = (f"Machine: {info['cores']} cores, {info['ram_gib']} GiB RAM, {info['cpu']}; "
            f"Python {info['python']}, {info['os']}\n\n")
    rows = [(f.item, f.what, f.value, f.note) for f in figures]
    return head + tabulate(rows, headers=("item", "measurement", "value", "note"), tablefmt="github")
