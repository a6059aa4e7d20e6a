"""``defacebench identify`` on folders of real renders: pairing by file name, one embedding per
image, a probe without a face (or unreadable) kept as a non-match, outputs and CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from defacebench.cli import main
from defacebench.errors import DatasetError
from defacebench.run.identify import identify, scan_images, subject_id_from_name
from defacebench.metrics import DistanceMatrix
from recognizers.detect.dlib import DlibHog
from recognizers.embed.dlib_resnet import DlibResnet

SCALES = {"1": (1.0, 1.0, 1.0), "2": (1.08, 0.94, 1.03), "3": (0.92, 1.08, 1.0),
          "4": (1.1, 1.0, 0.92), "5": (1.0, 0.93, 1.07)}


@pytest.fixture(scope="module")
def folders(renders, tmp_path_factory):
    """gallery: person_{id}_view_frontal.png; probe: {id}.png = the render plus pixel noise, except
    subject 4 (corrupt file) and subject 5 (black image: no face)."""
    root = tmp_path_factory.mktemp("identify")
    gallery, probe = root / "gallery", root / "probe"
    gallery.mkdir()
    probe.mkdir()
    rng = np.random.default_rng(0)
    for sid, scale in SCALES.items():
        img = renders(scale, views=((0, 0),))[0]
        Image.fromarray(img).save(gallery / f"person_{sid}_view_frontal.png")
        noisy = np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)
        if sid == "5":
            noisy = np.zeros_like(img)
        Image.fromarray(noisy).save(probe / f"{sid}.png")
    (probe / "4.png").write_bytes((probe / "4.png").read_bytes()[:300])
    (probe / "notes.txt").write_text("not an image, ignored\n")
    return gallery, probe


def test_subject_ids_from_file_names(tmp_path):
    assert subject_id_from_name("person_17_view_frontal.png") == "17"
    assert subject_id_from_name("person_a_b_view_yaw+20_pitch+0.png") == "a_b"
    assert subject_id_from_name("042.png") == "042"
    (tmp_path / "3.png").write_bytes(b"x")
    (tmp_path / "person_3_view_frontal.png").write_bytes(b"x")
    with pytest.raises(DatasetError, match="both give subject id '3'"):
        scan_images(tmp_path)
    with pytest.raises(DatasetError, match="not found"):
        scan_images(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no image files"):
        scan_images(tmp_path / "empty")


def test_identify_keeps_failures_as_non_matches(folders, tmp_path):
    gallery, probe = folders
    rec = DlibResnet()
    result = identify(gallery, probe, DlibHog(), rec, tmp_path / "out", n_bootstrap=50)
    assert rec.n_embedded == 5 + 3 == result.n_embedded  # one embedding per image with a face
    assert result.detection_rate_gallery == 1.0 and result.detection_rate_probe == pytest.approx(0.6)
    outcome = {(o.role, o.subject_id): o.outcome for o in result.outcomes}
    assert outcome[("probe", "4")] == "unreadable" and outcome[("probe", "5")] == "no_face"
    matrix = DistanceMatrix.read_csv(tmp_path / "out" / "distances.csv")
    assert matrix.gallery_ids == tuple(SCALES) and matrix.probe_ids == tuple(SCALES)
    values = np.asarray(matrix.values)
    assert np.isinf(values[:, 3]).all() and np.isinf(values[:, 4]).all()
    assert np.isfinite(values[:, :3]).all()
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    for key in ("n", "rank1", "rank5", "roc_auc", "detection_rate", "detection_rate_gallery", "detection_rate_probe"):
        assert key in metrics
    assert metrics["n"] == 5 and metrics["detection_rate_probe"] == pytest.approx(0.6)
    assert metrics["rank1"] <= 0.6 + 1e-9  # the two failed probes can never be identified
    assert metrics["attacker"]["recognizer"]["name"] == "dlib_resnet"
    assert (tmp_path / "out" / "faces.csv").read_text().count("\n") == 11


def test_cli_identify(folders, tmp_path, capsys):
    gallery, probe = folders
    code = main(["identify", "--gallery", str(gallery), "--probe", str(probe), "--detector", "dlib_hog",
                 "--recognizer", "dlib_resnet", "--out", str(tmp_path / "cli"), "--n-bootstrap", "20",
                 "--calibration", "1.0"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n"] == 5 and summary["detection_rate_gallery"] == 1.0
    assert (tmp_path / "cli" / "metrics.json").is_file() and (tmp_path / "cli" / "distances.csv").is_file()


def test_cli_identify_unavailable_or_unknown_plugin(folders, tmp_path, capsys):
    gallery, probe = folders
    code = main(["identify", "--gallery", str(gallery), "--probe", str(probe), "--recognizer", "no_such",
                 "--out", str(tmp_path / "x")])
    assert code != 0 and "no_such" in capsys.readouterr().err


@pytest.mark.parametrize("recognizer", ["mobileface", "faceres", "faceres_deep"])
def test_cli_identify_with_mtcnn_and_onnx_recognizers(folders, tmp_path, capsys, recognizer):
    """The new detector and recognizers on a folder of PNG renders: every gallery face found, the
    corrupt and the black probe kept as non-matches, at least two of the three noisy probes
    identified (MTCNN's box on subject 3 flips between two candidates under pixel noise)."""
    from defacebench.plugins.registry import load_registry

    registry = load_registry()
    for kind, name in (("detectors", "mtcnn"), ("recognizers", recognizer)):
        avail = registry.get(kind, name).available()
        if not avail.ok:
            pytest.skip(avail.reason)
    out = tmp_path / recognizer
    code = main(["identify", "--gallery", str(folders[0]), "--probe", str(folders[1]), "--detector", "mtcnn",
                 "--recognizer", recognizer, "--out", str(out), "--n-bootstrap", "20"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n"] == 5 and summary["detection_rate_gallery"] == 1.0
    assert summary["detection_rate_probe"] == pytest.approx(0.6)
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.4 - 1e-9 <= metrics["rank1"] <= 0.6 + 1e-9 and metrics["attacker"]["detector"]["name"] == "mtcnn"
    assert metrics["attacker"]["recognizer"]["name"] == recognizer
