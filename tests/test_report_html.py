"""The HTML leaderboard: ids are escaped text, and headless Chromium renders the table."""

from __future__ import annotations

import html
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from defacebench.metrics import DistanceMatrix, evaluate_matrix
from defacebench.report import LeaderboardRow, write_leaderboard

EVIL = "<script>alert(1)</script>"
CHROMIUM = Path("/usr/bin/chromium")


def _rows(run: Path) -> list[LeaderboardRow]:
    ids = [EVIL, "s&1", "s2", "s3", "s4"]
    values = np.full((5, 5), 0.8)
    np.fill_diagonal(values, 0.1)
    ev = evaluate_matrix(DistanceMatrix(ids, ids, values, "cosine"), n_bootstrap=20, calibration=1.0)
    values[1, 1] = values[3, 3] = 0.9  # defacing protects two subjects: lower rank-1
    worse = evaluate_matrix(DistanceMatrix(ids, ids, values, "cosine"), n_bootstrap=20, calibration=1.0)
    (run / "none-a-b-c").mkdir(parents=True)
    montage = run / "none-a-b-c" / "montage.png"
    Image.new("RGB", (300, 120), (10, 200, 30)).save(montage)
    return [
        LeaderboardRow.from_evaluation("fsl_deface-a-b-c", worse, status="ok <b>bold</b>"),
        LeaderboardRow.from_evaluation("none-a-b-c", ev, montage=Path("none-a-b-c/montage.png")),
    ]


def test_subject_ids_and_text_are_escaped_in_the_html(tmp_path):
    write_leaderboard(tmp_path, _rows(tmp_path))
    page = (tmp_path / "leaderboard.html").read_text()
    assert EVIL not in page and html.escape(EVIL) in page
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt;" in page
    assert "s&amp;1" in page
    assert page.count("<script>") == 1  # only the sorting script
    assert page.index('data-config="none-a-b-c"') < page.index('data-config="fsl_deface-a-b-c"')


@pytest.mark.chromium
@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium missing: apt-get install chromium")
def _dump_dom(url: str, profile: Path) -> str:
    """The DOM after load (scripts run) as headless Chromium serialises it."""
    argv = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run", f"--user-data-dir={profile}", "--dump-dom", url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.chromium
@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium missing: apt-get install chromium")
def test_html_leaderboard_opens_in_headless_chromium_and_shows_the_table(tmp_path):
    run = tmp_path / "run"
    write_leaderboard(run, _rows(run))
    dom = _dump_dom((run / "leaderboard.html").as_uri(), tmp_path / "profile")
    assert '<table id="leaderboard">' in dom
    board = dom[dom.index('<table id="leaderboard">'):]
    body = board[board.index("<tbody>"):board.index("</tbody>")]
    assert len(re.findall(r"<tr class=\"(control|config)\"", body)) == 2
    assert "none-a-b-c" in body and "fsl_deface-a-b-c" in body
    assert "data:image/png;base64," in body  # thumbnails inline
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "<script>alert(1)" not in dom
    assert body.index("none-a-b-c") < body.index("fsl_deface-a-b-c")  # control row first
    # the sorting script runs: ascending rank-1 (column 2) puts the defaced row first
    by_rank1 = _dump_dom((run / "leaderboard.html").as_uri() + "#sort=2", tmp_path / "profile2")
    board = by_rank1[by_rank1.index('<table id="leaderboard">'):]
    tbody = board[board.index("<tbody>"):]
    assert tbody.index("fsl_deface-a-b-c") < tbody.index("none-a-b-c")
    assert 'class="asc"' in by_rank1
