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

Order: each configuration's embedding maps (with everything upstream of them) in the order the
run evaluates them; that order is also the priority of each job's items in the pool's queue
(:mod:`defacebench.run.dispatch`), behind the run's own thread: later jobs only fill idle cores,
and the next defacers' long defacings start while the run evaluates the current one. A worker crash stops the run-ahead (its maps raise
:class:`defacebench.run.executors.SpeculationStopped`); the run then computes what is left in order,
where the crash is pinned to its item. Used with the local executor and more than one worker only.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Iterable

from defacebench.run.executors import running_ahead
from defacebench.run.records import CONTROL


def ordered_needs(items: Iterable[tuple]) -> list[tuple]:
    """The jobs of the run-ahead, in the order the run will need them (that order is their priority).

    ``items``: (defacer, probe source, renderer, detector, recognizer, grid) of every runnable
    configuration, in the order the run evaluates them. Returns ``("embed", source, renderer,
    detector, recognizer, grid)`` for each distinct embedding map (which pulls its defacings,
    renders and detections), the control's of an attacker before the tested defacer's and the
    refilled probes'."""
    jobs: list[tuple] = []
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
        self._futures = [self._pool.submit(self._do, n, job) for n, job in enumerate(self._jobs)]
        return self

    def _do(self, priority: int, job: tuple) -> None:
        running_ahead(priority)  # the pool runs this job's items after those of earlier jobs
        try:
            self._run.embedded(*job[1:])
        except Exception:  # noqa: BLE001 - not memoised: the run's own thread computes it again and reports
            pass
        finally:
            running_ahead(None)

    def close(self) -> None:
        """Drop the jobs not started and wait for the running ones."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def run_ahead_threads(defacers: int, workers: int) -> int:
    """How many jobs run at once: enough that the next defacers' (long) defacings start while the
    run still evaluates the current one's configurations (their items only take cores the earlier
    jobs leave idle, so more threads cost no speed to what the run needs first)."""
    return max(8, 2 * defacers + 2 * workers)


def wanted(config) -> bool:
    """True when the run asks for it (``RunConfig.run_ahead``, ``--run-ahead on``) with the local
    executor and more than one worker (serial runs in this process; Dask schedules by itself and is
    left as it is). Off by default: on 2 idle cores the overlap of the run's own thread with both
    workers cost about 10 % more CPU per stage item than it saved in idle time (docs/benchmarks.md)."""
    workers = config.workers or os.cpu_count() or 1
    return config.run_ahead and config.executor == "local" and workers > 1
