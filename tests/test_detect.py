"""Face detectors on real surface renders: every detector available here finds the rendered face,
reports an empty list on a black image, and an unavailable one names the missing file."""

from __future__ import annotations

import numpy as np
import pytest

from defacebench.errors import ImageError, PluginUnavailableError
from recognizers.detect import deepface as dd
from recognizers.detect.dlib import DlibCnn, DlibHog
from recognizers.detect.opencv_haar import OpencvHaar
from recognizers.detect.retinaface import RetinaFace

ALL = [DlibHog(), DlibCnn(), OpencvHaar(), RetinaFace(), dd.DeepfaceOpencv(), dd.DeepfaceSsd(),
       dd.DeepfaceMtcnn(), dd.DeepfaceYunet(), dd.DeepfaceRetinaface(), dd.DeepfaceDlib()]
IDS = [d.name for d in ALL]


def _need(detector):
    avail = detector.available()
    if not avail.ok:
        pytest.skip(f"{detector.name}: {avail.reason}")


def _face_centre_ok(face, image) -> bool:
    """The box lies in the image and its centre is in the middle half (where the face is rendered)."""
    x0, y0, x1, y1 = face.box
    h, w = image.shape[:2]
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return -2 <= x0 < x1 <= w + 2 and -2 <= y0 < y1 <= h + 2 and w / 4 < cx < 3 * w / 4 and h / 4 < cy < 3 * h / 4


@pytest.mark.parametrize("detector", ALL, ids=IDS)
def test_detects_the_frontal_render(renders, detector):
    """The frontal render holds one face where the head is; scores sort descending."""
    _need(detector)
    image = renders()[0]
    faces = detector.detect(image)
    assert faces, f"{detector.name} found no face on the frontal render"
    assert _face_centre_ok(faces[0], image)
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)


@pytest.mark.parametrize("detector", [DlibHog(), OpencvHaar(), dd.DeepfaceDlib()], ids=lambda d: d.name)
def test_detects_under_yaw_and_pitch(renders, render_views, detector):
    """+-15 deg yaw and +-10 deg pitch renders are all detected (cheap detectors only)."""
    _need(detector)
    found = [bool(detector.detect(img)) for img in renders()]
    assert all(found), f"{detector.name}: detected {dict(zip(render_views, found))}"


@pytest.mark.parametrize("detector", ALL, ids=IDS)
def test_black_image_has_no_face(detector):
    _need(detector)
    assert detector.detect(np.zeros((200, 240, 3), np.uint8)) == []


def test_dlib_landmarks_are_five_points_in_the_box(renders):
    """dlib detectors return the 5-point landmarks the recognizer aligns with, inside the face box."""
    face = DlibHog().detect(renders()[0])[0]
    assert face.landmarks.shape == (5, 2)
    x0, y0, x1, y1 = face.box
    assert np.all((face.landmarks[:, 0] > x0 - 5) & (face.landmarks[:, 0] < x1 + 5))
    assert np.all((face.landmarks[:, 1] > y0 - 5) & (face.landmarks[:, 1] < y1 + 5))


def test_gray_and_rgba_inputs_are_converted(renders):
    """A gray or RGBA version of the render gives the HOG face of the RGB render."""
    rgb = renders()[0]
    gray = rgb.mean(axis=2).astype(np.uint8)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    hog = DlibHog()
    for img in (gray, rgba):
        faces = hog.detect(img)
        assert faces and _face_centre_ok(faces[0], rgb)
    with pytest.raises(ImageError):
        hog.detect(np.zeros((0, 0, 3), np.uint8))


def test_unavailable_plugins_name_the_missing_file(renders, tmp_path, monkeypatch):
    """With an empty defacebench DEEPFACE_HOME, weight-file plugins say which file goes where and
    refuse to run (so nothing can download)."""
    monkeypatch.setenv("DEFACEBENCH_DEEPFACE_HOME", str(tmp_path))
    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path))
    weights = tmp_path / ".deepface" / "weights"
    expected = {dd.DeepfaceSsd(): "deploy.prototxt", dd.DeepfaceYunet(): "face_detection_yunet_2023mar.onnx",
                RetinaFace(): "retinaface.", dd.DeepfaceRetinaface(): "retinaface."}
    for plugin, name in expected.items():
        avail = plugin.available()
        assert not avail.ok and name in avail.reason and str(weights) in avail.reason, avail.reason
        with pytest.raises(PluginUnavailableError):
            plugin.detect(renders()[0])
    assert not any(p.name.endswith((".onnx", ".caffemodel", ".h5")) for p in weights.iterdir())


def test_deepface_dlib_detector_is_provisioned_offline(renders, tmp_path, monkeypatch):
    """deepface's dlib backend becomes available in a fresh home by linking the shipped predictor."""
    monkeypatch.setenv("DEFACEBENCH_DEEPFACE_HOME", str(tmp_path))
    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path))
    assert dd.DeepfaceDlib().available().ok
    assert (tmp_path / ".deepface" / "weights" / "shape_predictor_5_face_landmarks.dat").stat().st_size > 1000
    assert dd.DeepfaceDlib().detect(renders()[0])
