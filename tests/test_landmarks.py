"""The nose tip and nasion from the mid-sagittal skin profile (defacebench.anatomy.landmarks): exact on
a synthetic profile whose nasion is known, near the phantom's own landmarks, in the same world place
whatever the voxel order, and a clear error without a face. (The real head's are checked against
MTCNN's landmarks in tests/test_real_head.py.)"""

from __future__ import annotations

import numpy as np
import pytest

from defacebench.anatomy.landmarks import LandmarkError, ProfileParams, profile_landmarks
from defacebench.contracts import Volume


def _profile_head(nasion_z: float = -25.0, voxel_mm: float = 2.0, tilt_deg: float = 0.0) -> Volume:
    """A CT head whose midline skin profile y(z) is known: an ellipsoid cranium and, in front of it, a
    face: a forehead receding above the glabella (z = nasion_z + 15), a straight V into the nasion at
    ``nasion_z`` (y = 92) and a nose whose tip is 35 mm lower (y = 120); away from the midline the
    face recedes, so the midline is the front."""
    shape = (90, 130, 120)
    affine = np.diag([voxel_mm] * 3 + [1.0])
    affine[:3, 3] = (-89.0, -110.0, -150.0)
    i, j, k = np.indices(shape)
    x, y, z = (affine[a, a] * idx + affine[a, 3] for a, idx in enumerate((i, j, k)))
    g, tip = nasion_z + 15.0, nasion_z - 35.0
    front = np.select(
        [z >= g, z >= nasion_z, z >= tip, z >= tip - 20],
        [98.0 - (z - g) ** 2 / 60.0, 92.0 + 6.0 * (z - nasion_z) / 15.0, 92.0 + 28.0 * (nasion_z - z) / 35.0,
         120.0 - 1.5 * (tip - z)],
        default=90.0 - 0.2 * (tip - 20 - z))
    front = front - 0.02 * x ** 2
    skull = (x / 75.0) ** 2 + ((y + 10.0) / 100.0) ** 2 + ((z + 20.0) / 120.0) ** 2 <= 1.0
    face = (y >= 0.0) & (y <= front) & (np.abs(x) < 60.0) & (z > tip - 30.0) & (z < g + 30.0)
    head = skull | face
    data = np.where(head, 40.0, -1000.0).astype(np.float32)
    return Volume(data, affine)


@pytest.mark.parametrize("nasion_z", [-35.0, -20.0])
def test_nasion_and_tip_of_a_known_profile(nasion_z):
    marks = profile_landmarks(_profile_head(nasion_z))
    assert abs(marks.nasion[2] - nasion_z) <= 2.0 and abs(marks.nasion[1] - 92.0) <= 2.0, marks
    assert abs(marks.nasion[0]) <= 2.0 and abs(marks.nose_tip[0]) <= 2.0
    assert abs(marks.nose_tip[2] - (nasion_z - 35.0)) <= 2.0 and abs(marks.nose_tip[1] - 120.0) <= 2.0
    assert marks.nasion_depth_mm > 8.0


def test_phantom_head_landmarks():
    """The phantom's ``Landmarks`` were read off the template: its nose tip, moved forward by the
    phantom's facial relief (measured: the phantom's
    skin at -500 HU lies 4 mm behind it, and the tip is a 12 mm tall plateau, whose centre is taken)
    within 8 mm; its ``nasion`` is the bony one, inside the skin: the skin nasion lies in front of it,
    between the eyes' level and it (the averaged template's forehead is almost flat there: measured
    18 mm lower)."""
    from defacebench.data.phantom.anatomy import head_ct
    from defacebench.data.phantom.face import FaceParams, relief_shift
    from defacebench.data.phantom.template import Landmarks

    hu, affine = head_ct(2.0)
    marks, truth = profile_landmarks(Volume(hu, affine)), Landmarks()
    # the phantom's facial relief (docs/realism.md) moves the skin at the tip forward of the template's
    forward = float(relief_shift(np.float32(truth.nose_tip[0]), np.float32(truth.nose_tip[2]), FaceParams.template().scaled_relief()))
    tip = np.add(truth.nose_tip, (0.0, forward, 0.0))
    assert np.linalg.norm(np.subtract(marks.nose_tip, tip)) <= 8.0, (marks, tip)
    x, y, z = marks.nasion
    assert abs(x - truth.nasion[0]) <= 4.0 and truth.nasion[1] <= y <= truth.nasion[1] + 8.0
    assert truth.eye_left[2] - 4.0 <= z <= truth.nasion[2] + 2.0


def test_the_same_world_points_whatever_the_voxel_order():
    """Flip and permute the stored axes (consistent affine): canonical reorientation gives back the
    same world landmarks, so a plugin may hand any NIfTI orientation."""
    import nibabel as nib

    head = _profile_head(-25.0)
    base = profile_landmarks(head)
    img = nib.Nifti1Image(head.data, head.affine)
    ornt = np.array([[1, -1], [0, 1], [2, -1]])  # stored as (A->P, R, S->I)
    flipped = img.as_reoriented(ornt)
    can = nib.as_closest_canonical(flipped)
    again = profile_landmarks(Volume(np.asarray(can.dataobj, np.float32), can.affine))
    assert not np.allclose(flipped.affine, head.affine)
    np.testing.assert_allclose(again.nasion, base.nasion, atol=1e-6)
    np.testing.assert_allclose(again.nose_tip, base.nose_tip, atol=1e-6)


def test_no_face_is_a_clear_error(ellipsoid_ct):
    sphere = _profile_head().data.copy()
    shape = sphere.shape
    i, j, k = np.indices(shape)
    sphere[:] = np.where(((i - 45) ** 2 + (j - 55) ** 2 + (k - 60) ** 2) < 40 ** 2, 40.0, -1000.0)
    with pytest.raises(LandmarkError, match="no nasion"):
        profile_landmarks(Volume(sphere, np.diag([2.0, 2.0, 2.0, 1.0])))
    with pytest.raises(LandmarkError, match="no head"):
        profile_landmarks(Volume(np.full((20, 20, 20), -1000.0, np.float32), np.eye(4)))
    with pytest.raises(LandmarkError, match="only"):
        profile_landmarks(Volume(np.full((20, 20, 20), 40.0, np.float32), np.eye(4)), ProfileParams())
