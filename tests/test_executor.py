"""Tests of the executors: serial, a local spawn pool and a REAL Dask LocalCluster (2 workers).

Same map, same results, in input order; a raising item is a failed Outcome, a killed worker fails
only its item; and the cache stays consistent when pool workers race on one key.
"""

from __future__ import annotations

import io
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from defacebench.run.cache import Cache
from defacebench.errors import DefaceError
from defacebench.run.executors import (DaskExecutor, ExecutorError, LocalExecutor, Outcome, SerialExecutor,
                                   make_executor)
from defacebench.util.progress import progress_bar, progress_enabled

ITEMS = list(range(7))
BAD = 4


# ----------------------------------------------------------------------------------------------
# top-level (picklable) item functions


def numpy_work(seed: int) -> np.ndarray:
    """A small deterministic numpy computation per item (stand-in for an embedding)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((16, 8))
    return np.linalg.svd(a.T @ a, compute_uv=False)


def numpy_work_or_fail(seed: int) -> np.ndarray:
    """numpy_work, except item BAD raises an error carrying a tool log."""
    if seed == BAD:
        raise DefaceError(f"fsl_deface failed on item {seed}", log="bet2: image has no brain")
    return numpy_work(seed)


def slow_first(seed: int) -> int:
    """Early items finish last, so completion order differs from input order."""
    time.sleep(0.02 * (len(ITEMS) - seed))
    return seed * 10


def die_on_bad(seed: int) -> int:
    """Kill the worker process itself on item BAD (as the OOM killer would).

    The other items take a while, so some are in flight in the other worker when BAD dies: they
    must still succeed (rerun), not share the crash.
    """
    if seed == BAD:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.1)
    return seed + 100


def build_shared(args: tuple[str, int]) -> str:
    """Every item builds the same cache key; returns the content read back from the artifact."""
    root, i = args

    def build(tmp: Path) -> None:
        (tmp / "who.txt").write_text(f"{os.getpid()}:{i}")
        time.sleep(0.05)

    path = Cache(root).get_or_build("shared", Cache.key("same"), build)
    return f"{path}|{(path / 'who.txt').read_text()}"


def blas_threads(_: int) -> tuple[int, str]:
    """The largest thread count of the worker's loaded BLAS/OpenMP pools, and its OMP_NUM_THREADS."""
    from threadpoolctl import threadpool_info

    return max((p["num_threads"] for p in threadpool_info()), default=1), os.environ.get("OMP_NUM_THREADS", "")


# ----------------------------------------------------------------------------------------------
# fixtures: one pool and one cluster per module (cluster start-up costs seconds)


@pytest.fixture(scope="module")
def local_ex():
    """One local pool of 2 spawned workers for the module."""
    with make_executor("local", workers=2) as ex:
        yield ex


@pytest.fixture(scope="module")
def dask_ex():
    """One real Dask LocalCluster (2 single-threaded worker processes) for the module."""
    pytest.importorskip("dask.distributed")
    with make_executor("dask", workers=2) as ex:
        yield ex


@pytest.fixture(params=["serial", "local", "dask"])
def executor(request):
    """Each executor kind, the pools shared across the module."""
    if request.param == "serial":
        with make_executor("serial") as ex:
            yield ex
    else:
        yield request.getfixturevalue(f"{request.param}_ex")


# ----------------------------------------------------------------------------------------------
# contract, for every executor


def test_results_are_identical_across_executors(serial_reference, executor) -> None:
    got = executor.map(numpy_work, ITEMS, desc="svd")
    assert all(isinstance(o, Outcome) and o.ok and o.error == "" for o in got)
    for o, ref in zip(got, serial_reference, strict=True):
        assert o.value.dtype == ref.dtype and np.array_equal(o.value, ref)


@pytest.fixture(scope="module")
def serial_reference() -> list[np.ndarray]:
    """The results computed in this process, without any executor."""
    return [numpy_work(i) for i in ITEMS]


def test_one_raising_item_is_a_failed_outcome(executor) -> None:
    got = executor.map(numpy_work_or_fail, ITEMS, desc="svd")
    assert [o.ok for o in got] == [i != BAD for i in ITEMS]
    bad = got[BAD]
    assert bad.value is None
    assert bad.error == f"DefaceError: fsl_deface failed on item {BAD}"
    assert bad.log == "bet2: image has no brain"
    assert np.array_equal(got[BAD + 1].value, numpy_work(BAD + 1))


def test_input_order_is_kept(executor) -> None:
    assert [o.value for o in executor.map(slow_first, ITEMS, desc="order")] == [i * 10 for i in ITEMS]


def test_empty_map(executor) -> None:
    assert executor.map(numpy_work, [], desc="nothing") == []


def test_describe(executor) -> None:
    d = executor.describe()
    assert d["kind"] == executor.kind
    assert d["workers"] == (1 if executor.kind == "serial" else 2)
    if executor.kind == "dask":
        assert d["scheduler"].startswith("tcp://")
    else:
        assert d["scheduler"] is None


# ----------------------------------------------------------------------------------------------
# local pool specifics


def test_local_worker_crash_fails_only_its_item(local_ex) -> None:
    got = local_ex.map(die_on_bad, ITEMS, desc="crash")
    assert [o.ok for o in got] == [i != BAD for i in ITEMS]
    assert got[BAD].error.startswith("WorkerCrashedError: the worker process died while running item 4")
    assert [o.value for o in got if o.ok] == [i + 100 for i in ITEMS if i != BAD]
    # the pool recovers for the next map
    assert [o.value for o in local_ex.map(slow_first, [1, 2], desc="after")] == [10, 20]


def test_local_workers_run_one_blas_thread_each(local_ex) -> None:
    """Two workers on the machine's cores: each worker's BLAS and OpenMP are held to one thread
    (issue 23: n workers x n BLAS threads oversubscribe the cores)."""
    outcomes = local_ex.map(blas_threads, range(4), desc="threads")
    assert all(o.ok for o in outcomes), outcomes
    assert {o.value for o in outcomes} == {(1, "1")}


def test_unpicklable_function_fails_items_without_hanging(local_ex) -> None:
    got = local_ex.map(lambda x: x, [1, 2], desc="lambda")
    assert [o.ok for o in got] == [False, False]
    assert "pickle" in got[0].error.lower() or "Pickl" in got[0].error


def test_pool_workers_racing_on_one_cache_key(local_ex, tmp_path: Path) -> None:
    got = local_ex.map(build_shared, [(str(tmp_path), i) for i in range(6)], desc="race")
    assert all(o.ok for o in got), [o.error for o in got]
    assert len({o.value for o in got}) == 1  # same folder, same winner's content
    shard = tmp_path / "shared"
    assert sum(1 for s in shard.iterdir() for _ in s.iterdir()) == 1
    assert list((tmp_path / ".tmp").iterdir()) == []


# ----------------------------------------------------------------------------------------------
# dask specifics


def test_dask_running_cluster_by_address(dask_ex) -> None:
    address = dask_ex.describe()["scheduler"]
    with make_executor("dask", scheduler=address) as remote:
        assert remote.describe() == {"kind": "dask", "workers": 2, "scheduler": address,
                                     "local_cluster": False}
        got = remote.map(numpy_work, ITEMS[:3], desc="remote")
        assert all(np.array_equal(o.value, numpy_work(i)) for i, o in zip(ITEMS, got))
    # closing the client must leave the cluster running for its owner
    assert dask_ex.map(slow_first, [3], desc="still up")[0].value == 30


def test_dask_unreachable_scheduler_is_a_clear_error() -> None:
    pytest.importorskip("dask.distributed")
    with pytest.raises(ExecutorError, match="cannot reach the Dask scheduler"):
        DaskExecutor(scheduler="tcp://127.0.0.1:9", connect_timeout_s=1.0)


def test_dask_worker_crash_fails_only_its_item(dask_ex) -> None:
    got = dask_ex.map(die_on_bad, ITEMS, desc="crash")
    assert [o.ok for o in got] == [i != BAD for i in ITEMS]
    assert got[BAD].error.startswith("KilledWorker")


# ----------------------------------------------------------------------------------------------
# construction and progress policy


def test_make_executor_rejects_bad_arguments() -> None:
    with pytest.raises(ExecutorError, match="unknown executor"):
        make_executor("threads")
    with pytest.raises(ExecutorError, match="only used with --executor dask"):
        make_executor("local", scheduler="tcp://h:8786")
    with pytest.raises(ExecutorError, match=">= 1"):
        LocalExecutor(0)
    assert isinstance(make_executor("serial"), SerialExecutor)
    assert LocalExecutor().workers == (os.cpu_count() or 1)


def test_progress_is_silent_off_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEFACEBENCH_PROGRESS", raising=False)
    buf = io.StringIO()
    assert not progress_enabled(buf)
    with progress_bar(3, "quiet", stream=buf) as bar:
        bar.update(3)
    assert buf.getvalue() == ""
    monkeypatch.setenv("DEFACEBENCH_PROGRESS", "1")
    assert progress_enabled(buf)
    with progress_bar(3, "forced", stream=buf) as bar:
        bar.update(3)
    assert "forced" in buf.getvalue() and "3/3" in buf.getvalue()
    monkeypatch.setenv("DEFACEBENCH_PROGRESS", "0")
    assert not progress_enabled(buf)
