"""The HTML leaderboard: ids are escaped text, and headless Chromium renders the table
(tests/test_report_page.py checks the whole page organised by defacer)."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from defacebench.metrics import DistanceMatrix, evaluate_matrix
from chromium_helpers import Browser
from defacebench.report import LeaderboardRow, write_leaderboard
from defacebench.report.html_tables import BOARD_HEADERS

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
    assert page.count("<script>") == 1  # only the page's own script
    # grouped by defacer in verdict order: the usable defacer, then the control (the reference)
    assert page.index('data-config="fsl_deface-a-b-c"') < page.index('data-config="none-a-b-c"')


@pytest.mark.chromium
@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium missing: apt-get install chromium")
def test_html_leaderboard_opens_in_headless_chromium_and_shows_the_table(tmp_path):
    run = tmp_path / "run"
    write_leaderboard(run, _rows(run))
    column = BOARD_HEADERS.index("rank-1 [95% CI]")
    with Browser(tmp_path / "profile") as browser:
        browser.open((run / "leaderboard.html").as_uri())
        configs = "Array.from(document.querySelectorAll('#leaderboard tbody.rows tr')).map(function (r) " \
                  "{ return r.dataset.config; })"
        assert browser.evaluate(configs) == ["fsl_deface-a-b-c", "none-a-b-c"]
        assert browser.evaluate("document.querySelectorAll('#leaderboard img[loading=lazy]').length") == 1
        identified = browser.evaluate("document.querySelector('#leaderboard').textContent")
        assert EVIL in identified and browser.evaluate("document.scripts.length") == 1  # text, never a script
        # a link ending in #sort=-<column> opens the table sorted; rank-1 descending within each group
        browser.open((run / "leaderboard.html").as_uri() + f"#sort=-{column}")
        heads = browser.evaluate("Array.from(document.querySelectorAll('#leaderboard thead th')).map(function (h) "
                                 "{ return h.className; })")
        assert heads[column] == "desc" and heads.count("desc") == 1
        assert browser.errors == [], browser.errors
