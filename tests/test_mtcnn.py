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


def test_pyramid_is_the_packages():
    """mtcnn 1.0.0's levels: from 12 / min_face on, a count set by the short side alone (at
    min_face 20 the last level is the one whose short side is still >= 12 px)."""
    scales = mc.pyramid_scales(512, 400, 20, 0.709)
    assert scales[0] == pytest.approx(12 / 20) and len(scales) == 9
    assert 400 * scales[-1] >= 12 > 400 * scales[-1] * 0.709
    assert np.allclose(np.diff(np.log(scales)), np.log(0.709))
    assert len(mc.pyramid_scales(512, 400, 40, 0.709)) == 9, "the count ignores min_face"
    assert [mc.pnet_cells(n) for n in (10, 11, 12, 41)] == [0, 1, 1, 16]


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


@settings(max_examples=40, deadline=None)
@given(st.floats(-60, 500), st.floats(-60, 400), st.floats(4, 300), st.floats(4, 300), st.sampled_from([24, 48]))
def test_crops_sample_like_crop_and_resize(x0, y0, bw, bh, size):
    """On a linear ramp bilinear sampling is exact, so each crop pixel must equal the ramp at the
    point tf.image.crop_and_resize samples (corners as fractions of W, H on the (W - 1, H - 1) grid),
    and 0 where that point leaves the image."""
    h, w = 300, 420
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    image = np.stack([0.002 * xx, 0.003 * yy, 0.001 * (xx + yy)], axis=2)
    box = np.array([[x0, y0, x0 + bw, y0 + bh]])
    got = mc.crops(image, box, size)[0]
    t = np.arange(size) / (size - 1)
    xs = x0 / w * (w - 1) + t * bw / w * (w - 1)
    ys = y0 / h * (h - 1) + t * bh / h * (h - 1)
    inside = ((ys >= 0) & (ys <= h - 1))[:, None] & ((xs >= 0) & (xs <= w - 1))[None, :]
    want = np.where(inside, 0.002 * xs[None, :] + 0 * ys[:, None], 0)
    assert np.allclose(got[0], want, atol=1e-4)
    assert np.allclose(got[1], np.where(inside, 0.003 * ys[:, None] + 0 * xs[None, :], 0), atol=1e-4)


def test_nms_drops_what_a_dropped_box_overlaps():
    """The package's rule: C overlaps only B, B overlaps A; greedy NMS would keep A and C, the
    package keeps A alone (B, although dropped, still drops C)."""
    b = np.array([[0, 0, 10, 10], [3, 0, 13, 10], [6, 0, 16, 10]], float)
    assert list(mc.nms(b, np.array([0.9, 0.8, 0.7]), 0.4)) == [0]


@pytest.mark.slow
def test_port_matches_the_mtcnn_package(renders, tmp_path):
    """The port against mtcnn 1.0.0 on TensorFlow (``$DEFACEBENCH_TF_PYTHON``, a separate venv; see
    scripts/mtcnn_reference.py) on the synthetic head's renders: same faces, IoU >= 0.9, scores
    within 0.02."""
    import json
    import os
    import subprocess
    from pathlib import Path

    python = os.environ.get("DEFACEBENCH_TF_PYTHON", "")
    if not python or not Path(python).is_file():
        pytest.skip("set DEFACEBENCH_TF_PYTHON to a Python with tensorflow-cpu and mtcnn==1.0.0")
    images = {f"view{i}": image for i, image in enumerate(renders())}
    np.savez(tmp_path / "images.npz", **images)
    script = Path(__file__).resolve().parents[1] / "scripts" / "mtcnn_reference.py"
    run = subprocess.run([python, str(script), "--worker", str(tmp_path / "images.npz"), str(tmp_path / "out.json"),
                          "--min-face-ref", "20"], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    reference = json.loads((tmp_path / "out.json").read_text())
    port = Mtcnn(type(DETECTOR.params)(min_face_px=20))
    for key, image in images.items():
        ours, theirs = port.detect(image), reference[key]
        assert bool(ours) == bool(theirs), key
        if ours:
            best = max(theirs, key=lambda r: r[4])
            assert _iou(ours[0].box, best[:4]) >= 0.9 and abs(ours[0].score - best[4]) <= 0.02, key
