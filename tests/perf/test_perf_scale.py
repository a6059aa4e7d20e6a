"""Benchmarks of the cache's own overhead: keying, a hit, a miss (build + atomic publish).

Why: every stage call of every configuration goes through the cache, so a warm run's cost is
roughly (number of stage calls) x (hit overhead). These figures show that overhead stays far
below any real stage (a render or an embedding takes 0.1-1 s). ``[check]`` (CI) verifies each call's
result; ``[perf]`` times it. Run with:

    pytest tests/perf/test_perf_scale.py --run-perf --benchmark-enable
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pytest

from defacebench.run.cache import Cache
from defacebench.run.executors import make_executor


@dataclasses.dataclass(frozen=True)
class _RenderParams:
    """Typical plugin params: a handful of scalars and a tuple."""

    width: int = 512
    height: int = 512
    azimuths: tuple[float, ...] = (0.0, 15.0, -15.0)
    iso_hu: float = -300.0
    smoothing: str = "gaussian"


PARTS = ("render", 3, "a" * 64, "surface", "1.0.0", _RenderParams())
VIEW = np.zeros((64, 64, 3), dtype=np.uint8)


def _build_view(tmp: Path) -> None:
    """A small artifact, like one detection JSON or one embedding."""
    np.save(tmp / "view.npy", VIEW)


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    """A fresh cache per benchmark."""
    return Cache(tmp_path / "cache")


def test_perf_cache_key(bench) -> None:
    key = bench(Cache.key, *PARTS)
    assert len(key) == 64


def test_perf_cache_hit(bench, cache: Cache) -> None:
    key = Cache.key(*PARTS)
    path = cache.get_or_build("render", key, _build_view)
    assert bench(cache.get_or_build, "render", key, _build_view) == path


def test_perf_cache_hit_with_key(bench, cache: Cache) -> None:
    cache.get_or_build("render", Cache.key(*PARTS), _build_view)

    def lookup() -> Path:
        return cache.get_or_build("render", Cache.key(*PARTS), _build_view)

    assert bench(lookup).is_dir()


def test_perf_cache_miss(bench, cache: Cache) -> None:
    counter = itertools.count()

    def miss() -> Path:
        return cache.get_or_build("render", Cache.key(*PARTS, next(counter)), _build_view)

    assert bench(miss).is_dir()


def test_perf_local_map_overhead(bench) -> None:
    """Per-map overhead of the local pool (2 workers) on 100 trivial items, pool already up."""
    with make_executor("local", workers=2) as ex:
        ex.map(abs, [1], desc="warm-up")
        got = bench.pedantic(ex.map, args=(abs, range(-100, 0)), kwargs={"desc": "abs"},
                                 rounds=5, iterations=1)
    assert [o.value for o in got] == list(range(100, 0, -1))
