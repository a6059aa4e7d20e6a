"""The seed study's camera on a whole sample: shared by the CT and MRI realism tests (issue 22)."""

from __future__ import annotations

import numpy as np
import pytest


def seed_camera_rates(params) -> dict[str, float]:
    """Share of the undefaced renders of the sample ``params`` builds (every subject, both
    sessions) on which dlib_hog and mtcnn find a face, with `vtk_volume` and ``camera="seed"``;
    skips the calling test when the renderer or a detector is not available."""
    from defacebench.data.sample import SESSIONS, make_sample_dataset, nifti_copy_path, subject_ids
    from defacebench.data.volume import load_volume
    from defacebench.plugins.registry import get_plugin
    from recognizers.render.vtk_volume import VtkVolumeParams, VtkVolumeRenderer

    renderer = VtkVolumeRenderer(VtkVolumeParams(camera="seed"))
    detectors = {name: get_plugin("detectors", name) for name in ("dlib_hog", "mtcnn")}
    for plugin in (renderer, *detectors.values()):
        if not plugin.available():
            pytest.skip(f"{plugin.name}: {plugin.available().reason}")
    root = make_sample_dataset(params=params)
    hits: dict[str, list[bool]] = {name: [] for name in detectors}
    for sid in subject_ids(params.n_subjects):
        for session in SESSIONS:
            image = renderer.render(load_volume(nifti_copy_path(root, sid, session)))[0].image
            for name, det in detectors.items():
                hits[name].append(bool(det.detect(image)))
    return {name: float(np.mean(h)) for name, h in hits.items()}
