"""Where a run's time went: per stage and plugin, items computed, items from the cache, CPU and wall seconds.

CPU seconds are measured where the item ran (the worker process, including the external tools it
started as children), wall seconds around the single item. Items answered from the cache are
counted with the (small) time it took to read them. The manifest records the table; ``defacebench
run`` and ``pytest bench/`` print :meth:`StageTimes.summary`.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

TIMELINE_ENV = "DEFACEBENCH_TIMELINE"  # a CSV path: the run writes every computed task's span there


@dataclass
class StageCost:
    """Accumulated cost of one (stage, plugin)."""

    computed: int = 0
    cached: int = 0
    cpu_s: float = 0.0
    wall_s: float = 0.0

    def to_dict(self) -> dict:
        return {"computed": self.computed, "cached": self.cached, "cpu_s": round(self.cpu_s, 3),
                "wall_s": round(self.wall_s, 3)}


STAGE_ORDER = ("convert", "deface", "qc", "refill", "render", "detect", "embed", "evaluate", "montage")


class StageTimes:
    """Mutable accumulator of :class:`StageCost` per (stage, plugin)."""

    def __init__(self) -> None:
        self._costs: dict[tuple[str, str], StageCost] = {}
        self.spans: list[tuple[str, str, int, float, float, float]] = []  # stage, plugin, pid, start, wall, cpu

    def add(self, stage: str, plugin: str, *, computed: bool, cpu_s: float, wall_s: float,
            started: float = 0.0, pid: int = 0) -> None:
        cost = self._costs.setdefault((stage, plugin), StageCost())
        if computed:
            cost.computed += 1
            if started:
                self.spans.append((stage, plugin, pid, started, wall_s, cpu_s))
        else:
            cost.cached += 1
        cost.cpu_s += cpu_s
        cost.wall_s += wall_s

    def to_dict(self) -> dict[str, dict[str, dict]]:
        """stage -> plugin -> cost, stages in pipeline order."""
        out: dict[str, dict[str, dict]] = {}
        for (stage, plugin), cost in sorted(self._costs.items(), key=lambda kv: (_rank(kv[0][0]), kv[0][1])):
            out.setdefault(stage, {})[plugin] = cost.to_dict()
        return out

    def totals(self) -> dict[str, StageCost]:
        """stage -> summed cost over its plugins."""
        out: dict[str, StageCost] = {}
        for (stage, _), cost in self._costs.items():
            total = out.setdefault(stage, StageCost())
            total.computed += cost.computed
            total.cached += cost.cached
            total.cpu_s += cost.cpu_s
            total.wall_s += cost.wall_s
        return dict(sorted(out.items(), key=lambda kv: _rank(kv[0])))

    def summary(self) -> str:
        """One line: ``stage computed/cached cpu s`` per stage, pipeline order."""
        parts = [f"{stage} {c.computed}+{c.cached}c {c.cpu_s:.1f}s cpu/{c.wall_s:.1f}s"
                 for stage, c in self.totals().items()]
        return "stages (computed+cached, cpu/item-wall seconds): " + (" | ".join(parts) if parts else "nothing ran")


def write_timeline(times: StageTimes, path: str | None = None) -> Path | None:
    """Write every computed task's span (stage, plugin, pid, start, wall, cpu; start relative to the
    first) to ``path`` or ``$DEFACEBENCH_TIMELINE``: where each worker was busy or idle during the run
    (``scripts/timeline.py`` draws it). Nothing is written when neither is set."""
    target = path or os.environ.get(TIMELINE_ENV)
    if not target or not times.spans:
        return None
    t0 = min(s[3] for s in times.spans)
    with open(target, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["stage", "plugin", "pid", "start_s", "wall_s", "cpu_s"])
        for stage, plugin, pid, start, wall, cpu in sorted(times.spans, key=lambda s: s[3]):
            out.writerow([stage, plugin, pid, f"{start - t0:.3f}", f"{wall:.3f}", f"{cpu:.3f}"])
    return Path(target)


def _rank(stage: str) -> int:
    return STAGE_ORDER.index(stage) if stage in STAGE_ORDER else len(STAGE_ORDER)
