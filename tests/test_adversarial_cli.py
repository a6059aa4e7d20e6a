"""Adversarial use of the small commands (issue 25): ``identify`` with an impossible pixel cap or
nothing readable to score, ``evaluate`` on a matrix whose sides do not pair up, ``cache`` pointed
at a folder that does not exist.

Real PNG files, the real dlib_hog detector, real CSV matrices, the real command line.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from defacebench.cli import main


# ------------------------------------------------------------------------ identify


@pytest.mark.parametrize("value", ["0", "-5", "abc"])
def test_identify_refuses_a_pixel_cap_that_no_image_can_meet(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as exit_:
        main(["identify", "--gallery", str(tmp_path), "--probe", str(tmp_path), "--out", str(tmp_path / "o"),
              "--max-pixels", value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--max-pixels" in err and "positive" in err and not (tmp_path / "o").exists()


def _faces_folder(folder: Path, ids, corrupt: bool) -> Path:
    """Small real PNGs (no face on them), or the same files cut to 40 bytes."""
    folder.mkdir(parents=True)
    for n, sid in enumerate(ids):
        path = folder / f"{sid}.png"
        Image.fromarray(np.full((48, 40, 3), 60 + 30 * n, np.uint8)).save(path)
        if corrupt:
            path.write_bytes(path.read_bytes()[:40])
    return folder


@pytest.mark.parametrize("side", ["probe", "gallery"])
def test_identify_fails_when_every_image_of_one_side_is_unreadable(tmp_path, capsys, side):
    ids = ("1", "2", "3", "4")
    gallery = _faces_folder(tmp_path / "gallery", ids, corrupt=side == "gallery")
    probe = _faces_folder(tmp_path / "probe", ids, corrupt=side == "probe")
    code = main(["identify", "--gallery", str(gallery), "--probe", str(probe), "--out", str(tmp_path / "o"),
                 "--n-bootstrap", "10"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"every {side} image" in err and "unreadable" in err and str(tmp_path / side) in err and "Fix:" in err
    assert not (tmp_path / "o" / "metrics.json").exists()  # no numbers that look like a result


# ------------------------------------------------------------------------ evaluate


def _matrix(path: Path, gallery, probe, rng) -> Path:
    values = rng.uniform(0.5, 1.0, size=(len(gallery), len(probe)))
    for i, g in enumerate(gallery):
        for j, p in enumerate(probe):
            if g == p:
                values[i, j] = 0.1
    lines = [",".join(["metric=cosine", *probe])]
    lines += [",".join([g, *(f"{v:.3f}" for v in row)]) for g, row in zip(gallery, values)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_evaluate_names_probes_without_a_gallery_row_and_gallery_rows_without_a_probe(tmp_path, capsys, rng):
    gallery = ["a", "b", "c", "d", "e", "f", "g"]
    probe = ["a", "b", "c", "d", "e", "f", "x", "y"]  # x, y: no gallery row; g: no probe column
    path = _matrix(tmp_path / "m.csv", gallery, probe, rng)
    assert main(["evaluate", str(path), "--json", "--split", "1.0", "--bootstrap", "0"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["rank1"] == 1.0 and data["n_probe"] == 8
    err = captured.err
    assert "2 probe column(s) without a gallery row (x, y)" in err and "left out of rank-1" in err
    assert "1 gallery row(s) without a probe column (g)" in err
    assert main(["evaluate", str(path), "--split", "1.0", "--bootstrap", "0"]) == 0
    assert "identified among 6 of 8 probes" in capsys.readouterr().out


def test_evaluate_on_a_square_paired_matrix_warns_nothing(tmp_path, capsys, rng):
    path = _matrix(tmp_path / "m.csv", list("abcdef"), list("fedcba"), rng)
    assert main(["evaluate", str(path), "--json", "--split", "1.0", "--bootstrap", "0"]) == 0
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------------------ cache


@pytest.mark.parametrize("command", [["info"], ["info", "--json"], ["sweep"], ["clear", "--yes"]])
def test_cache_commands_on_a_missing_folder_say_so(tmp_path, capsys, command):
    missing = tmp_path / "no-such-cache"
    code = main(["cache", *command, "--cache-dir", str(missing)])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.startswith(f"defacebench cache: {missing}: no cache here") and "Fix:" in captured.err
    assert not missing.exists()
