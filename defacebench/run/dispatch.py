"""A priority queue in front of the local process pool: the item most urgently needed runs next.

Why: with the run-ahead (:mod:`defacebench.run.prefetch`) several threads map stages at once. Fed
first come first served, the pool would share its workers evenly among them, so the maps the
run's own thread waits for (the control's renders, the next configuration's detections) would
queue behind the long items of maps needed much later (a heavy defacer's volumes), and the run's
own work (metrics, montages) would pile up for the end, when the workers have nothing left. Here
each item carries its map's priority (the run's own thread first, then the run-ahead jobs in the
order the run evaluates them): items needed later only fill cores that the earlier ones leave idle.
At most ``slots`` items are in the pool at a time; the rest wait here, in priority order, then in
submission order.
"""

from __future__ import annotations

import concurrent.futures as cf
import heapq
import itertools
import threading
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable


class Dispatcher:
    """Submit ``(priority, fn, args)`` into the pool ``get_pool()`` returns, best priority (lowest
    number) first, ``slots`` at a time; :meth:`submit` returns a future of the pool's result."""

    def __init__(self, get_pool: Callable[[], cf.Executor], slots: int) -> None:
        self._get_pool = get_pool
        self._free = max(1, slots)
        self._cv = threading.Condition()
        self._heap: list = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False  # no new items; the thread stays until end()
        self._ended = False
        self._busy = False  # the thread is handing an item to the pool

    def submit(self, priority: float, fn: Callable[..., Any], *args: Any) -> cf.Future:
        outer: cf.Future = cf.Future()
        with self._cv:
            if self._closed:
                raise RuntimeError("the dispatcher is closed")
            heapq.heappush(self._heap, (priority, next(self._seq), outer, fn, args))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="pool-dispatch", daemon=True)
                self._thread.start()
            self._cv.notify_all()
        return outer

    def drop(self, predicate: Callable[[float], bool], error: BaseException) -> None:
        """Fail (with ``error``) every waiting item whose priority ``predicate`` accepts."""
        with self._cv:
            keep, gone = [], []
            for entry in self._heap:
                (gone if predicate(entry[0]) else keep).append(entry)
            heapq.heapify(keep)
            self._heap = keep
        for entry in gone:
            entry[2].set_exception(error)

    def close(self) -> None:
        """Take no more items, fail the waiting ones and wait until no hand-over to the pool is in
        progress. The dispatching thread stays until :meth:`end`: the pool's workers it spawned are
        killed when it exits (``die_with_parent``'s PR_SET_PDEATHSIG is tied to the spawning
        thread), so it must outlive them (shut the pool down between ``close`` and ``end``)."""
        with self._cv:
            self._closed = True
            waiting, self._heap = self._heap, []
            self._cv.notify_all()
            while self._busy:
                self._cv.wait()
        for entry in waiting:
            entry[2].set_exception(BrokenProcessPool("the pool was shut down"))

    def end(self) -> None:
        """End the dispatching thread (after :meth:`close` and the pool's shutdown)."""
        with self._cv:
            self._closed = self._ended = True
            self._cv.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._ended and (self._closed or self._free <= 0 or not self._heap):
                    self._cv.wait()
                if self._ended:
                    return
                _, _, outer, fn, args = heapq.heappop(self._heap)
                self._free -= 1
                self._busy = True
            try:
                inner = self._get_pool().submit(fn, *args)
            except (BrokenProcessPool, RuntimeError) as exc:  # broken, or shut down meanwhile
                self._release()
                outer.set_exception(exc if isinstance(exc, BrokenProcessPool) else BrokenProcessPool(str(exc)))
                continue
            finally:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()
            inner.add_done_callback(lambda f, o=outer: self._finished(f, o))

    def _finished(self, inner: cf.Future, outer: cf.Future) -> None:
        self._release()
        if inner.cancelled():  # the pool was dropped after a crash: the item never ran
            outer.set_exception(BrokenProcessPool("the item was cancelled with its broken pool"))
        elif inner.exception() is not None:
            outer.set_exception(inner.exception())
        else:
            outer.set_result(inner.result())

    def _release(self) -> None:
        with self._cv:
            self._free += 1
            self._cv.notify_all()
