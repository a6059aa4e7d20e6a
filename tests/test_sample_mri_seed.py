"""The MRI sample against the seed study's camera (issue 22; docs/realism.md, "MRI sample").

`vtk_volume` with ``camera="seed"`` resets the study's camera (22.5 degrees above the face) to the
volume's bounds and dollies it x2, so the MRI's head-foot extent decides where the face lies in the
frame. With 220-240 mm below the vertex (the sample's extent before issue 22) the focal point sat
level with the eyes and the frame's bottom edge cut the mouth and chin; the real T1 spans 256 mm.
The T1 contrast was not the cause (noise, bias field and slice thickness changed no detection).

Cheap: the seed camera's projection (VTK's own camera, no render window) of the template's mouth,
for MRI geometries drawn from :func:`mri_scanner` and heads posed as ``PoseParams.frankfort()``
(the calibrated pose), keeps the mouth inside the frame. Slow: on the default 16-subject MRI sample
(the calibrated face and pose since sample format 5) the seed camera finds faces on >= 90 % of
undefaced renders with dlib_hog and with mtcnn (issue 22).
"""

from __future__ import annotations

import importlib.util
from dataclasses import replace

import numpy as np
import pytest

from defacebench.data.phantom.identity import PoseParams, random_pose
from defacebench.data.phantom.scanner import Geometry, draw_geometry, mri_scanner
from defacebench.data.phantom.template import Landmarks
from tests.seed_camera_helpers import seed_camera_rates

SEED_FLOOR = {"dlib_hog": 0.9, "mtcnn": 0.9}  # issue 22's figure, for both detectors
MOUTH_ROW = 0.9  # the mouth's image row, as a fraction of the frame's height from the top


def seed_rows(points: np.ndarray, geom: Geometry) -> np.ndarray:
    """Image rows (fraction of the height, 0 = top) of scanner-frame ``points`` in the seed camera's
    square frame for a volume of ``geom``: VTK's camera set as `vtk_volume`'s ``seed_camera`` does
    (position, view-up, reset to the bounds of the grid placed at the origin with the voxel sizes as
    spacing, direction cosines ignored, dolly)."""
    from vtkmodules.vtkRenderingCore import vtkRenderer

    from recognizers.render.vtk_volume import VtkVolumeParams

    p = VtkVolumeParams(camera="seed")
    zooms = np.linalg.norm(geom.affine[:3, :3], axis=0)
    inv = np.linalg.inv(geom.affine)
    world = (points @ inv[:3, :3].T + inv[:3, 3]) * zooms  # VTK's image: index x spacing
    renderer = vtkRenderer()
    camera = renderer.GetActiveCamera()
    camera.SetPosition(*p.camera_position)
    camera.SetFocalPoint(0.0, 0.0, 0.0)
    camera.SetViewUp(*p.view_up)
    hi = (np.asarray(geom.shape) - 1) * zooms
    renderer.ResetCamera(0.0, hi[0], 0.0, hi[1], 0.0, hi[2])
    camera.Dolly(p.dolly)
    matrix = camera.GetCompositeProjectionTransformMatrix(1.0, -1.0, 1.0)
    m = np.array([[matrix.GetElement(i, j) for j in range(4)] for i in range(4)])
    clip = np.c_[world, np.ones(len(world))] @ m.T
    return (1.0 - clip[:, 1] / clip[:, 3]) / 2.0


def mouth_rows(scanner, n: int = 120, seed: int = 0) -> np.ndarray:
    """The template mouth's seed-camera row for ``n`` drawn (pose, MRI geometry) pairs."""
    lm = Landmarks()
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        pose = random_pose(rng, PoseParams.frankfort())
        mouth, vertex = np.array([lm.lower_teeth_front, (0.0, -10.0, lm.vertex_z)]) @ pose[:3, :3].T + pose[:3, 3]
        rows.append(seed_rows(mouth[None], draw_geometry(rng, scanner, float(vertex[2])))[0])
    return np.asarray(rows)


@pytest.fixture(scope="module")
def vtk():
    if importlib.util.find_spec("vtkmodules") is None:
        pytest.skip("python module vtk not installed: pip install vtk (or defacebench[vtk])")


def test_seed_camera_frames_the_mri_mouth(vtk):
    rows = mouth_rows(mri_scanner())
    assert np.mean(rows <= MOUTH_ROW) >= 0.9, np.percentile(rows, [10, 50, 90])


def test_the_old_mri_extent_cut_the_mouth(vtk):
    # the test above can fail: at the extent of before issue 22 most mouths fall under MOUTH_ROW
    rows = mouth_rows(replace(mri_scanner(), z_extent_mm=(220.0, 240.0)))
    assert np.mean(rows <= MOUTH_ROW) < 0.5, np.percentile(rows, [10, 50, 90])


def test_seed_rows_match_the_frame_centre(vtk):
    # the bounds' centre is the focal point: it projects to the frame's middle row
    scanner = mri_scanner()
    geom = draw_geometry(np.random.default_rng(1), scanner, 90.0)
    centre = geom.affine[:3, :3] @ ((np.asarray(geom.shape) - 1) / 2.0) + geom.affine[:3, 3]
    assert seed_rows(centre[None], geom)[0] == pytest.approx(0.5, abs=1e-6)


@pytest.mark.slow
def test_seed_camera_finds_faces_on_the_16_subject_mri_sample():
    from defacebench.data.sample import SampleParams

    rates = seed_camera_rates(SampleParams(modality="mri"))
    print(f"MRI seed camera, 16 subjects: {rates}")
    assert all(rates[name] >= SEED_FLOOR[name] for name in rates), rates
