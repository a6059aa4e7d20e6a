"""Where a run's time went: per stage and plugin, items computed, items from the cache, CPU and wall seconds.

CPU seconds are measured where the item ran (the worker process, including the external tools it
started as children), wall seconds around the single item. Items answered from the cache are
counted with the (small) time it took to read them. The manifest records the table; ``defacebench
run`` and ``pytest bench/`` print :meth:`StageTimes.summary`.
"""

from __future__ import annotations

from dataclasses import dataclass


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

    def add(self, stage: str, plugin: str, *, computed: bool, cpu_s: float, wall_s: float) -> None:
        cost = self._costs.setdefault((stage, plugin), StageCost())
        if computed:
            cost.computed += 1
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


def _rank(stage: str) -> int:
    return STAGE_ORDER.index(stage) if stage in STAGE_ORDER else len(STAGE_ORDER)
