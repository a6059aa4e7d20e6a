"""The attacker's costs: surface render seconds of a full-size head, and item a2, the matrix stage done
the pipeline's way (embed each of 2N images once) against the seed study's (a verify call, two
embeddings, per gallery x probe pair).

Plugins come from the registry (the engine never imports a plugin package) and are built with their
own default parameters plus the changes a measurement names, so a ``defacebench.toml`` in the
working folder does not change what is measured.
"""

from __future__ import annotations

import dataclasses
import os
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from defacebench.contracts import Volume
from defacebench.perf.measure import BenchmarkError, BenchParams, Figure, Timing, timed


def plugin(kind: str, name: str, **changes: Any) -> Any:
    """A fresh instance of the installed plugin ``name`` of ``kind``: its default params with
    ``changes``; BenchmarkError with the plugin's own reason when it cannot run here."""
    from defacebench.plugins.params import instantiate
    from defacebench.plugins.registry import load_registry

    installed = load_registry().get(kind, name)
    params = dataclasses.replace(type(installed.params)(), **changes)
    built = instantiate(installed, params)
    avail = built.available()
    if not avail.ok:
        raise BenchmarkError(f"{kind[:-1]} {name} cannot run here: {avail.reason}")
    return built


@lru_cache(maxsize=1)
def sample_head() -> Volume:
    """The sample dataset's synthetic head CT (HU, 2 mm, RAS affine), the input of every attacker figure."""
    from defacebench.data.phantom.anatomy import head_ct

    return Volume(*head_ct(2.0))


@lru_cache(maxsize=1)
def big_head(shape: tuple[int, int, int] = (512, 512, 300), seed: int = 0) -> Volume:
    """:func:`sample_head` resampled to ``shape`` (a typical head CT's grid) with 15 HU noise."""
    from scipy import ndimage

    head = sample_head()
    factors = np.array(shape) / np.array(head.data.shape)
    data = ndimage.zoom(head.data, factors, order=1).astype(np.float32)
    data += np.random.default_rng(seed).normal(0, 15, data.shape).astype(np.float32)
    return Volume(data, head.affine @ np.diag([*(1 / factors), 1.0]))


def render_seconds(renderer: Any, volume: Volume, repeats: int = 3) -> list[float]:
    """Wall seconds of ``repeats`` renders of ``volume``, after one untimed render (imports, first
    touch of the array)."""
    renderer.render(volume)
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        renderer.render(volume)
        timings.append(time.perf_counter() - start)
    return timings


def face_items(n: int, seed: int = 0, views: tuple[tuple[int, int], ...] = ((0, 0),)) -> list:
    """``n`` (image, Face) items: surface renders of :func:`sample_head` under ``views`` (item ``k``
    shows view ``k % len(views)``), dlib_hog's face of each view, and per-item pixel noise (so no
    two inputs are identical; the network's cost does not depend on it)."""
    from defacebench.run.faces import best_face

    images = [v.image for v in plugin("renderers", "surface", views=tuple(views)).render(sample_head())]
    hog = plugin("detectors", "dlib_hog")
    faces = [best_face(hog.detect(image)) for image in images]
    if any(face is None for face in faces):
        raise BenchmarkError(f"dlib_hog found no face on the surface render(s) {views} of the sample head "
                             "(defacebench.data.phantom.anatomy.head_ct): check the surface renderer and dlib_hog")
    rng = np.random.default_rng(seed)
    return [(np.clip(images[k % len(images)] + rng.normal(0, 3, images[0].shape), 0, 255).astype(np.uint8),
             faces[k % len(images)]) for k in range(n)]


def embed_once(rec: Any, gallery: list, probe: list) -> np.ndarray:
    """The pipeline's way: embed each of the 2N items once, then one vectorised distance matrix."""
    from scipy.spatial.distance import cdist

    return cdist(rec.embed(gallery), rec.embed(probe))


def per_pair(rec: Any, gallery: list, probe: list, pairs: list[tuple[int, int]]) -> np.ndarray:
    """The seed study's way: a verify call per (gallery, probe) pair, embedding both images each time."""
    out = np.empty(len(pairs))
    for k, (i, j) in enumerate(pairs):
        a, b = rec.embed([gallery[i], probe[j]])
        out[k] = np.linalg.norm(a - b)
    return out


def measure_matrix(p: BenchParams, work: Path) -> list[Figure]:
    """Item a2: embed-once vs per-pair loop for N = ``matrix_n``; the loop timed on ``matrix_pairs``
    random pairs and extrapolated linearly to N^2 pairs (``work`` is unused: nothing is written)."""
    n = p.matrix_n
    items = face_items(2 * n, p.seed)
    gallery, probe = items[:n], items[n:]
    rec = plugin("recognizers", "dlib_resnet")
    rec.embed(gallery[:1])  # load the network outside the timing
    matrix, once = timed(embed_once, rec, gallery, probe)
    rng = np.random.default_rng(p.seed)
    pairs = [tuple(int(v) for v in rng.integers(0, n, 2)) for _ in range(p.matrix_pairs)]
    dists, sub = timed(per_pair, rec, gallery, probe, pairs)
    scale = n * n / len(pairs)
    loop = Timing(sub.wall * scale, sub.cpu * scale)
    err = max(abs(matrix[i, j] - d) for (i, j), d in zip(pairs, dists))
    return [Figure("a2", f"matrix N={n}, embed once (s, wall / CPU)", f"{once.wall:.1f} / {once.cpu:.1f}",
                   f"{2 * n} embeddings, dlib_resnet"),
            Figure("a2", f"matrix N={n}, per-pair loop (s, wall / CPU)", f"{loop.wall:.0f} / {loop.cpu:.0f}",
                   f"{2 * n * n} embeddings; timed on {len(pairs)} random pairs "
                   f"({sub.wall:.1f} s), extrapolated linearly"),
            Figure("a2", "per-pair / embed-once (wall / CPU)", f"{loop.wall / once.wall:.0f}x / "
                   f"{loop.cpu / once.cpu:.0f}x",
                   f"max abs distance difference {err:.1e}; load {os.getloadavg()[0]:.1f}")]
