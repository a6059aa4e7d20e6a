"""`mtcnn` and the ONNX recognizers on the sample dataset's undefaced renders (issue 13).

Every frontal render of the 16-subject sample (scan and rescan) is detected by mtcnn, and each new
recognizer identifies the rescan gallery from the scan probes (the benchmark's control geometry),
with mtcnn's faces and with dlib_hog's. Measured on sample format 5 (rank-1, mtcnn / dlib_hog):
mobileface 1.000 / 1.000, faceres 0.938 / 0.938, faceres_deep 0.938 / 0.938 (subject 015, a 5 mm
rescan at another pitch, is taken for 005; format 4: 1.0 / 0.938, 1.0 / 1.0, 1.0 / 1.0). The floor
is 0.9 for faceres (issue 13's bar; with the crop placed by the 1.4x enlarged box both fell below it
with dlib_hog) and 0.85 for mobileface (it has confused 2 of 16 near-identical synthetic faces; see
docs/figures.md). mtcnn's weakest frontal score on format 5 is 0.85 against its 0.8 threshold
(docs/realism.md, "Checks kept").
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from defacebench.data.sample import SampleParams, make_sample_dataset, nifti_copy_path, subject_ids
from defacebench.data.volume import load_volume
from defacebench.plugins.registry import load_registry


FLOOR = {"mobileface": 0.85, "faceres": 0.9, "faceres_deep": 0.9}


@pytest.fixture(scope="module")
def rendered():
    """(session -> list of the frontal render of every subject)."""
    renderer = load_registry().get("renderers", "surface")
    if not renderer.available().ok:
        pytest.skip(renderer.available().reason)
    root = make_sample_dataset(params=SampleParams())
    return {session: [renderer.render(load_volume(nifti_copy_path(root, sid, session)))[0].image
                      for sid in subject_ids(SampleParams().n_subjects)]
            for session in ("scan", "rescan")}


_DETECTED: dict = {}


def _detect(rendered, name: str):
    """(session -> list of (image, best face of detector ``name`` or None)), once per detector."""
    detector = load_registry().get("detectors", name)
    if not detector.available().ok:
        pytest.skip(detector.available().reason)
    if name not in _DETECTED:
        _DETECTED[name] = {s: [(img, (detector.detect(img) or [None])[0]) for img in images]
                           for s, images in rendered.items()}
    return _DETECTED[name]


@pytest.fixture(scope="module")
def detected(rendered):
    """mtcnn's faces (see _detect)."""
    return _detect(rendered, "mtcnn")


def test_mtcnn_detects_every_undefaced_sample_render(detected):
    found = [face is not None for side in detected.values() for _, face in side]
    assert all(found), f"mtcnn missed {found.count(False)} of {len(found)} undefaced renders"
    assert all(face.landmark_scheme == "face5" for side in detected.values() for _, face in side)


@pytest.mark.parametrize("detector", ["mtcnn", "dlib_hog"])
@pytest.mark.parametrize("name", ["mobileface", "faceres", "faceres_deep"])
def test_new_recognizers_identify_the_sample(rendered, detector, name):
    rec = load_registry().get("recognizers", name)
    if not rec.available().ok:
        pytest.skip(rec.available().reason)
    detected = _detect(rendered, detector)
    assert all(face is not None for side in detected.values() for _, face in side)
    gallery, probe = rec.embed(detected["rescan"]), rec.embed(detected["scan"])
    dist = cdist(gallery, probe, "cosine")
    rank1 = float(np.mean(np.argmin(dist, axis=0) == np.arange(len(dist))))
    print(f"{name} + {detector} on the sample: rank-1 {rank1:.3f}")
    assert rank1 >= FLOOR[name]
