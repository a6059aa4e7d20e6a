"""Benchmarks of the attacker's models: milliseconds per face embedding (dlib_resnet, mobileface,
faceres, faceres_deep) and per 512 px render for detection (mtcnn vs dlib_hog).

Run with ``pytest tests/perf/test_perf_models.py --run-perf --benchmark-enable``; the per-face figure is
in each benchmark's ``extra_info`` (``ms_per_face``) and printed. Embeddings are timed on a batch
of 8 faces (the pipeline embeds a side in one batched call), each batch item a render of the
synthetic head under another view. Timings depend on the machine's load: quote them with it.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from defacebench.contracts import Volume
from defacebench.plugins.registry import load_registry

pytestmark = pytest.mark.perf

VIEWS = ((0, 0), (8, 0), (-8, 0), (0, 6), (0, -6), (5, 4), (-5, -4), (4, -5))
BATCH = len(VIEWS)


@lru_cache(maxsize=1)
def _renders() -> tuple[np.ndarray, ...]:
    from defacebench.data.phantom.anatomy import head_ct

    renderer = load_registry().get("renderers", "surface")
    volume = Volume(*head_ct(2.0))
    return tuple(v.image for v in type(renderer)(type(renderer.params)(views=VIEWS)).render(volume))


def _plugin(kind: str, name: str):
    plugin = load_registry().get(kind, name)
    if not plugin.available().ok:
        pytest.skip(plugin.available().reason)
    return plugin


@lru_cache(maxsize=None)
def _faces(detector: str) -> tuple:
    det = _plugin("detectors", detector)
    items = tuple((img, det.detect(img)[0]) for img in _renders())
    assert len(items) == BATCH
    return items


@pytest.mark.parametrize("name", ["dlib_resnet", "mobileface", "faceres", "faceres_deep"])
def test_perf_embed_ms_per_face(benchmark, name):
    """One batched embed call of 8 faces (mtcnn boxes and landmarks); figure: ms per face."""
    rec = _plugin("recognizers", name)
    items = list(_faces("mtcnn"))
    rec.embed(items[:1])  # warm: model load and session creation are not per-face costs
    out = benchmark.pedantic(rec.embed, args=(items,), rounds=5, iterations=1, warmup_rounds=1)
    assert out.shape[0] == BATCH and np.isfinite(out).all()
    per_face = benchmark.stats.stats.median * 1000 / BATCH if benchmark.stats else float("nan")
    benchmark.extra_info.update(ms_per_face=per_face, batch=BATCH)
    print(f"\n{name}: {per_face:.1f} ms per face (median of 5 batches of {BATCH})")


@pytest.mark.parametrize("name", ["mtcnn", "dlib_hog"])
def test_perf_detect_ms_per_image(benchmark, name):
    """Detection on one 512 x 512 render; figure: ms per image."""
    det = _plugin("detectors", name)
    image = _renders()[0]
    det.detect(image)  # warm
    faces = benchmark.pedantic(det.detect, args=(image,), rounds=7, iterations=1, warmup_rounds=1)
    assert faces, f"{name} found no face on the frontal render"
    per_image = benchmark.stats.stats.median * 1000 if benchmark.stats else float("nan")
    benchmark.extra_info.update(ms_per_image=per_image, shape=list(image.shape))
    print(f"\n{name}: {per_image:.1f} ms per image")
