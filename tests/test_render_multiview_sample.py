"""The multiview grid on the sample: every view of an undefaced head is a detectable, identifying face.

Renders both acquisitions of the default 16-subject sample under the multiview grid (15 cameras,
yaw -30..30 x pitch -15..15), detects with dlib HOG and embeds with the dlib ResNet. Reports per
view the detection rate and the same-view rank-1 (rescan renders are the gallery, scan renders the
probes), and the two fused scores of the `multiview` scenario (minimum distance over view pairs;
distance of mean embeddings). Slow (~2-4 min on 2 cores): run with --run-slow; ``-s`` prints the table.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from defacebench.data.sample import SampleParams, make_sample_dataset, nifti_copy_path, subject_ids
from defacebench.data.volume import load_volume

for _module in ("dlib", "face_recognition_models"):
    if importlib.util.find_spec(_module) is None:
        pytest.skip(f"{_module} not installed (pip install defacebench[dlib])", allow_module_level=True)


def _embeddings(root, session: str, ids, renderer, detector, recognizer) -> tuple[list[str], np.ndarray]:
    """View ids and (subjects, views, 128) embeddings of every view; NaN where no face was found."""
    from defacebench.run.faces import best_face

    out, names = [], []
    for sid in ids:
        views = renderer.render(load_volume(nifti_copy_path(root, sid, session)))
        names = [v.view_id for v in views]
        out.append(recognizer.embed([(v.image, best_face(detector.detect(v.image))) for v in views]))
    return names, np.stack(out)


def _rank1(dist: np.ndarray) -> float:
    """Share of probes (columns) whose nearest gallery row is their own subject."""
    dist = np.where(np.isnan(dist), np.inf, dist)
    return float(np.mean(np.argmin(dist, axis=0) == np.arange(dist.shape[1])))


@pytest.mark.slow
def test_every_view_of_the_multiview_grid_is_detected_and_identifying():
    from recognizers._backends.views import multiview_grid
    from recognizers.detect.dlib import DlibHog
    from recognizers.embed.dlib_resnet import DlibResnet
    from recognizers.render.surface import SurfaceParams, SurfaceRenderer

    params = SampleParams()
    root, ids = make_sample_dataset(params=params), subject_ids(params.n_subjects)
    plugins = SurfaceRenderer(SurfaceParams(views=multiview_grid())), DlibHog(), DlibResnet()
    for plugin in plugins:
        if not plugin.available():
            pytest.skip(plugin.available().reason)
    names, gallery = _embeddings(root, "rescan", ids, *plugins)
    _, probe = _embeddings(root, "scan", ids, *plugins)
    found = np.isfinite(gallery[..., 0]).mean(axis=0) / 2 + np.isfinite(probe[..., 0]).mean(axis=0) / 2
    pair = np.linalg.norm(gallery[:, None, :, None, :] - probe[None, :, None, :, :], axis=-1)  # g, p, vg, vp
    same_view = [_rank1(pair[:, :, v, v]) for v in range(len(names))]
    fused_min = _rank1(np.nanmin(np.where(np.isnan(pair), np.inf, pair), axis=(2, 3)))
    mean_g, mean_p = np.nanmean(gallery, axis=1), np.nanmean(probe, axis=1)
    fused_mean = _rank1(np.linalg.norm(mean_g[:, None, :] - mean_p[None, :, :], axis=-1))
    print("\nview                   detection  rank-1 (same view)")
    for name, det, r1 in zip(names, found, same_view):
        print(f"{name:24s} {det:8.3f}  {r1:8.3f}")
    print(f"multiview fused: min over view pairs rank-1 {fused_min:.3f}, mean embedding rank-1 {fused_mean:.3f}")
    assert len(names) == 15
    assert found.min() >= 0.8 and found.mean() >= 0.95
    assert min(fused_min, fused_mean) >= 0.95
