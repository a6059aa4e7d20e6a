"""The run-ahead (defacebench.run.prefetch): its job order, the memo computed once across threads,
and maps run ahead stopping after a worker crash while the run's own thread still pins the crash."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from defacebench.run.config import RunConfig
from defacebench.run.executors import LocalExecutor, SpeculationStopped, running_ahead
from defacebench.run.pipeline import BenchmarkRun
from defacebench.run.prefetch import RunAhead, ordered_needs, wanted
from tests.test_executor import BAD, ITEMS, die_on_bad

G = ((0.0, 0.0),)  # a stand-in view grid


def test_embeddings_in_evaluation_order_each_once_control_before_its_comparison() -> None:
    items = [("quickshear", "quickshear", "surface", "dlib_hog", "dlib_resnet", None),
             ("quickshear", "quickshear+template", "surface", "dlib_hog", "dlib_resnet", None),
             ("quickshear", "quickshear", "surface", "dlib_hog", "dlib_resnet", G),
             ("none", "none", "surface", "dlib_hog", "dlib_resnet", None)]
    assert {j[0] for j in ordered_needs(items)} == {"embed"}
    embeds = [j[1:] for j in ordered_needs(items)]
    assert embeds == [("none", "surface", "dlib_hog", "dlib_resnet", None),
                      ("quickshear", "surface", "dlib_hog", "dlib_resnet", None),
                      ("quickshear+template", "surface", "dlib_hog", "dlib_resnet", None),
                      ("none", "surface", "dlib_hog", "dlib_resnet", G),
                      ("quickshear", "surface", "dlib_hog", "dlib_resnet", G)]


def test_run_ahead_only_when_asked_for_a_local_pool_of_several_workers() -> None:
    assert wanted(RunConfig(executor="local", workers=2, run_ahead=True))
    assert not wanted(RunConfig(executor="local", workers=2)), "opt-in"
    assert not wanted(RunConfig(executor="local", workers=1, run_ahead=True))
    assert not wanted(RunConfig(executor="serial", workers=2, run_ahead=True))
    assert not wanted(RunConfig(executor="dask", workers=2, run_ahead=True))


def test_memo_computes_each_key_once_across_threads(tmp_path: Path) -> None:
    run = BenchmarkRun(RunConfig(cache_dir=tmp_path / "cache"), run_dir=tmp_path / "run")
    calls = []

    def compute():
        calls.append(threading.get_ident())
        time.sleep(0.05)  # the other threads arrive while it computes
        return len(calls)

    got = []
    threads = [threading.Thread(target=lambda: got.append(run._once("k", compute))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and got == [1] * 6


def test_a_failed_compute_is_not_memoised(tmp_path: Path) -> None:
    run = BenchmarkRun(RunConfig(cache_dir=tmp_path / "cache"), run_dir=tmp_path / "run")

    def boom():
        raise ValueError("first try")

    with pytest.raises(ValueError):
        run._once("k", boom)
    assert run._once("k", lambda: 7) == 7


def test_run_ahead_jobs_ask_the_pipeline_with_their_priority_and_swallow_errors() -> None:
    from defacebench.run import executors

    class FakeRun:
        def __init__(self):
            self.asked = []

        def embedded(self, *key):
            self.asked.append((key, executors._priority()))
            if key[0] == "broken":
                raise RuntimeError("left to the run's own thread")

    fake = FakeRun()
    keys = [("none", "surface", "dlib_hog", "dlib_resnet", None), ("broken", "surface", "dlib_hog", "dlib_resnet", None),
            ("quickshear", "surface", "dlib_hog", "dlib_resnet", None)]
    ahead = RunAhead(fake, [("embed", *k) for k in keys], threads=2).start()
    ahead.close()
    assert sorted(fake.asked, key=str) == sorted(zip(keys, range(3)), key=str)
    assert executors._priority() == -1  # this (the run's own) thread keeps the first place


def wait_and_tag(tag: str) -> str:
    time.sleep(0.3)
    return tag


def test_dispatcher_runs_the_best_priority_next() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from defacebench.run.dispatch import Dispatcher

    started = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        dispatch = Dispatcher(lambda: pool, slots=1)

        def record(tag):
            started.append(tag)
            return wait_and_tag(tag)

        first = dispatch.submit(5, record, "occupies the slot")
        time.sleep(0.05)
        later = [dispatch.submit(p, record, tag) for p, tag in [(9, "late job"), (3, "earlier job"), (-1, "run's own")]]
        assert [f.result() for f in later] == ["late job", "earlier job", "run's own"]
        assert first.result() == "occupies the slot"
        dispatch.close()
        dispatch.end()
    assert started == ["occupies the slot", "run's own", "earlier job", "late job"]


def test_maps_run_ahead_stop_after_a_crash_and_the_run_still_pins_it() -> None:
    with LocalExecutor(workers=2) as ex:
        running_ahead(0)
        try:
            with pytest.raises(SpeculationStopped):
                ex.map(die_on_bad, ITEMS, desc="ahead")
            with pytest.raises(SpeculationStopped):  # stopped for good: nothing more is submitted ahead
                ex.map(die_on_bad, [1, 2], desc="ahead again")
        finally:
            running_ahead(None)
        got = ex.map(die_on_bad, ITEMS, desc="in order")  # the run's own thread: the crash is its item's
        assert [o.ok for o in got] == [i != BAD for i in ITEMS]
        assert got[BAD].error.startswith("WorkerCrashedError")


def test_the_local_executor_is_reusable_after_close() -> None:
    ex = LocalExecutor(workers=2)
    with ex:
        assert [o.value for o in ex.map(die_on_bad, [1, 2], desc="first")] == [101, 102]
    with ex:
        assert [o.value for o in ex.map(die_on_bad, [3], desc="again")] == [103]


def test_close_ends_the_workers_before_the_thread_that_spawned_them() -> None:
    """The dispatching thread spawns pool workers, and ``die_with_parent`` kills a worker when the
    thread that spawned it exits (PR_SET_PDEATHSIG is per thread). Ended before the pool's shutdown,
    it killed idle workers inside the call queue's lock, and the shutdown waited forever for the
    worker left blocked on that lock; so every worker must exit by the shutdown (exit code 0)."""
    import threading

    ex = LocalExecutor(workers=2)
    assert [o.value for o in ex.map(wait_and_tag, ["a", "b", "c", "d"], desc="spawn")] == ["a", "b", "c", "d"]
    workers = list(ex._pool._processes.values())
    assert len(workers) == 2
    closing = threading.Thread(target=ex.close, daemon=True)
    closing.start()
    closing.join(60)
    assert not closing.is_alive(), "LocalExecutor.close hung"
    assert [w.exitcode for w in workers] == [0, 0]
