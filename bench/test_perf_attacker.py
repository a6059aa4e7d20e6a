"""Benchmarks of the attacker: surface render seconds per view, and the matrix stage embed-once
(2N recognizer passes) against the seed study's per-pair ``verify`` loop (2N^2 passes).

Run with ``pytest bench/test_perf_attacker.py --benchmark-enable --run-slow``; the figures are in
the benchmark table and in each benchmark's ``extra_info`` (``s_per_view``, ``ratio``). No test
here asks for a fixture named ``config`` (that name is parametrized over configurations).
"""

from __future__ import annotations

import time
from functools import lru_cache

import numpy as np
import pytest

from defacebench.contracts import Volume
from defacebench.metrics import DistanceMatrix
from defacebench.report.montage import best_face

VIEWS = ((0, 0), (8, 0), (-8, 0), (0, 6), (0, -6))


@lru_cache(maxsize=1)
def _head() -> Volume:
    from defacebench.data.phantom.anatomy import head_ct

    return Volume(*head_ct(2.0))


@lru_cache(maxsize=1)
def _big_head() -> Volume:
    """The synthetic head resampled to a 512 x 512 x 300 grid (a typical head CT's size)."""
    from scipy import ndimage

    head = _head()
    factors = np.array([512, 512, 300]) / np.array(head.data.shape)
    data = ndimage.zoom(head.data, factors, order=1).astype(np.float32)
    data += np.random.default_rng(0).normal(0, 15, data.shape).astype(np.float32)
    return Volume(data, head.affine @ np.diag([*(1 / factors), 1.0]))


@lru_cache(maxsize=4)
def _faces(n: int) -> tuple[list, list]:
    """Gallery and probe (image, face) lists of n items: renders of a few views with pixel noise."""
    from recognizers.detect.dlib import DlibHog
    from recognizers.render.surface import SurfaceParams, SurfaceRenderer

    views = [v.image for v in SurfaceRenderer(SurfaceParams(views=VIEWS)).render(_head())]
    rng = np.random.default_rng(0)
    hog = DlibHog()
    sides = []
    for _ in range(2):
        images = [np.clip(views[i % len(views)] + rng.normal(0, 3, views[0].shape), 0, 255).astype(np.uint8)
                  for i in range(n)]
        sides.append([(img, best_face(hog.detect(img))) for img in images])
    return sides[0], sides[1]


def _embed_once(recognizer, gallery, probe) -> DistanceMatrix:
    """The benchmark's path: each image embedded once (2N passes), distances vectorised."""
    ids = [str(i) for i in range(len(gallery))]
    g, p = recognizer.embed(gallery), recognizer.embed(probe)
    return DistanceMatrix.from_embeddings(ids, g, ids, p, metric=recognizer.metric)


def _per_pair(recognizer, gallery, probe) -> np.ndarray:
    """The seed study's path: a verify-style call per pair, embedding both images every time
    (rows = the gallery items given; every probe)."""
    from scipy.spatial.distance import cdist

    out = np.empty((len(gallery), len(probe)))
    for i, g in enumerate(gallery):
        for j, p in enumerate(probe):
            a, b = recognizer.embed([g]), recognizer.embed([p])
            out[i, j] = cdist(a, b)[0, 0]
    return out


def _matrix_stage(benchmark, n: int, loop_rows: int | None = None) -> float:
    """Benchmark embed-once for n subjects, time the per-pair loop once, return their ratio.

    ``loop_rows``: time the per-pair loop on that many gallery rows (all probes) and scale to n
    rows (the loop's cost is the same for every row), so N = 50 takes ~1 min instead of ~10.
    """
    from recognizers.embed.dlib_resnet import DlibResnet

    rec = DlibResnet()
    if not rec.available().ok:
        pytest.skip(rec.available().reason)
    gallery, probe = _faces(n)
    assert all(f is not None for _, f in gallery + probe)
    start = time.perf_counter()
    matrix = _embed_once(rec, gallery, probe)
    once = time.perf_counter() - start
    benchmark.pedantic(_embed_once, args=(rec, gallery, probe), rounds=1, iterations=1)
    rows = loop_rows or n
    start = time.perf_counter()
    loop = _per_pair(rec, gallery[:rows], probe)
    pairs = (time.perf_counter() - start) * n / rows
    assert np.allclose(loop, matrix.values[:rows], atol=1e-6)  # the same distances, 2N vs 2N^2 passes
    ratio = pairs / once
    benchmark.extra_info.update(n=n, embed_once_s=once, per_pair_s=pairs, loop_rows_timed=rows, ratio=ratio)
    print(f"\nN={n}: embed-once {once:.2f} s, per-pair {pairs:.2f} s ({rows} of {n} rows timed), "
          f"ratio {ratio:.1f}")
    return ratio


def test_perf_matrix_stage_small(benchmark):
    """N = 6: the per-pair loop costs about N times the embed-once path."""
    assert _matrix_stage(benchmark, 6) > 3.0


@pytest.mark.slow
def test_perf_matrix_stage_n50(benchmark):
    """N = 50 (the issue's benchmark): ratio ~ N (2N^2 / 2N passes)."""
    assert _matrix_stage(benchmark, 50, loop_rows=5) > 25.0


@pytest.mark.slow
def test_perf_render_512x512x300(benchmark):
    """Surface render of one frontal view of a 512 x 512 x 300 volume (target <= 1 s on one core)."""
    from recognizers.render.surface import SurfaceRenderer

    big, renderer = _big_head(), SurfaceRenderer()
    renderer.render(big)  # warm: imports and first-touch of the array
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        renderer.render(big)
        timings.append(time.perf_counter() - start)
    benchmark.pedantic(renderer.render, args=(big,), rounds=1, iterations=1)
    benchmark.extra_info.update(s_per_view=min(timings), shape=list(big.data.shape))
    print(f"\nsurface render 512x512x300: {min(timings):.3f} s/view (best of 3), {np.median(timings):.3f} median")
    assert min(timings) < 1.5
