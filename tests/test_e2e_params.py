"""End-to-end: plugin parameters and a variant from defacebench.toml reach the run, its manifest and its
results; a bad key is a one-line error naming the file, table and key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("dlib")

ROOT = Path(__file__).resolve().parents[1]
TOML = """
[renderers.surface]
views = [[0, 0, 0], [15, 0, 0]]

[detectors.dlib_hog_up2]
plugin = "dlib_hog"
upsample = 2
"""


def _cli(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DEFACEBENCH_CACHE": str(tmp_path / "cache")}
    return subprocess.run([sys.executable, "-m", "defacebench", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)


def test_params_and_variant_from_the_plugins_file_are_used_and_recorded(sample_dataset, tmp_path):
    toml = tmp_path / "defacebench.toml"
    toml.write_text(TOML)
    out = _cli(["--plugins-file", str(toml), "run", "--dataset", str(sample_dataset), "--results", str(tmp_path / "r"),
                "--run-id", "p", "--defacers", "none", "--renderers", "surface", "--detectors", "dlib_hog_up2",
                "--recognizers", "dlib_resnet", "--calibration", "1.0", "--n-bootstrap", "50", "--no-images"], tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    run = tmp_path / "r" / "p"
    manifest = json.loads((run / "manifest.json").read_text())
    surface = next(p for p in manifest["plugins"]["renderers"] if p["name"] == "surface")
    assert surface["params"]["views"] == [[0, 0, 0], [15, 0, 0]] and str(toml) in surface["source"]
    variant = next(p for p in manifest["plugins"]["detectors"] if p["name"] == "dlib_hog_up2")
    assert variant["params"]["upsample"] == 2 and variant["source"].startswith("variant of dlib_hog")
    assert manifest["configurations"] == {"none-surface-dlib_hog_up2-dlib_resnet": {"status": "passed"}}
    metrics = json.loads((run / "none-surface-dlib_hog_up2-dlib_resnet" / "metrics.json").read_text())
    assert metrics["extra"]["plugins"]["detector"]["params"]["upsample"] == 2
    # rescan uses the first view: of the two views configured only that one is rendered and searched
    stages = manifest["stages"]
    assert stages["detect"]["dlib_hog_up2"]["computed"] == stages["render"]["surface"]["computed"]


def test_a_bad_key_is_one_line_naming_file_table_and_key(sample_dataset, tmp_path):
    toml = tmp_path / "defacebench.toml"
    toml.write_text("[renderers.surface]\nsize = 3\n")
    out = _cli(["--plugins-file", str(toml), "run", "--dataset", str(sample_dataset), "--results", str(tmp_path / "r"),
                "--defacers", "none"], tmp_path)
    assert out.returncode == 1
    assert f"{toml} [renderers.surface]: unknown key(s) size" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
