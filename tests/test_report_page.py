"""leaderboard.html organised by defacer (issue 24 item 4), checked in headless Chromium over the
DevTools protocol: no script error or failed load, the verdict first, one report card per defacer,
the leaderboard last with working sorting, filtering and full-size images; and a page of 250
results stays light. The run is synthetic (tests/report_helpers.py): no face of anyone is drawn."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from chromium_helpers import CHROMIUM, Browser
from defacebench.report import write_leaderboard
from defacebench.report.html_tables import BOARD_HEADERS
from defacebench.report.verdict import VerdictParams
from report_helpers import EVIL, LONG_REASON, row, synthetic_run, write_montage

needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium missing: apt-get install chromium")
PARAMS = VerdictParams(attacker_floor=0.5, permutations=500, cross_fit_repeats=50)
ORDER = ["good", "legacy", "leaky", "none", "eraser", "broken", "ghost"]  # verdict order, then no result


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    run = tmp_path_factory.mktemp("report") / "run"
    rows, statuses = synthetic_run(run)
    verdicts = write_leaderboard(run, rows, statuses=statuses, params=PARAMS)
    return run, rows, statuses, verdicts


@pytest.mark.chromium
@needs_chromium
def test_the_browser_helper_sees_script_errors_and_failed_loads(tmp_path):
    """The console check below can fail: a page with a deliberate error of each kind is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><body><img src="missing.png"><script>console.error("deliberate");'
                   "</script><script>undefinedFunction();</script>"
                   "<script>setTimeout(function () { null.boom; }, 0);</script></body></html>")
    good = tmp_path / "good.html"
    good.write_text('<!DOCTYPE html><html><body><p id="x">fine</p><script>console.log("ok")</script></body></html>')
    with Browser(tmp_path / "profile") as browser:
        browser.open(bad.as_uri())
        found = "\n".join(browser.errors)
        assert "console.error: deliberate" in found
        assert "ReferenceError: undefinedFunction is not defined" in found
        assert "TypeError" in found and "boom" in found  # thrown later, from a timer
        assert "ERR_FILE_NOT_FOUND" in found and "missing.png" in found
        browser.errors.clear()
        browser.open(good.as_uri())
        assert browser.errors == [] and browser.evaluate("document.getElementById('x').textContent") == "fine"


def _visible(browser: Browser) -> list[str]:
    return browser.evaluate("Array.from(document.querySelectorAll('#leaderboard tbody.rows tr'))"
                            ".filter(function (r) { return !r.hidden; }).map(function (r) { return r.dataset.config; })")


def _filter(browser: Browser, words: str, defacer: str = "") -> list[str]:
    browser.evaluate(f"(function () {{ var i = document.getElementById('filter'); i.value = {json.dumps(words)}; "
                     f"document.getElementById('filter-defacer').value = {json.dumps(defacer)}; "
                     "i.dispatchEvent(new Event('input')); }())")
    return _visible(browser)


@pytest.mark.chromium
@needs_chromium
def test_report_page_in_headless_chromium(report, tmp_path):
    run, rows, _, verdicts = report
    with Browser(tmp_path / "profile") as b:
        b.open((run / "leaderboard.html").as_uri())
        # the leaderboard's thumbnails, far below the verdict, wait until they are scrolled to
        assert b.evaluate("Array.from(document.querySelectorAll('#leaderboard img[loading=lazy]')).filter("
                          "function (i) { return !i.complete; }).length") == 18
        # sections: the verdict first, then the heatmap, one card per defacer, the leaderboard last
        assert b.evaluate("Array.from(document.querySelectorAll('body > section')).map(function (s) "
                          "{ return s.id; })") == ["verdict", "heatmap", "defacers", "board"]
        assert b.evaluate("Array.from(document.querySelectorAll('#verdict-table tbody tr')).map(function (r) "
                          "{ return r.dataset.defacer; })") == ORDER
        classes = b.evaluate("Array.from(document.querySelectorAll('section.card')).map(function (c) "
                             "{ return [c.dataset.defacer, c.querySelector('h3 .badge').textContent]; })")
        assert classes == [["good", "not_shown_exposed"], ["legacy", "untestable"], ["leaky", "exposed"],
                           ["none", "exposed"], ["eraser", "anatomy_destroyed"], ["broken", "defacer_failed"],
                           ["ghost", "no_result"]]
        text = b.evaluate("document.getElementById('card-leaky').textContent")
        assert "selected max" in text and "0.750 [0.476, 0.927]" in text  # worst attack, exact interval
        assert "leaky-vtk_volume-dlib_hog-dlib_resnet-multiview" in text and LONG_REASON[:60] in text
        assert "empty mesh <b>" in text and "attacker invalid" in text
        assert EVIL in b.evaluate("document.getElementById('card-broken').textContent")  # as text, never run
        assert b.evaluate("document.scripts.length") == 1
        assert "head_removed on 16 of 16" in b.evaluate("document.getElementById('card-eraser').textContent")
        assert "DefacerError: ghost crashed" in b.evaluate("document.getElementById('card-ghost').textContent")
        assert b.evaluate("document.querySelectorAll('#card-leaky .montage img[loading=lazy]').length") == 1
        heat = b.evaluate("document.querySelectorAll('table.heat tbody tr').length")
        assert heat == 6 and b.evaluate("document.querySelectorAll('table.heat td.invalid').length") == 6

        # filtering: words, exclusions, the defacer of a card's link; empty groups hide
        assert len(_filter(b, "")) == len(rows) == 18
        assert sorted(_filter(b, "multiview")) == sorted(r.key for r in rows if r.scenario == "multiview")
        assert len(_filter(b, "-multiview vtk_volume")) == 6
        assert b.evaluate("document.getElementById('filter-count').textContent") == "6 of 18 results shown"
        _filter(b, "leaky")
        assert b.evaluate("Array.from(document.querySelectorAll('#leaderboard tbody.group')).filter(function (g) "
                          "{ return !g.hidden; }).length") == 1
        b.evaluate("document.querySelector('#card-none a[data-show-defacer]').click()")
        assert sorted(_visible(b)) == sorted(r.key for r in rows if r.defacer == "none")

        # sorting within each defacer's group
        _filter(b, "")
        col = BOARD_HEADERS.index("rank-1 [95% CI]")
        keys = "Array.from(document.querySelectorAll('#leaderboard tbody.rows')).map(function (g) { return " \
               f"Array.from(g.rows).map(function (r) {{ return parseFloat(r.cells[{col}].dataset.sort); }}); }})"
        b.evaluate(f"document.querySelectorAll('#leaderboard thead th')[{col}].click()")
        assert all(g == sorted(g) for g in b.evaluate(keys))
        b.evaluate(f"document.querySelectorAll('#leaderboard thead th')[{col}].click()")
        groups = b.evaluate(keys)
        assert all(g == sorted(g, reverse=True) for g in groups) and any(len(set(g)) > 1 for g in groups)

        # thumbnails load lazily: each loads once scrolled to
        loaded = b.evaluate("""(async function () {
            var out = [];
            for (const img of document.querySelectorAll('img[loading=lazy]')) {
              img.scrollIntoView();
              for (var t = 0; t < 250 && !img.complete; t++) { await new Promise(function (r) { setTimeout(r, 20); }); }
              out.push(img.complete ? img.naturalWidth : -1);
            }
            return out; }())""")
        assert len(loaded) == 18 + 6 + 1 and all(width > 0 for width in loaded)  # rows, cards, attacks.png
        b.evaluate("window.scrollTo(0, 0)")
        b.evaluate("document.querySelector('#card-leaky .montage a.zoom').click()")
        assert b.evaluate("!document.getElementById('lightbox').hidden")
        assert b.evaluate("new Promise(function (done) { var img = document.querySelector('#lightbox img'); "
                          "(function wait() { if (img.complete) { done(img.naturalWidth); } "
                          "else { setTimeout(wait, 20); } }()); })") == 1024  # the full montage, not a thumbnail
        b.screenshot(tmp_path / "lightbox.png")
        b.evaluate("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape'}))")
        assert b.evaluate("document.getElementById('lightbox').hidden")

        assert b.errors == [], b.errors
        top = b.screenshot(tmp_path / "report.png")
        full = b.screenshot(tmp_path / "report-full.png", full_page=True)
    print(f"screenshots: {top} {full}")
    assert top.stat().st_size > 10_000 and full.stat().st_size > top.stat().st_size


def test_page_links_only_files_of_the_run_folder_and_rebuilds_byte_identical(report, tmp_path):
    """Thumbnails are separate small files (nothing inlined), every link resolves inside the run
    folder, and writing the same rows again in another order gives the same bytes."""
    run, rows, statuses, _ = report
    page = (run / "leaderboard.html").read_text()
    assert "data:image" not in page and page.count("<script>") == 1
    targets = set(re.findall(r'(?:src|href)="([^"#][^"]*)"', page))
    assert targets and all((run / t).is_file() for t in targets), [t for t in targets if not (run / t).is_file()]
    thumbs = sorted((run / "thumbs").iterdir())
    sizes = {t.name.split(".")[-2]: max(x.stat().st_size for x in thumbs if x.name.endswith(t.name[-8:]))
             for t in thumbs}
    assert len(thumbs) == 18 + 6 and sizes["row"] < 10_000 and sizes["card"] < 100_000, sizes
    before = {p: p.read_bytes() for p in [run / "leaderboard.html", *thumbs]}
    for thumb in thumbs:  # written afresh they are the same bytes
        thumb.unlink()
    write_leaderboard(run, list(reversed(rows)), statuses=dict(reversed(list(statuses.items()))), params=PARAMS)
    assert {p: p.read_bytes() for p in before} == before


def test_no_images_writes_no_thumbnail_and_no_picture(report, tmp_path):
    _, rows, statuses, _ = report
    run = tmp_path / "run"
    write_leaderboard(run, rows, statuses=statuses, params=PARAMS, images=False)
    page = (run / "leaderboard.html").read_text()
    assert "<img" not in page.replace('<img alt="full-size image">', "") and not (run / "thumbs").exists()
    assert 'id="card-leaky"' in page and "table class=\"heat\"" in page


def test_a_page_of_250_results_stays_light(tmp_path):
    """5 defacers x 50 attackers (2 renderers x 5 recognizers x 5 scenarios), each with a montage:
    the page holds no image, its thumbnails are small files, and its size stays a few hundred kB."""
    run = tmp_path / "run"
    montage = write_montage(run / "shared" / "montage.png", 0, n=2)  # small: 250 thumbnails decode it
    rows = []
    for d, defacer in enumerate(["none", "a", "b", "c", "d"]):
        for renderer in ("surface", "vtk_volume"):
            for k, recognizer in enumerate(["dlib_resnet", "mobileface", "faceres", "sface", "arcface"]):
                for scenario in ("rescan", "seed", "multiview", "svm", "aware"):
                    hits = 16 if defacer == "none" else (d * 3 + k) % 9
                    r = row(defacer, renderer, hits, scenario=scenario, montage=montage.relative_to(run))
                    rows.append(replace(r, recognizer=recognizer, config_id=f"{defacer}-{renderer}-dlib_hog-{recognizer}"))
    assert len(rows) == 250
    write_leaderboard(run, rows, params=PARAMS)
    page = (run / "leaderboard.html").read_text()
    size = len(page.encode())
    print(f"250 results: leaderboard.html {size / 1e3:.0f} kB, "
          f"{sum(p.stat().st_size for p in (run / 'thumbs').iterdir()) / 1e3:.0f} kB of thumbnails")
    assert size < 800_000 and "data:image" not in page
    assert page.count('loading="lazy"') == page.count("<img ") - 1  # all but the lightbox's empty one
    assert page.count('<th class="vert"') >= 50  # one readable header per attacker column


def test_row_thumbnail_is_the_first_subjects_pair_whatever_the_montage_layout(tmp_path):
    """Two images per subject (original | defaced) or three (a refill scenario adds the refilled
    probe): the row thumbnail is the first subject's original | defaced pair; another picture is
    shrunk whole."""
    from PIL import Image

    from defacebench.report.montage import LABEL_PX, THUMB_PX
    from defacebench.report.thumbs import ROW_WIDTH, write_thumbnail

    cell = THUMB_PX + LABEL_PX
    for width in (2 * THUMB_PX, 3 * THUMB_PX, 4 * THUMB_PX, 6 * THUMB_PX):
        Image.new("RGB", (width, 3 * cell), (0, 0, 255)).save(tmp_path / "m.png")
        thumb = write_thumbnail(tmp_path / "m.png", tmp_path, f"k{width}", "row")
        assert (thumb.width, thumb.height) == (ROW_WIDTH, round(cell * ROW_WIDTH / (2 * THUMB_PX)))
    Image.new("RGB", (300, 120), (0, 0, 255)).save(tmp_path / "plain.png")
    thumb = write_thumbnail(tmp_path / "plain.png", tmp_path, "plain", "row")
    assert (thumb.width, thumb.height) == (ROW_WIDTH, round(120 * ROW_WIDTH / 300))
    assert write_thumbnail(tmp_path / "missing.png", tmp_path, "missing", "row") is None
