"""Executors that map one pure stage function over many items: serial, local processes, Dask.

Why: the pipeline's stages (deface, render, detect, embed) are independent per item, so they
parallelise trivially; what differs between a laptop and a cluster is only where the calls run.
All executors share one contract so the pipeline never branches on it:

* ``map(fn, items, desc=...)`` returns one :class:`Outcome` per item, in input order;
* an exception in one item is a failed Outcome (type, message and the exception's ``log``), never
  the end of the map; a worker process that dies (SIGKILL, out of memory) fails only the item it
  was running;
* ``fn`` is a picklable top-level function; items may run more than once after a worker crash,
  so ``fn`` must be idempotent (the cache makes every stage so).

Results are identical across executors because each item's work is the same pure call; the
content-addressed cache (defacebench.run.cache) on a shared path is what makes workers interchangeable.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import dataclasses
import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from defacebench.errors import DefacebenchError
from defacebench.run.dispatch import Dispatcher
from defacebench.run.worker_setup import worker_init
from defacebench.util.progress import progress_bar

KINDS = ("serial", "local", "dask")


class ExecutorError(DefacebenchError):
    """An executor cannot be created or reached (unknown kind, bad scheduler address)."""


class SpeculationStopped(DefacebenchError):
    """A map run ahead of need (:mod:`defacebench.run.prefetch`) stopped because a worker died: the
    run computes those items again in order, where a crash is pinned to its item."""


_AHEAD = threading.local()


def running_ahead(priority: int | None) -> None:
    """Mark this thread's maps as run ahead of need, with ``priority`` (0 = needed first; None: the
    run's own thread again, whose items go first). Their items wait in the local pool's queue behind
    those of more urgent maps (:mod:`defacebench.run.dispatch`), and after a worker crash they stop
    (raise :class:`SpeculationStopped`) instead of rerunning items alone, which only the run's own
    thread does."""
    _AHEAD.priority = priority


def _is_ahead() -> bool:
    return _priority() >= 0


def _priority() -> int:
    found = getattr(_AHEAD, "priority", None)
    return -1 if found is None else found


class WorkerCrashedError(DefacebenchError):
    """A worker process died while running an item (killed by a signal or out of memory)."""


@dataclasses.dataclass(frozen=True)
class Outcome:
    """Result of one item: ``value`` when ``ok``, else ``error`` ("Type: message") and ``log``."""

    ok: bool
    value: Any = None
    error: str = ""
    log: str = ""

    @classmethod
    def failure(cls, exc: BaseException) -> Outcome:
        """A failed Outcome describing ``exc`` (its ``log`` attribute kept when it has one)."""
        log = getattr(exc, "log", "")
        return cls(ok=False, value=None, error=f"{type(exc).__name__}: {exc}",
                   log=log if isinstance(log, str) else str(log))


def run_item(fn: Callable[[Any], Any], item: Any) -> Outcome:
    """Call ``fn(item)`` and wrap the result or the exception (runs inside the worker)."""
    try:
        return Outcome(ok=True, value=fn(item))
    except Exception as exc:  # noqa: BLE001 - one item's failure is data, not a crash of the map
        return Outcome.failure(exc)


def _crash_outcome(index: int, detail: str) -> Outcome:
    """Failed Outcome for an item whose worker process died."""
    return Outcome.failure(WorkerCrashedError(
        f"the worker process died while running item {index} ({detail}); it was killed by a signal "
        "or ran out of memory: check memory limits, or rerun with --executor serial to debug"))


class Executor:
    """Base class: a context manager with ``map`` and ``describe``."""

    kind = "base"

    def __enter__(self) -> Executor:
        """Use as ``with make_executor(...) as ex:`` so workers are always released."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Release the workers, also on errors."""
        self.close()

    def close(self) -> None:
        """Release workers (no-op by default)."""

    @property
    def workers(self) -> int:
        """Number of items that can run at once."""
        return 1

    def describe(self) -> dict[str, Any]:
        """Kind, worker count and scheduler address, for the run manifest."""
        return {"kind": self.kind, "workers": self.workers, "scheduler": None}

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any], *, desc: str) -> list[Outcome]:
        """Run ``fn`` on every item; one Outcome per item, in input order."""
        raise NotImplementedError


class SerialExecutor(Executor):
    """In-process loop: for debugging (breakpoints work) and tests."""

    kind = "serial"

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any], *, desc: str) -> list[Outcome]:
        """Run the items one after the other in this process."""
        items = list(items)
        out = []
        with progress_bar(len(items), desc) as bar:
            for item in items:
                out.append(run_item(fn, item))
                bar.update(1)
        return out


class LocalExecutor(Executor):
    """A spawn-based process pool on this machine, sized to its cores by default.

    Spawn (not fork) because the parent may hold threads (Dask, BLAS, onnxruntime, tqdm's monitor)
    that a forked child would inherit in a broken state. Submission is bounded to a few items per
    worker so a crash can be attributed: after the pool breaks, the items that were in flight are
    rerun one at a time to find the one that kills its worker; the rest continue in parallel.
    """

    kind = "local"

    def __init__(self, workers: int | None = None, *, inflight_per_worker: int = 2) -> None:
        """``workers`` processes (default: os.cpu_count())."""
        n = workers if workers is not None else (os.cpu_count() or 1)
        if n < 1:
            raise ExecutorError(f"--workers must be >= 1, got {n}")
        self._workers = n
        self._max_inflight = max(1, inflight_per_worker) * n
        self._pool: cf.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()  # maps may run from several threads (run-ahead): one pool for all
        self._crashed = False  # a worker died once: maps run ahead stop from then on
        self._dispatch = Dispatcher(self._get_pool, self._max_inflight)

    @property
    def workers(self) -> int:
        """Number of worker processes."""
        return self._workers

    def _get_pool(self) -> cf.ProcessPoolExecutor:
        """The current pool, created on first use or after a crash broke the previous one."""
        with self._lock:
            if self._pool is None:
                self._pool = cf.ProcessPoolExecutor(max_workers=self._workers,
                                                    mp_context=multiprocessing.get_context("spawn"),
                                                    initializer=worker_init,
                                                    initargs=(self._workers > 1,))
            return self._pool

    def _drop_pool(self, pool: cf.ProcessPoolExecutor | None = None) -> None:
        """Shut a (possibly broken) pool down without waiting for it; with ``pool``, only if it is
        still the current one (another thread may have replaced it already)."""
        with self._lock:
            if self._pool is not None and (pool is None or pool is self._pool):
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None

    def close(self) -> None:
        """Stop the worker processes."""
        self._crashed = True  # maps still running ahead stop submitting
        closing, self._dispatch = self._dispatch, Dispatcher(self._get_pool, self._max_inflight)
        closing.close()  # a later map (the executor is reusable) gets a fresh queue and pool
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        closing.end()  # only now: its thread spawned workers, which die with it (PR_SET_PDEATHSIG)

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any], *, desc: str) -> list[Outcome]:
        """Run the items in the pool; crashes fail only the item whose worker died."""
        items = list(items)
        results: list[Outcome | None] = [None] * len(items)
        pending = deque(range(len(items)))
        idle_rounds = 0
        with progress_bar(len(items), desc) as bar:
            while pending:
                before = len(pending)
                suspects = self._run_parallel(fn, items, pending, results, bar)
                for i in suspects:  # rerun alone: a crash now pins the culprit
                    results[i] = self._run_isolated(fn, items[i], i)
                    bar.update(1)
                idle_rounds = idle_rounds + 1 if len(pending) == before and not suspects else 0
                if idle_rounds >= 3:  # the pool breaks before running anything: give up cleanly
                    for i in pending:
                        results[i] = _crash_outcome(i, "the process pool could not be started")
                    pending.clear()
        return [r if r is not None else _crash_outcome(i, "no result") for i, r in enumerate(results)]

    def _run_parallel(self, fn: Callable[[Any], Any], items: Sequence[Any], pending: deque[int],
                      results: list[Outcome | None], bar: Any) -> list[int]:
        """Run pending items (bounded submission) until done or the pool breaks.

        Returns the items whose futures failed because the pool broke (the culprit is among them);
        after a break nothing more is submitted, the in-flight futures drain, the pool is dropped.
        """
        pool = self._get_pool()
        inflight: dict[cf.Future[Outcome], int] = {}
        suspects: list[int] = []
        broken = False
        stop = False
        while pending or inflight:
            stop = stop or (self._crashed and _is_ahead())
            while pending and not broken and not stop and len(inflight) < self._max_inflight:
                i = pending.popleft()
                try:
                    inflight[self._dispatch.submit(_priority(), run_item, fn, items[i])] = i
                except RuntimeError:  # closed meanwhile (the run ends)
                    pending.appendleft(i)
                    broken = True
            if not inflight:
                break
            done, _ = cf.wait(inflight, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                i = inflight.pop(fut)
                try:
                    results[i] = fut.result()
                except BrokenProcessPool:
                    suspects.append(i)
                    broken = True
                    continue
                except SpeculationStopped:  # dropped from the queue after a crash elsewhere
                    stop = True
                    continue
                except Exception as exc:  # noqa: BLE001 - e.g. fn, item or result not picklable
                    results[i] = Outcome.failure(exc)
                bar.update(1)
        if broken:
            self._crashed = True
            self._dispatch.drop(lambda priority: priority >= 0, SpeculationStopped("a worker died"))
            self._drop_pool(pool)
        if (broken or stop) and _is_ahead():
            raise SpeculationStopped("a worker died while maps ran ahead of need")
        return sorted(suspects)

    def _run_isolated(self, fn: Callable[[Any], Any], item: Any, index: int) -> Outcome:
        """Run one item alone in a pool; a crash now is that item's, so it alone fails."""
        try:
            return self._get_pool().submit(run_item, fn, item).result()
        except BrokenProcessPool:
            self._drop_pool()
            return _crash_outcome(index, "its process pool broke")
        except Exception as exc:  # noqa: BLE001 - unpicklable fn, item or result
            return Outcome.failure(exc)


class DaskExecutor(Executor):
    """Dask distributed: a LocalCluster of worker processes, or a running cluster by address.

    With a running cluster (SLURM through dask-jobqueue, ...) every worker must see the same cache
    folder ($DEFACEBENCH_CACHE on a shared filesystem) and be able to import ``fn``'s module.
    """

    kind = "dask"

    def __init__(self, scheduler: str | None = None, workers: int | None = None, *,
                 connect_timeout_s: float = 30.0) -> None:
        """Connect to ``scheduler`` or start a LocalCluster of ``workers`` single-thread processes."""
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as e:
            raise ExecutorError("the dask executor needs dask[distributed]: pip install 'dask[distributed]'") from e
        self._cluster = None
        if scheduler is None:
            n = workers if workers is not None else (os.cpu_count() or 1)
            self._cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                         dashboard_address=None)
            self.client = Client(self._cluster)
        else:
            try:
                self.client = Client(scheduler, timeout=f"{connect_timeout_s}s")
            except (OSError, TimeoutError) as e:
                raise ExecutorError(
                    f"cannot reach the Dask scheduler at {scheduler} within {connect_timeout_s:g} s ({e}); "
                    "check the address printed by the cluster and that this host can reach it") from e

    @property
    def workers(self) -> int:
        """Number of workers currently connected to the scheduler."""
        try:
            info = self.client.scheduler_info(n_workers=-1)  # newer distributed lists only 5 by default
        except TypeError:
            info = self.client.scheduler_info()
        return len(info.get("workers", {}))

    @property
    def scheduler_address(self) -> str:
        """tcp://host:port of the scheduler in use."""
        return str(self.client.scheduler.address)

    def describe(self) -> dict[str, Any]:
        """Kind, current worker count, scheduler address and whether we own the cluster."""
        return {"kind": self.kind, "workers": self.workers, "scheduler": self.scheduler_address,
                "local_cluster": self._cluster is not None}

    def close(self) -> None:
        """Disconnect; shut the LocalCluster down if we started it."""
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any], *, desc: str) -> list[Outcome]:
        """Submit every item as a task; a task that keeps killing its worker is a failed Outcome."""
        from dask.distributed import as_completed

        items = list(items)
        if not items:
            return []
        # pure=False: identical items still get their own task (and no hashing of big items).
        futures = self.client.map(run_item, [fn] * len(items), items, pure=False)
        with progress_bar(len(items), desc) as bar:
            for _ in as_completed(futures):
                bar.update(1)
        results = [_dask_result(f) for f in futures]
        self.client.cancel(futures)  # release results held on the workers
        killed = [i for i, (_, exc) in enumerate(results) if _is_killed_worker(exc)]
        if len(killed) > 1:
            # A worker queues a few tasks; when one task kills it, the queued innocents are
            # blamed too. Rerun each alone: only a task that kills its worker again fails.
            for i in killed:
                results[i] = _dask_result(self.client.submit(run_item, fn, items[i], pure=False))
        return [outcome for outcome, _ in results]


def _is_killed_worker(exc: BaseException | None) -> bool:
    """True for Dask's 'task lost with too many dying workers' error."""
    from distributed import KilledWorker

    return isinstance(exc, KilledWorker)


def _dask_result(future: Any) -> tuple[Outcome, BaseException | None]:
    """The Outcome a finished Dask future holds, or a failure (KilledWorker, cancelled, ...)."""
    try:
        return future.result(), None
    except (Exception, asyncio.CancelledError) as exc:  # noqa: BLE001
        return Outcome.failure(exc), exc


def make_executor(kind: str = "local", *, scheduler: str | None = None,
                  workers: int | None = None) -> Executor:
    """Build an executor by name: "serial", "local" (default) or "dask"."""
    if kind == "serial":
        return SerialExecutor()
    if kind == "local":
        if scheduler is not None:
            raise ExecutorError("--scheduler is only used with --executor dask")
        return LocalExecutor(workers)
    if kind == "dask":
        return DaskExecutor(scheduler, workers)
    raise ExecutorError(f"unknown executor {kind!r}: choose one of {', '.join(KINDS)}")
