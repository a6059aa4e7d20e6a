"""Tests of the content-addressed cache: keys, file hashes, atomic builds, races, crashes, upkeep.

Races and crashes use real threads and real processes (spawned, then SIGKILLed where told),
never mocks: the cache's correctness is about what the filesystem shows afterwards.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from defacebench.run.cache import (COMPLETE_MARKER, Cache, CacheInfo, StageInfo, default_cache_dir,
                               file_hash)
from defacebench.errors import CacheError, DefaceError

KEY = Cache.key("unit-test", 1)


# ----------------------------------------------------------------------------------------------
# helpers that run in child processes (top level so spawn can import them)


def _race_worker(root: str, barrier, queue) -> None:
    """Wait for all racers, then build the shared key; report (path, token read back)."""
    cache = Cache(root)

    def build(tmp: Path) -> None:
        token = f"{os.getpid()}-{time.monotonic_ns()}"
        (tmp / "a.txt").write_text(token)
        time.sleep(0.05)  # keep every racer inside its build at the same time
        (tmp / "b.txt").write_text(token)

    barrier.wait()
    path = cache.get_or_build("race", KEY, build)
    queue.put((str(path), (path / "a.txt").read_text(), (path / "b.txt").read_text()))


def _half_build_then_hang(root: str, started) -> None:
    """Start a build, write half of a file, signal the parent, then wait to be killed."""
    cache = Cache(root)

    def build(tmp: Path) -> None:
        with open(tmp / "volume.bin", "wb") as f:
            f.write(b"\x01" * 1000)
            f.flush()
            started.set()
            time.sleep(60)  # the parent SIGKILLs us here
            f.write(b"\x01" * 1000)

    cache.get_or_build("crash", KEY, build)


def _artifact_dirs(root: Path, stage: str) -> list[Path]:
    """Every folder at the artifact level of one stage, complete or not."""
    return sorted(p for shard in (root / stage).iterdir() for p in shard.iterdir())


def _temp_dirs(root: Path) -> list[Path]:
    """Temp folders left under the cache root."""
    tmp = root / ".tmp"
    return sorted(tmp.iterdir()) if tmp.is_dir() else []


# ----------------------------------------------------------------------------------------------
# keys


@dataclasses.dataclass(frozen=True)
class ParamsA:
    """Plugin-like params."""

    threshold: float = 0.5
    mode: str = "mask"


@dataclasses.dataclass(frozen=True)
class ParamsB:
    """Same fields as ParamsA: the class name must still change the key."""

    threshold: float = 0.5
    mode: str = "mask"


def test_key_is_sha256_hex_and_stable_across_processes() -> None:
    parts = ("deface", StageInfo("render", 3, 4096), {"b": 1, "a": [1.5, None, True]}, np.float32(0.25))
    key = Cache.key(*parts)
    assert len(key) == 64 and int(key, 16) >= 0
    code = ("import numpy as np; from defacebench.run.cache import Cache, StageInfo; "
            "print(Cache.key('deface', StageInfo('render', 3, 4096), {'a': [1.5, None, True], 'b': 1}, "
            "np.float32(0.25)))")
    for seed in ("0", "12345"):  # different str hashing must not matter
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": seed})
        assert out.stdout.strip() == key


def test_key_changes_with_each_part() -> None:
    base = ["render", "surface", "1.2.0", ParamsA(), "ab" * 32, 3]
    variants = [
        ["deface", "surface", "1.2.0", ParamsA(), "ab" * 32, 3],
        ["render", "vtk_volume", "1.2.0", ParamsA(), "ab" * 32, 3],
        ["render", "surface", "1.2.1", ParamsA(), "ab" * 32, 3],
        ["render", "surface", "1.2.0", ParamsA(threshold=0.51), "ab" * 32, 3],
        ["render", "surface", "1.2.0", ParamsA(mode="none"), "ab" * 32, 3],
        ["render", "surface", "1.2.0", ParamsB(), "ab" * 32, 3],
        ["render", "surface", "1.2.0", ParamsA(), "ab" * 31 + "ac", 3],
        ["render", "surface", "1.2.0", ParamsA(), "ab" * 32, 3.0],
        ["render", "surface", "1.2.0", ParamsA(), "ab" * 32, True],
        ["render", "surface", "1.2.0", ParamsA(), "ab" * 32],
        [["render", "surface"], "1.2.0", ParamsA(), "ab" * 32, 3],
    ]
    keys = {Cache.key(*v) for v in variants}
    assert len(keys) == len(variants)
    assert Cache.key(*base) not in keys
    assert Cache.key(*base) == Cache.key(*list(base))


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(max_size=8), st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
                       min_size=1, max_size=8))
def test_key_ignores_dict_order(d: dict) -> None:
    reordered = dict(reversed(list(d.items())))
    assert Cache.key(d) == Cache.key(reordered)


@settings(max_examples=60, deadline=None)
@given(st.integers(-2**31, 2**31 - 1), st.floats(allow_nan=False, allow_infinity=False, width=64))
def test_numpy_scalars_key_like_python_scalars(i: int, x: float) -> None:
    assert Cache.key(np.int32(i), np.float64(x), np.bool_(True)) == Cache.key(i, x, True)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers() | st.text(max_size=6), min_size=1, max_size=6), st.data())
def test_changing_any_element_changes_the_key(parts: list, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(parts) - 1))
    changed = list(parts)
    changed[i] = [parts[i]]  # wrap it: a different value of any type
    assert Cache.key(*parts) != Cache.key(*changed)


@pytest.mark.parametrize("bad", [Path("/data/scan.nii.gz"), PurePosixPath("a/b"),
                                 [1, Path("x")], {"input": Path("x")}])
def test_paths_are_rejected_with_a_hint(bad) -> None:
    with pytest.raises(TypeError, match="content hash"):
        Cache.key("convert", bad)


def test_dataclass_holding_a_path_is_rejected() -> None:
    @dataclasses.dataclass(frozen=True)
    class WithPath:
        where: Path

    with pytest.raises(TypeError, match="content hash"):
        Cache.key(WithPath(Path("/tmp/x")))


@pytest.mark.parametrize("bad", [b"bytes", np.zeros(3), {1: "int key"}, object(), {1, 2}])
def test_other_types_are_rejected(bad) -> None:
    with pytest.raises(TypeError):
        Cache.key(bad)


def test_file_hash_is_sha256_of_content_and_follows_edits(tmp_path: Path) -> None:
    f = tmp_path / "scan.bin"
    f.write_bytes(b"head ct" * 1000)
    assert file_hash(f) == hashlib.sha256(b"head ct" * 1000).hexdigest()
    assert file_hash(str(f)) == file_hash(f)
    other = tmp_path / "copy.bin"
    other.write_bytes(f.read_bytes())
    assert file_hash(other) == file_hash(f)  # content, not location
    f.write_bytes(b"defaced" * 1000)  # same size: mtime_ns must invalidate the memo
    st_ = f.stat()
    os.utime(f, ns=(st_.st_atime_ns, st_.st_mtime_ns + 1_000_000))
    assert file_hash(f) == hashlib.sha256(b"defaced" * 1000).hexdigest()


def test_file_hash_of_missing_file_or_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(CacheError, match="missing"):
        file_hash(tmp_path / "nope.nii.gz")
    with pytest.raises(CacheError, match="not a regular file"):
        file_hash(tmp_path)


# ----------------------------------------------------------------------------------------------
# builds


def test_get_or_build_builds_once_then_hits(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c")
    calls = []

    def build(tmp: Path) -> None:
        calls.append(tmp)
        (tmp / "sub").mkdir()
        (tmp / "sub" / "x.npy").write_bytes(b"abc")

    assert cache.get("render", KEY) is None
    path = cache.get_or_build("render", KEY, build)
    assert path == tmp_path / "c" / "render" / KEY[:2] / KEY
    assert cache.get_or_build("render", KEY, build) == path
    assert len(calls) == 1 and cache.get("render", KEY) == path
    meta = json.loads((path / COMPLETE_MARKER).read_text())
    assert meta["key"] == KEY and meta["stage"] == "render"
    assert meta["files"] == {"sub/x.npy": {"size": 3, "sha256": hashlib.sha256(b"abc").hexdigest()}}
    assert _temp_dirs(tmp_path / "c") == []


def test_failed_build_leaves_nothing(tmp_path: Path) -> None:
    cache = Cache(tmp_path)

    def build(tmp: Path) -> None:
        (tmp / "partial.nii.gz").write_bytes(b"\x1f\x8b half")
        raise DefaceError("fsl_deface exited 1", log="bet: error")

    with pytest.raises(DefaceError, match="exited 1"):
        cache.get_or_build("deface", KEY, build)
    assert cache.get("deface", KEY) is None
    assert not (tmp_path / "deface" / KEY[:2] / KEY).exists()
    assert _temp_dirs(tmp_path) == []


def test_incomplete_folder_in_place_is_ignored_and_replaced(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    final = cache.path("render", KEY)
    final.mkdir(parents=True)
    (final / "view.png").write_bytes(b"truncated")  # e.g. copied by hand without its marker
    assert cache.get("render", KEY) is None
    path = cache.get_or_build("render", KEY, lambda tmp: (tmp / "view.png").write_bytes(b"full"))
    assert path == final and (final / "view.png").read_bytes() == b"full"
    assert cache.get("render", KEY) == final


def test_artifact_with_a_deleted_file_is_not_complete(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    path = cache.get_or_build("render", KEY, lambda tmp: (tmp / "view.png").write_bytes(b"x"))
    (path / "view.png").unlink()
    assert cache.get("render", KEY) is None


def test_thread_race_on_one_key_leaves_one_artifact(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    n = 8
    barrier = threading.Barrier(n)
    builds, results = [], []

    def build(tmp: Path) -> None:
        token = f"{threading.get_ident()}"
        builds.append(token)
        (tmp / "a.txt").write_text(token)
        time.sleep(0.05)
        (tmp / "b.txt").write_text(token)

    def racer() -> None:
        barrier.wait()
        path = cache.get_or_build("race", KEY, build)
        results.append((path, (path / "a.txt").read_text(), (path / "b.txt").read_text()))

    threads = [threading.Thread(target=racer) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == n  # everyone really raced through a build
    assert len({r[0] for r in results}) == 1 and len({r[1] for r in results}) == 1
    assert all(a == b for _, a, b in results)  # never a mix of two builders' files
    assert _artifact_dirs(tmp_path, "race") == [results[0][0]]
    assert _temp_dirs(tmp_path) == []


def test_process_race_on_one_key_leaves_one_artifact(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    n = 4
    barrier, queue = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_race_worker, args=(str(tmp_path), barrier, queue)) for _ in range(n)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in range(n)]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert len({r[0] for r in results}) == 1
    assert len({r[1] for r in results}) == 1 and all(a == b for _, a, b in results)
    assert _artifact_dirs(tmp_path, "race") == [Path(results[0][0])]
    assert _temp_dirs(tmp_path) == []
    assert Cache(tmp_path).info().stages == (StageInfo("race", 1, Cache(tmp_path).info().stages[0].bytes),)


def test_sigkilled_build_leaves_no_artifact_and_rebuilds(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    started = ctx.Event()
    proc = ctx.Process(target=_half_build_then_hang, args=(str(tmp_path), started))
    proc.start()
    assert started.wait(timeout=60), "child never started its build"
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(timeout=30)
    assert proc.exitcode == -signal.SIGKILL
    cache = Cache(tmp_path)
    assert cache.get("crash", KEY) is None
    assert not cache.path("crash", KEY).exists()
    leftovers = _temp_dirs(tmp_path)
    assert len(leftovers) == 1 and (leftovers[0] / "volume.bin").stat().st_size == 1000
    info = cache.info()
    assert (info.temp_dirs, info.stale_temp_dirs, info.entries) == (1, 0, 0)

    path = cache.get_or_build("crash", KEY, lambda tmp: (tmp / "volume.bin").write_bytes(b"\x01" * 2000))
    assert (path / "volume.bin").read_bytes() == b"\x01" * 2000
    assert cache.sweep(stale_after_s=0.0) == 1  # the killed build's folder, now swept
    assert _temp_dirs(tmp_path) == [] and cache.get("crash", KEY) == path


# ----------------------------------------------------------------------------------------------
# small artifacts, names, maintenance


def test_json_and_array_round_trip(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    k1, k2 = Cache.key("j"), Cache.key("a")
    cache.write_json("detect", k1, {"faces": [{"box": [1, 2, 3, 4], "score": 0.9}]})
    assert cache.read_json("detect", k1) == {"faces": [{"box": [1, 2, 3, 4], "score": 0.9}]}
    vec = np.linspace(-1, 1, 128, dtype=np.float32)
    cache.write_array("embed", k2, vec)
    got = cache.read_array("embed", k2)
    assert got.dtype == np.float32 and np.array_equal(got, vec)
    assert cache.read_json("detect", k2, default=None) is None
    with pytest.raises(CacheError, match="no complete"):
        cache.read_array("embed", k1)


@pytest.mark.parametrize("stage,key", [("../evil", KEY), (".tmp", KEY), ("render", "abc"),
                                       ("render", KEY.upper()), ("", KEY)])
def test_bad_stage_or_key_is_refused(tmp_path: Path, stage: str, key: str) -> None:
    with pytest.raises(CacheError):
        Cache(tmp_path).get_or_build(stage, key, lambda tmp: None)


def test_default_cache_dir_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DEFACEBENCH_CACHE", str(tmp_path / "shared"))
    assert default_cache_dir() == tmp_path / "shared"
    assert Cache().root == tmp_path / "shared"
    monkeypatch.delenv("DEFACEBENCH_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "defacebench" / "cache"


def _fill(cache: Cache) -> None:
    """Three render artifacts (100 bytes each) and one deface artifact (1000 bytes)."""
    for i in range(3):
        cache.get_or_build("render", Cache.key("r", i), lambda tmp: (tmp / "v.png").write_bytes(b"x" * 100))
    cache.get_or_build("deface", Cache.key("d"), lambda tmp: (tmp / "d.nii").write_bytes(b"y" * 1000))


def _age(path: Path, seconds: float) -> None:
    """Set the mtime of a folder and everything in it ``seconds`` into the past."""
    t = time.time() - seconds
    for dirpath, _dirs, files in os.walk(path):
        for name in [".", *files]:
            os.utime(os.path.join(dirpath, name), (t, t))


def test_info_counts_and_clear_by_stage(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    assert cache.info() == CacheInfo(tmp_path, (), 0, 0, 0)
    _fill(cache)
    stale = cache.temp_root / "render.deadbeef.old"
    stale.mkdir()
    (stale / "half.png").write_bytes(b"z" * 10)
    _age(stale, 7200)
    fresh = cache.temp_root / "render.deadbeef.new"  # a build running right now elsewhere
    fresh.mkdir()

    info = cache.info()
    by_stage = {s.stage: s for s in info.stages}
    assert by_stage["render"].entries == 3 and by_stage["deface"].entries == 1
    assert by_stage["deface"].bytes > 1000 and by_stage["render"].bytes > 300
    assert (info.entries, info.temp_dirs, info.stale_temp_dirs, info.temp_bytes) == (4, 2, 1, 10)
    assert json.loads(json.dumps(info.to_dict()))["entries"] == 4

    assert cache.clear("render") == 3
    assert [s.stage for s in cache.info().stages] == ["deface"]
    assert not stale.exists() and fresh.exists()
    assert cache.clear() == 1 and cache.info().entries == 0 and fresh.exists()
