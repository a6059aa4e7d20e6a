"""Benchmarks of the attacker: surface render seconds per view, and the matrix stage embed-once
(2N recognizer passes) against the seed study's per-pair ``verify`` loop (2N^2 passes).

The measuring code is :mod:`defacebench.perf.attacker`. ``test_perf_matrix_stage_small[check]``
(CI) checks that both paths give the same distances (on one gallery row of the loop); its
``[perf]`` item and the ``slow`` tests time them. Run with ``pytest tests/perf/test_perf_attacker.py
--run-perf --benchmark-enable --run-slow``; the figures are in the benchmark table and in each
benchmark's ``extra_info`` (``s_per_view``, ``ratio``). No test here asks for a fixture named
``config`` (that name is parametrized over configurations).
"""

from __future__ import annotations

import numpy as np
import pytest

from defacebench.perf import BenchmarkError
from defacebench.perf.attacker import big_head, embed_once, face_items, per_pair, plugin, render_seconds
from defacebench.perf.measure import timed

VIEWS = ((0, 0), (8, 0), (-8, 0), (0, 6), (0, -6))


def _matrix_stage(bench, n: int, loop_rows: int | None = None) -> float:
    """Time embed-once for n subjects (and hand it to ``bench``), time the per-pair loop once,
    check both give the same distances, return the ratio of their wall times.

    ``loop_rows``: time the per-pair loop on that many gallery rows (all probes) and scale to n
    rows (the loop's cost is the same for every row), so N = 50 takes ~1 min instead of ~10.
    """
    try:
        rec = plugin("recognizers", "dlib_resnet")
    except BenchmarkError as exc:
        pytest.skip(str(exc))
    items = face_items(2 * n, views=VIEWS)
    gallery, probe = items[:n], items[n:]
    matrix, once = timed(embed_once, rec, gallery, probe)
    bench.pedantic(embed_once, args=(rec, gallery, probe), rounds=1, iterations=1)
    rows = loop_rows or n
    loop, looped = timed(per_pair, rec, gallery, probe, [(i, j) for i in range(rows) for j in range(n)])
    pairs = looped.wall * n / rows
    assert np.allclose(loop.reshape(rows, n), matrix[:rows], atol=1e-6)  # the same distances, 2N vs 2N^2 passes
    ratio = pairs / once.wall
    bench.extra_info.update(n=n, embed_once_s=once.wall, per_pair_s=pairs, loop_rows_timed=rows, ratio=ratio)
    print(f"\nN={n}: embed-once {once.wall:.2f} s, per-pair {pairs:.2f} s ({rows} of {n} rows timed), "
          f"ratio {ratio:.1f}")
    return ratio


def test_perf_matrix_stage_small(bench):
    """N = 6: the per-pair loop costs about N times the embed-once path. ``[check]`` compares one
    gallery row of the loop with the matrix and asserts no speed (a shared CI machine)."""
    ratio = _matrix_stage(bench, 6, loop_rows=None if bench.measuring else 1)
    if bench.measuring:
        assert ratio > 3.0


@pytest.mark.slow
@pytest.mark.perf
def test_perf_matrix_stage_n50(benchmark):
    """N = 50 (the issue's benchmark): ratio ~ N (2N^2 / 2N passes)."""
    assert _matrix_stage(benchmark, 50, loop_rows=5) > 25.0


@pytest.mark.slow
@pytest.mark.perf
def test_perf_render_512x512x300(benchmark):
    """Surface render of one frontal view of a 512 x 512 x 300 volume (target <= 1 s on one core)."""
    big, renderer = big_head(), plugin("renderers", "surface")
    timings = render_seconds(renderer, big)
    benchmark.pedantic(renderer.render, args=(big,), rounds=1, iterations=1)
    benchmark.extra_info.update(s_per_view=min(timings), shape=list(big.data.shape))
    print(f"\nsurface render 512x512x300: {min(timings):.3f} s/view (best of 3), {np.median(timings):.3f} median")
    assert min(timings) < 1.5
