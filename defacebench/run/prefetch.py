"""Running the planned configurations' stages ahead of their evaluation, from a few threads at once.

Why: the run evaluates one configuration after the other, and each stage map it needs (deface with
one defacer, render one source, detect, embed) waits for its last item before the next map starts.
On 2 workers every such barrier idles a core for part of an item, a heavy defacer's map (4-5 s per
volume) ends with one volume on one core, and the run's own work between maps (metrics, plots,
montages) leaves both workers idle. Run ahead, threads of the run's process ask the pipeline for
every stage the plan will need, so the pool's queue holds the items of many maps at once: a core
freed by one map takes the next map's item, and the workers keep computing while the run's own
thread evaluates. The values are the pipeline's own memoised stage maps (computed once whichever
thread asks first), so the results are the same as in order; only the timing changes.

Order: first every defacer's defacings (their long items start at once and spread over the whole
run, the heaviest first when their costs are known), then each configuration's embeddings in the
order the run evaluates them. A worker crash stops the run-ahead (its maps raise
:class:`defacebench.run.executors.SpeculationStopped`); the run then computes what is left in order,
where the crash is pinned to its item. Used with the local executor and more than one worker only.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable

from defacebench.run.executors import running_ahead
from defacebench.run.records import CONTROL

# (source, renderer, detector, recognizer, grid): one embedding map of the pipeline
Need = tuple[str, str, str, str, tuple | None]


def ordered_needs(items: Iterable[tuple], defacer_cost: dict[str, float] | None = None) -> list[tuple]:
    """The jobs of the run-ahead, in the order their threads take them.

    ``items``: (defacer, probe source, renderer, detector, recognizer, grid) of every runnable
    configuration, in the order the run evaluates them. Returns ``("deface", defacer)`` for each
    defacer (the control first, then by ``defacer_cost`` descending, unknown costs in plan order),
    then ``("embed", source, renderer, detector, recognizer, grid)`` for each distinct embedding map,
    the control's of an attacker before the configuration that compares with it."""
    items = list(items)
    cost = defacer_cost or {}
    defacers = list(dict.fromkeys(i[0] for i in items))
    rank = {d: n for n, d in enumerate(defacers)}
    defacers.sort(key=lambda d: (d != CONTROL, -cost.get(d, 0.0), rank[d]))
    jobs: list[tuple] = [("deface", d) for d in defacers]
    for defacer, source, *attack in items:
        renderer, detector, recognizer, grid = attack
        for s in (CONTROL, defacer, source):
            jobs.append(("embed", s, renderer, detector, recognizer, grid))
    return list(dict.fromkeys(jobs))


class RunAhead:
    """Threads that compute ``jobs`` through ``run`` (a :class:`BenchmarkRun`) while the run's own
    thread evaluates; :meth:`close` waits for them (each job is then memoised, or left to the run)."""

    def __init__(self, run, jobs: list[tuple], threads: int) -> None:
        self._run = run
        self._jobs = jobs
        self._pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="run-ahead")
        self._futures: list[Future] = []

    def start(self) -> "RunAhead":
        self._futures = [self._pool.submit(self._do, job) for job in self._jobs]
        return self

    def _do(self, job: tuple) -> None:
        running_ahead(True)
        try:
            self._call(job)()
        except Exception:  # noqa: BLE001 - not memoised: the run's own thread computes it again and reports
            pass
        finally:
            running_ahead(False)

    def _call(self, job: tuple) -> Callable[[], object]:
        if job[0] == "deface":
            return lambda: self._run.defacings(job[1])
        return lambda: self._run.embedded(*job[1:])

    def close(self) -> None:
        """Drop the jobs not started and wait for the running ones."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def run_ahead_threads(defacers: int, workers: int) -> int:
    """Enough threads that every defacer's map runs at once and, beside them, enough maps to fill
    each worker's queue twice over."""
    return defacers + 2 * workers


def wanted(config) -> bool:
    """True for the local executor with more than one worker (serial runs in this process; Dask
    schedules by itself and is left as it is)."""
    workers = config.workers or os.cpu_count() or 1
    return config.executor == "local" and workers > 1
