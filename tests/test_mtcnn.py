"""The `mtcnn` detector: its ONNX networks, the cascade's box arithmetic (property tests), faces and
landmarks on real renders, and its availability when the mtcnn wheel's weights are missing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from defacebench.errors import PluginUnavailableError
from recognizers._backends import mtcnn_cascade as mc
from recognizers._backends import mtcnn_nets
from recognizers.detect.deepface import DeepfaceMtcnn
from recognizers.detect.mtcnn import Mtcnn

DETECTOR = Mtcnn()
if not DETECTOR.available().ok:
    pytest.skip(DETECTOR.available().reason, allow_module_level=True)


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_networks_have_the_published_shapes():
    """P-Net maps an h x w image to a (ceil((h-2)/2)-4) x (ceil((w-2)/2)-4) grid (its pooling pads at the
    end, as Keras 'same' does); R-Net and O-Net give one row
    per crop; every face probability is a softmax pair."""
    nets = mc._sessions(1)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 41, 60)).astype(np.float32)
    reg, prob = nets["pnet"].run(None, {"input": x})
    assert reg.shape == (1, 4, 16, 25) and prob.shape == (1, 2, 16, 25)
    assert np.allclose(prob.sum(axis=1), 1, atol=1e-5)
    reg, marks, prob = nets["onet"].run(None, {"input": np.zeros((3, 3, 48, 48), np.float32)})
    assert reg.shape == (3, 4) and marks.shape == (3, 10) and np.allclose(prob.sum(axis=1), 1, atol=1e-5)
    assert [len(a) for a in mtcnn_nets.load_weights("rnet")] and len(mtcnn_nets.load_weights("rnet")) == 16


def test_pyramid_covers_min_face_to_whole_image():
    scales = mc.pyramid_scales(512, 400, 40, 0.709)
    assert scales[0] == pytest.approx(12 / 40)
    assert 400 * scales[-1] >= 12 > 400 * scales[-1] * 0.709
    assert np.allclose(np.diff(np.log(scales)), np.log(0.709))


boxes = st.lists(st.tuples(st.floats(0, 400), st.floats(0, 400), st.floats(1, 200), st.floats(1, 200)),
                 min_size=1, max_size=30)


@settings(max_examples=60, deadline=None)
@given(boxes, st.floats(0.1, 0.9), st.booleans())
def test_nms_keeps_the_best_and_no_overlapping_pair(raw, threshold, over_min):
    b = np.array([[x, y, x + w, y + h] for x, y, w, h in raw])
    scores = np.linspace(1, 0.1, len(b))[np.random.default_rng(len(b)).permutation(len(b))]
    keep = mc.nms(b, scores, threshold, over_min)
    assert keep[0] == int(np.argmax(scores)) and len(set(keep)) == len(keep)
    for i in keep:
        for j in keep:
            if i < j:
                ix = max(0, min(b[i, 2], b[j, 2]) - max(b[i, 0], b[j, 0]))
                iy = max(0, min(b[i, 3], b[j, 3]) - max(b[i, 1], b[j, 1]))
                areas = [(b[k, 2] - b[k, 0]) * (b[k, 3] - b[k, 1]) for k in (i, j)]
                denom = min(areas) if over_min else sum(areas) - ix * iy
                assert ix * iy <= threshold * denom + 1e-9


@given(boxes)
def test_square_keeps_centre_and_longer_side(raw):
    b = np.array([[x, y, x + w, y + h, 0.5] for x, y, w, h in raw])
    s = mc.square(b)
    assert np.allclose(s[:, 2] - s[:, 0], s[:, 3] - s[:, 1])
    assert np.allclose(s[:, 2] - s[:, 0], np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]))
    assert np.allclose(s[:, :4].reshape(-1, 2, 2).mean(1), b[:, :4].reshape(-1, 2, 2).mean(1))
    assert np.allclose(mc.regress(b[:, :4], np.zeros((len(b), 4))), b[:, :4])


def test_faces_and_landmarks_on_renders(renders, hog_faces):
    """Every view of the synthetic head: one face overlapping dlib's, five landmarks in the face5
    order (eyes left to right, above the nose, above the mouth corners), inside the box."""
    for image, hog in zip(renders(), hog_faces()):
        faces = DETECTOR.detect(image)
        assert faces, "mtcnn found no face on a frontal render"
        best = faces[0]
        assert best.score > 0.9 and best.landmark_scheme == "face5" and best.landmarks.shape == (5, 2)
        assert hog is not None and _iou(best.box, hog.box) > 0.4
        le, re, nose, ml, mr = best.landmarks
        assert le[0] < nose[0] < re[0] and ml[0] < mr[0]
        assert max(le[1], re[1]) < nose[1] < min(ml[1], mr[1])
        x0, y0, x1, y1 = best.box
        assert np.all((best.landmarks[:, 0] > x0) & (best.landmarks[:, 0] < x1))
        assert np.all((best.landmarks[:, 1] > y0) & (best.landmarks[:, 1] < y1))


def test_no_face_on_blank_or_noise():
    rng = np.random.default_rng(0)
    assert DETECTOR.detect(np.zeros((300, 400, 3), np.uint8)) == []
    assert DETECTOR.detect(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)) == []


def test_detection_is_deterministic_and_gray_input_works(renders):
    image = renders()[0]
    a, b = DETECTOR.detect(image), DETECTOR.detect(image.copy())
    assert [f.box for f in a] == [f.box for f in b]
    gray = image.mean(axis=2).astype(np.uint8)
    assert DETECTOR.detect(gray), "a gray render is converted to RGB and detected"


def test_missing_weights_make_it_unavailable(tmp_path, monkeypatch, renders):
    """Without the wheel's files the reason names the file and the pip command; detect refuses."""
    monkeypatch.setattr(mtcnn_nets, "weights_dir", lambda: tmp_path)
    avail = Mtcnn().available()
    assert not avail.ok and "pnet.lz4" in avail.reason and "pip install" in avail.reason
    with pytest.raises(PluginUnavailableError, match="pnet.lz4"):
        Mtcnn().detect(renders()[0])


def test_weight_records_match_the_wheel():
    records = {r.name: r for r in DETECTOR.weights()}
    assert set(records) == {"pnet.lz4", "rnet.lz4", "onet.lz4"}
    import hashlib

    for rec in records.values():
        assert hashlib.sha256(rec.path.read_bytes()).hexdigest() == rec.sha256
        assert rec.fetch is None and "pip install" in rec.how


def test_deepface_mtcnn_needs_tensorflow_and_says_so():
    """deepface's mtcnn backend runs the same weights on TensorFlow, which this route never installs."""
    import importlib.util

    if importlib.util.find_spec("tensorflow") is not None:
        pytest.skip("TensorFlow is installed here")
    avail = DeepfaceMtcnn().available()
    assert not avail.ok and "tensorflow" in avail.reason
