"""Face recognizers on real render crops: shapes, the embedding counter, missing faces, identity
signal, deepface_dlib == dlib_resnet on the same chips, and unavailable models naming their file."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from defacebench.contracts import Face
from defacebench.errors import PluginUnavailableError
from recognizers.embed import deepface as dm
from recognizers.embed.dlib_resnet import DlibResnet

OTHER = (1.08, 0.94, 1.03)  # a second identity: the head rescaled per axis


@pytest.fixture
def face_items(renders, hog_faces):
    """Factory: ``face_items(scale)``, (render, dlib_hog face) of every default view of the head."""
    def make(scale=(1.0, 1.0, 1.0)):
        faces = hog_faces(scale)
        assert all(f is not None for f in faces)
        return list(zip(renders(scale), faces))
    return make


def test_dlib_resnet_embeds_once_per_item_and_counts(face_items):
    """(n, 128) finite rows; n_embedded counts items with a face; None gives a NaN row."""
    rec = DlibResnet()
    items = face_items()
    out = rec.embed(items + [(items[0][0], None)])
    assert out.shape == (len(items) + 1, 128)
    assert np.isfinite(out[:-1]).all() and np.isnan(out[-1]).all()
    assert rec.n_embedded == len(items)
    single = rec.embed(items[:1])
    assert np.allclose(single[0], out[0], atol=1e-6) and rec.n_embedded == len(items) + 1


def test_dlib_resnet_separates_identities(face_items, rng):
    """For every view, the same head with pixel noise is closer than the rescaled head (another
    identity) under the same view: the embedding carries shape, not just pose."""
    rec = DlibResnet()
    items = face_items()
    noisy = [(np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8), f) for img, f in items]
    a, a_noisy, b = rec.embed(items), rec.embed(noisy), rec.embed(face_items(OTHER))
    same = np.linalg.norm(a - a_noisy, axis=1)
    other = np.linalg.norm(a - b, axis=1)
    assert np.all(same < other), (same, other)


def test_deepface_dlib_matches_dlib_resnet_on_the_same_chips(face_items):
    """On identical aligned chips the two give the same vectors, and their distance matrices (each
    under its own metric: euclidean vs euclidean_l2) correlate >= 0.99."""
    ddlib = dm.DeepfaceDlib()
    if not ddlib.available().ok:
        pytest.skip(ddlib.available().reason)
    rec = DlibResnet()
    chips = rec.chips(face_items()) + rec.chips(face_items(OTHER))
    ours = rec.embed_chips(chips)
    theirs = ddlib.embed([(c, Face((0.0, 0.0, float(c.shape[1]), float(c.shape[0])))) for c in chips])
    assert ddlib.n_embedded == len(chips)
    assert np.allclose(ours, theirs, atol=1e-3)
    unit = theirs / np.linalg.norm(theirs, axis=1, keepdims=True)
    r = np.corrcoef(pdist(ours), pdist(unit))[0, 1]
    assert r >= 0.99, r


def test_deepface_dlib_on_detector_crops(face_items):
    """The standard path (crop of the detected box) embeds every face, NaN row for a missing face."""
    ddlib = dm.DeepfaceDlib()
    if not ddlib.available().ok:
        pytest.skip(ddlib.available().reason)
    items = face_items()[:2]
    out = ddlib.embed(items + [(items[0][0], None)])
    assert out.shape == (3, 128) and np.isfinite(out[:2]).all() and np.isnan(out[2]).all()
    assert ddlib.metric == "euclidean_l2" and ddlib.n_embedded == 2


@pytest.mark.parametrize(("cls", "file"), [
    (dm.DeepfaceVggFace, "vgg_face_weights."), (dm.DeepfaceFacenet512, "facenet512_weights."),
    (dm.DeepfaceArcFace, "arcface_weights."), (dm.DeepfaceSFace, "face_recognition_sface_2021dec.onnx"),
])
def test_missing_weights_make_a_model_unavailable(cls, file, tmp_path, monkeypatch):
    """In an empty home the reason names the file and the folder, and embed refuses to run."""
    monkeypatch.setenv("DEFACEBENCH_DEEPFACE_HOME", str(tmp_path))
    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path))
    rec = cls()
    avail = rec.available()
    assert not avail.ok and file in avail.reason and str(tmp_path / ".deepface" / "weights") in avail.reason
    with pytest.raises(PluginUnavailableError):
        rec.embed([(np.zeros((50, 50, 3), np.uint8), Face((0, 0, 50, 50)))])
    assert rec.n_embedded == 0
    assert rec.metric == "cosine"


def test_deepface_dlib_provisions_a_fresh_home(tmp_path, monkeypatch):
    """Both dlib files appear in $DEEPFACE_HOME/.deepface/weights, linked or copied, never downloaded."""
    monkeypatch.setenv("DEFACEBENCH_DEEPFACE_HOME", str(tmp_path))
    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path))
    assert dm.DeepfaceDlib().available().ok
    weights = tmp_path / ".deepface" / "weights"
    assert (weights / "dlib_face_recognition_resnet_model_v1.dat").stat().st_size > 1_000_000
    from recognizers._backends.weights import frm_file

    src = frm_file("dlib_face_recognition_resnet_model_v1.dat")
    assert (weights / src.name).read_bytes()[:4096] == src.read_bytes()[:4096]
