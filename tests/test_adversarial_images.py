"""Adversarial images for ``identify`` (issue 11, items 13 and the decompression-bomb part of 12).

A real 9500 x 9500 PNG of under 100 KB (90 MP: past PIL's warning, below its error) used to cost
over a minute and gigabytes. It is now refused from its header: fast, in little memory, with one
line naming the file and the limit, while the other images still produce every output.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from adversarial_helpers import bomb_png
from defacebench.cli import main
from defacebench.data.images import ImageLimits, read_image
from defacebench.errors import ImageError


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    return bomb_png(tmp_path_factory.mktemp("bomb") / "3.png")


def test_a_9500_pixel_square_png_is_refused_fast_and_in_little_memory(bomb):
    code = f"""
import json, resource, time
from defacebench.data.images import read_image
from defacebench.errors import ImageError
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    read_image({str(bomb)!r})
    message = None
except ImageError as exc:
    message = str(exc)
seconds = time.perf_counter() - start
grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({{"message": message, "seconds": seconds, "grown_mb": grown_kb / 1024}}))
"""
    out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                    timeout=120).stdout.strip().splitlines()[-1])
    assert out["seconds"] < 1.0 and out["grown_mb"] < 50, out
    message = out["message"]
    assert message.startswith(f"{bomb}: 9500 x 9500 = 90.2 megapixels, over the limit of 25 MP") and "\n" not in message
    assert "--max-pixels" in message


def test_the_cap_is_a_parameter_and_pils_own_bomb_error_is_named_too(tmp_path, bomb, monkeypatch):
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(small)
    assert read_image(small).shape == (40, 60, 3)
    with pytest.raises(ImageError, match=r"40 x 60|60 x 40"):
        read_image(small, ImageLimits(max_pixels=2000))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000_000)  # PIL's documented knob: errors past 2x
    with pytest.raises(ImageError, match=r"3\.png: decompression bomb refused before decoding"):
        read_image(bomb, ImageLimits(max_pixels=10**10))


def test_identify_skips_the_bomb_with_one_line_and_scores_the_others(tmp_path, bomb, capsys, renders):

    gallery, probe = tmp_path / "gallery", tmp_path / "probe"
    gallery.mkdir()
    probe.mkdir()
    for sid, scale in (("1", (1.0, 1.0, 1.0)), ("2", (1.08, 0.94, 1.03)), ("3", (0.92, 1.08, 1.0))):
        image = renders(scale, views=((0, 0),))[0]
        Image.fromarray(image).save(gallery / f"{sid}.png")
        if sid != "3":
            Image.fromarray(image).save(probe / f"{sid}.png")
    (probe / "3.png").write_bytes(bomb.read_bytes())
    start = time.perf_counter()
    code = main(["identify", "--gallery", str(gallery), "--probe", str(probe), "--out", str(tmp_path / "out"),
                 "--calibration", "1.0", "--n-bootstrap", "0"])
    assert code == 0 and time.perf_counter() - start < 60
    err = [line for line in capsys.readouterr().err.splitlines() if "3.png" in line]
    assert len(err) == 1 and "probe image skipped" in err[0] and "over the limit of 25 MP" in err[0]
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {"distances.csv", "metrics.json", "faces.csv"}
    rows = {(r["role"], r["subject_id"]): r for r in csv.DictReader(open(tmp_path / "out" / "faces.csv"))}
    assert rows[("probe", "3")]["outcome"] == "unreadable" and rows[("probe", "1")]["outcome"] == "face"
