"""The ONNX recognizers `mobileface`, `faceres`, `faceres_deep` on real render crops; the alignment
they use; the collapse check of defacebench.testing (it flags mobilefacenet, passes the others);
and what they say when their converted model is missing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from defacebench.contracts import Face
from defacebench.errors import PluginUnavailableError
from defacebench.testing import check_recognizer_spread
from recognizers._backends import align, human_models, tfjs_onnx
from recognizers.detect.mtcnn import Mtcnn
from recognizers.embed.dlib_resnet import DlibResnet
from recognizers.embed.human import Faceres, FaceresDeep, Mobileface

OTHER = (1.08, 0.94, 1.03)  # a second identity: the head rescaled per axis
RECOGNIZERS = (Mobileface, Faceres, FaceresDeep)


def _ready(rec):
    if not rec.available().ok:
        pytest.skip(rec.available().reason)
    return rec


def _mtcnn_items(renders, scale=(1.0, 1.0, 1.0)):
    det = Mtcnn()
    if not det.available().ok:
        pytest.skip(det.available().reason)
    return [(img, det.detect(img)[0]) for img in renders(scale)]


def _hog_items(renders, hog_faces, scale=(1.0, 1.0, 1.0)):
    return list(zip(renders(scale), hog_faces(scale)))


@pytest.mark.parametrize("cls", RECOGNIZERS, ids=lambda c: c.name)
@pytest.mark.parametrize("source", ["mtcnn", "dlib_hog"])
def test_embeds_once_per_item_and_separates_identities(cls, source, renders, hog_faces):
    """(n, dim) finite rows and a NaN row for a missing face; n_embedded counts faces; for every view
    the same head with pixel noise is nearer (cosine) than another head under the same view."""
    rec = _ready(cls())
    items = _mtcnn_items(renders) if source == "mtcnn" else _hog_items(renders, hog_faces)
    other = _mtcnn_items(renders, OTHER) if source == "mtcnn" else _hog_items(renders, hog_faces, OTHER)
    rng = np.random.default_rng(0)
    noisy = [(np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8), f) for img, f in items]
    a = rec.embed(items + [(items[0][0], None)])
    assert a.shape == (len(items) + 1, rec.dim) and np.isfinite(a[:-1]).all() and np.isnan(a[-1]).all()
    assert rec.n_embedded == len(items) and rec.metric == "cosine"
    b, c = rec.embed(noisy), rec.embed(other)

    def cos(x, y):
        return 1 - np.sum(x * y, axis=1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)

    same, diff = cos(a[:-1], b), cos(a[:-1], c)
    assert np.all(same < diff), (same, diff)


def test_mobileface_aligns_on_face5_landmarks_else_on_dlib_eyes(renders, hog_faces):
    """face5 landmarks (mtcnn) are used as given; a face without them, or with landmarks of another
    scheme (dlib_hog's eye corners), is aligned on the eye centres of dlib's 5-point predictor."""
    from recognizers._backends import dlib_models

    rec = _ready(Mobileface())
    image, face = _mtcnn_items(renders)[0]
    hog = hog_faces()[0]
    chips = rec.inputs([(image, face), (image, Face(box=face.box)), (image, hog)])
    assert chips.shape == (3, 112, 112, 3)
    assert np.array_equal(chips[0], align.align_face5(image, face.landmarks))
    eyes = align.dlib5_eye_centres(dlib_models.landmarks5(image, face.box))
    assert np.array_equal(chips[1], align.align_face5(image, eyes))
    hog_eyes = align.dlib5_eye_centres(hog.landmarks)
    assert hog.landmark_scheme == "" and np.array_equal(chips[2], align.align_face5(image, hog_eyes))
    # the two routes frame the same face alike: the eye centres agree within a few pixels
    assert np.abs(hog_eyes - face.landmarks[:2]).max() < 8
    vec = rec.embed([(image, face), (image, hog)])
    assert 1 - vec[0] @ vec[1] / np.linalg.norm(vec[0]) / np.linalg.norm(vec[1]) < 0.2


@settings(max_examples=30, deadline=None)
@given(st.floats(-0.5, 0.5), st.floats(0.5, 3.0), st.floats(-100, 100), st.floats(-100, 100))
def test_alignment_puts_landmarks_on_the_template(angle, scale, dx, dy):
    """Points made by any similarity of the template are mapped back onto it (a dot drawn at the
    left eye lands at the template's left eye in the 112 px chip)."""
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = align.ARCFACE_112 @ rot.T + [200 + dx, 200 + dy]
    matrix = align.similarity(points, align.ARCFACE_112)
    back = points @ matrix[:, :2].T + matrix[:, 2]
    assert np.allclose(back, align.ARCFACE_112, atol=1e-6)
    image = np.zeros((500, 500, 3), np.uint8)
    x, y = np.round(points[0]).astype(int)
    if 3 <= x < 497 and 3 <= y < 497:
        image[y - 3:y + 4, x - 3:x + 4] = 255
        chip = align.align_face5(image, points)
        cy, cx = np.argwhere(chip[:, :, 0] > 0).mean(axis=0)
        assert abs(cx - align.ARCFACE_112[0, 0]) < 2.5 and abs(cy - align.ARCFACE_112[0, 1]) < 2.5


def test_faceres_crop_is_the_enlarged_square_box():
    rec = _ready(Faceres())
    image = np.zeros((300, 400, 3), np.uint8)
    image[100:200, 150:250] = 200  # a bright square exactly at the box
    crop = rec.inputs([(image, Face(box=(150.0, 100.0, 250.0, 200.0)))])[0]
    assert crop.shape == (224, 224, 3)
    inner = 224 / 1.4
    lo, hi = int((224 - inner) / 2) + 3, int((224 + inner) / 2) - 3
    assert crop[lo:hi, lo:hi].min() > 150 and crop[:lo - 6].max() < 50


class _Mobilefacenet(Mobileface):
    """mobilefacenet of the same npm package, fed as Human feeds it (0..1): not offered as a plugin."""

    name, key, dim = "mobilefacenet", "mobilefacenet", 192


def test_collapse_check_flags_mobilefacenet_and_passes_working_models(tmp_path, monkeypatch):
    model = human_models.MODELS["mobilefacenet"]
    if not human_models.source_path(model).is_file():
        pytest.skip(f"{human_models.source_path(model)} missing: run ./scripts/setup.sh")
    for rec in (Mobileface(), Faceres(), DlibResnet()):
        check_recognizer_spread(_ready(rec), tmp_path)
    proto = tfjs_onnx.convert(human_models.source_path(model), [model.output])
    (tmp_path / "mobilefacenet.onnx").write_bytes(proto.SerializeToString())
    monkeypatch.setenv("DEFACEBENCH_WEIGHTS", str(tmp_path))
    collapsed = _Mobilefacenet()
    assert collapsed.available().ok, collapsed.available().reason
    with pytest.raises(AssertionError, match="collapse"):
        check_recognizer_spread(collapsed, tmp_path)


@pytest.mark.parametrize("cls", RECOGNIZERS, ids=lambda c: c.name)
def test_missing_model_is_unavailable_and_points_to_weights_fetch(cls, tmp_path, monkeypatch):
    monkeypatch.setenv("DEFACEBENCH_WEIGHTS", str(tmp_path))
    rec = cls()
    avail = rec.available()
    assert not avail.ok and f"{rec.key}.onnx" in avail.reason and str(tmp_path) in avail.reason
    assert f"defacebench weights fetch {rec.name}" in avail.reason
    with pytest.raises(PluginUnavailableError):
        rec.embed([(np.zeros((50, 50, 3), np.uint8), Face((0, 0, 50, 50)))])
    assert rec.n_embedded == 0


def test_a_model_from_another_converter_version_is_stale(tmp_path, monkeypatch):
    """An ONNX file whose metadata names another converter version is not used silently."""
    import onnx

    source = human_models.onnx_path(human_models.MODELS["mobileface"])
    if not source.is_file():
        pytest.skip(f"{source} missing: run ./scripts/setup.sh")
    proto = onnx.load(str(source))
    for prop in proto.metadata_props:
        if prop.key == "converter_version":
            prop.value = "0"
    (tmp_path / "mobileface.onnx").write_bytes(proto.SerializeToString())
    monkeypatch.setenv("DEFACEBENCH_WEIGHTS", str(tmp_path))
    avail = Mobileface().available()
    assert not avail.ok and "converter version 0" in avail.reason and "weights fetch mobileface" in avail.reason
    assert tfjs_onnx.CONVERTER_VERSION != "0"
