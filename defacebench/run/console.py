"""What a run says while it works, and where the details go: the run folder's ``run.log``.

Why: a run of a hundred configurations printed a line each, then the verdict twice and the whole
leaderboard, so the answer was buried in its own output. The terminal now gets one status line per
defacer when its last configuration finishes (:class:`DefacerTally`) and the compact verdict; every
per-configuration line (:func:`config_line`) and the full tables go to ``run.log``
(:class:`RunLog`), and ``-v`` prints them too. VTK's warnings land in the same file
(:mod:`defacebench.util.vtklog`).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

RUN_LOG = "run.log"


def config_line(key: str, status, outcome) -> str:
    """One configuration's line: its headline numbers when it ran, else its status and reason."""
    if outcome is not None and status.status == "passed":
        row = outcome.row
        return (f"{key}: n={row.n} rank1={_num(row.rank1)} roc_auc={_num(row.roc_auc)} "
                f"detection={_num(row.detection_rate, 2)} ({outcome.seconds:.1f} s)")
    return f"{key}: {status.status}" + (f": {status.reason}" if status.reason else "")


def _num(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


class RunLog:
    """Lines appended to ``<run folder>/run.log``; lines written before the run folder exists
    (items skipped while planning) are kept and written first once it does."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self._pending: list[str] = []

    def attach(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / RUN_LOG
        pending, self._pending = self._pending, []
        self.write(pending)

    def write(self, lines: list[str]) -> None:
        if not lines:
            return
        if self.path is None:
            self._pending.extend(lines)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:  # append: VTK's workers write here too
            handle.write("".join(f"{line}\n" for line in lines))


class DefacerTally:
    """Counts each defacer's finished configurations and says, when its last one is done, how they
    went and the highest single-attack rank-1 seen (before the verdict's correction for selection)."""

    def __init__(self, plan) -> None:
        self._left = Counter(item.config_id.defacer for item in plan)
        self._total = dict(self._left)
        self._statuses: dict[str, Counter] = {d: Counter() for d in self._left}
        self._best: dict[str, tuple[float, str]] = {}

    def add(self, item, status, outcome) -> str | None:
        """Record one finished item; the defacer's status line when it was its last, else None."""
        defacer = item.config_id.defacer
        self._left[defacer] -= 1
        self._statuses[defacer][status.status] += 1
        rank1 = getattr(getattr(outcome, "row", None), "rank1", None) if status.status == "passed" else None
        if rank1 is not None and (defacer not in self._best or rank1 > self._best[defacer][0]):
            self._best[defacer] = (rank1, item.key)
        return self.line(defacer) if self._left[defacer] == 0 else None

    def line(self, defacer: str) -> str:
        counts = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(self._statuses[defacer].items()))
        best = self._best.get(defacer)
        top = f"; highest rank-1 {best[0]:.3f} ({best[1]})" if best else ""
        return f"{defacer}: {self._total[defacer]} configuration(s) done ({counts}){top}"
