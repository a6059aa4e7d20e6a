"""Converted ONNX weight files are checked, not trusted: a truncated or altered file made `list` and
`run` crash with a protobuf traceback while `weights list` called it present. Now its digest
(recorded when it was converted) and its readability are checked; a bad file makes the plugin
unavailable with the command that rebuilds it, and `weights list` says corrupt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from defacebench.cli import main
from recognizers._backends import human_models
from recognizers.embed.human import Mobileface

ROOT = Path(__file__).resolve().parents[1]
MODEL = human_models.MODELS["mobileface"]
FIX = "defacebench weights fetch --force mobileface"


@pytest.fixture()
def weights(tmp_path, monkeypatch) -> Path:
    """A weights folder of its own holding a freshly converted mobileface.onnx (from the pinned TF.js
    sources setup extracted; no network)."""
    sources = human_models.tfjs_dir()
    if not human_models.source_path(MODEL).is_file():
        pytest.skip(f"{human_models.source_path(MODEL)} missing: run ./scripts/setup.sh")
    folder = tmp_path / "weights"
    (folder / "tfjs").mkdir(parents=True)
    (folder / "tfjs" / sources.name).symlink_to(sources)
    monkeypatch.setenv("DEFACEBENCH_WEIGHTS", str(folder))
    human_models.fetch(MODEL, force=True)
    assert Mobileface().available().ok, Mobileface().available().reason
    return folder


def _status(capsys) -> dict:
    assert main(["weights", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["files"]
    return next(r for r in rows if r["name"] == "mobileface.onnx")


def test_a_truncated_onnx_file_makes_the_plugin_unavailable_with_the_fetch_command(weights, capsys):
    path = weights / "mobileface.onnx"
    path.write_bytes(path.read_bytes()[:100_000])
    avail = Mobileface().available()
    assert not avail.ok and "corrupt" in avail.reason and FIX in avail.reason and str(path) in avail.reason
    row = _status(capsys)
    assert row["status"] == "corrupt" and row["get"] == f"{FIX}.onnx" and "corrupt" in row["problem"]


def test_an_altered_onnx_file_fails_its_recorded_digest(weights, capsys):
    """One flipped byte inside the weights still parses: only the digest can tell."""
    path = weights / "mobileface.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    avail = Mobileface().available()
    assert not avail.ok and "sha256" in avail.reason and FIX in avail.reason
    assert _status(capsys)["status"] == "corrupt"
    human_models.fetch(MODEL)  # without --force too: a corrupt file is rebuilt
    assert Mobileface().available().ok and _status(capsys)["status"] == "present"


def test_list_and_run_say_corrupt_in_one_line_instead_of_a_traceback(weights, tmp_path):
    (weights / "mobileface.onnx").write_bytes(b"\x08\x07not a model")
    env = {**os.environ, "DEFACEBENCH_WEIGHTS": str(weights)}
    listing = subprocess.run([sys.executable, "-m", "defacebench", "list"], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=300)
    assert listing.returncode == 0 and "Traceback" not in listing.stderr, listing.stderr[-2000:]
    assert "mobileface" in listing.stdout and "corrupt" in listing.stdout
