"""Attacker validity and the verdict per defacer (worst case over valid attackers)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from defacebench.report import LeaderboardRow, write_leaderboard
from defacebench.report.verdict import apply_validity, attacker_validity, verdict

CHROMIUM = Path("/usr/bin/chromium")


def _row(defacer, renderer, rank1, *, scenario="rescan", tar=None, dice=None, status="ok", fusion="single",
         qc=None, fail=0.0):
    cid = f"{defacer}-{renderer}-dlib_hog-dlib_resnet"
    return LeaderboardRow(cid, defacer, renderer, "dlib_hog", "dlib_resnet", n=16, rank1=rank1,
                          rank1_ci=(max(0.0, rank1 - 0.1), min(1.0, rank1 + 0.1)), rank5=rank1, roc_auc=0.9,
                          roc_auc_ci=(0.8, 1.0), eer=0.1, detection_rate=0.5, scenario=scenario, tar_far_1e2=tar,
                          brain_dice=dice, status=status, fusion=fusion, qc=qc or {"ok": 16},
                          defacing_failure_rate=fail)


ROWS = [
    _row("none", "surface", 1.0, tar=0.9), _row("none", "surface", 0.95, scenario="multiview", fusion="min"),
    _row("none", "vtk_volume", 0.06),  # a blind attacker: cannot identify even undefaced faces
    _row("quickshear", "surface", 0.06, dice=1.0), _row("quickshear", "surface", 0.31, scenario="multiview",
                                                        tar=0.25, dice=1.0, fusion="min"),
    _row("quickshear", "vtk_volume", 0.5, dice=1.0),
    _row("pydeface_ants", "surface", 0.0, dice=0.99), _row("pydeface_ants", "surface", 0.0, scenario="multiview",
                                                           dice=0.99),
    _row("blur", "surface", 0.0, dice=0.995), _row("blur", "surface", 0.0, scenario="multiview", dice=0.995),
]


def test_a_blind_attacker_is_invalid_and_enters_no_verdict():
    validity = attacker_validity(ROWS, floor=0.5)
    blind = validity[("vtk_volume", "dlib_hog", "dlib_resnet", "rescan")]
    assert not blind.valid and blind.control_rank1 == 0.06
    rows = apply_validity(ROWS, validity)
    shear_vtk = next(r for r in rows if r.defacer == "quickshear" and r.renderer == "vtk_volume")
    assert shear_vtk.status == "attacker_invalid" and shear_vtk.privacy_gain is None
    shear = next(r for r in rows if r.defacer == "quickshear" and r.key.endswith("dlib_resnet"))
    assert shear.privacy_gain == pytest.approx(1.0 - 0.06)
    # the invalid attacker's 0.5 would be quickshear's worst case; it must not count
    v = {x.defacer: x for x in verdict(rows, validity)}
    assert v["quickshear"].worst_rank1 == 0.31 and v["quickshear"].worst_scenario == "multiview (min)"
    assert v["quickshear"].n_attacks == 2 and v["quickshear"].worst_tar_far_1e2 == 0.25


def test_verdict_is_the_worst_case_sorted_best_first_ties_by_anatomy():
    validity = attacker_validity(ROWS, floor=0.5)
    order = [v.defacer for v in verdict(apply_validity(ROWS, validity), validity)]
    assert order == ["blur", "pydeface_ants", "quickshear", "none"]  # blur ties pydeface at 0: better Dice first
    worst = {v.defacer: v.worst_rank1 for v in verdict(apply_validity(ROWS, validity), validity)}
    for row in ROWS:  # a stronger attack is never weaker: worst case >= every valid single attack
        if validity[row.attacker].valid:
            assert worst[row.defacer] >= row.rank1


def test_a_failed_defacer_keeps_its_status_in_the_verdict():
    rows = ROWS + [_row("broken", "surface", 1.0, status="defacer_failed", fail=1.0)]
    validity = attacker_validity(rows, floor=0.5)
    v = {x.defacer: x for x in verdict(apply_validity(rows, validity), validity)}
    assert v["broken"].status == "defacer_failed" and v["broken"].worst_rank1 == 1.0
    assert v["broken"].defacing_failure_rate == 1.0


def test_leaderboard_writes_verdict_first_defacers_csv_and_heatmap(tmp_path):
    verdicts = write_leaderboard(tmp_path, ROWS, attacker_floor=0.5)
    md = (tmp_path / "leaderboard.md").read_text()
    assert md.index("# Verdict per defacer") < md.index("# Leaderboard")
    assert "surface-dlib_hog-dlib_resnet-multiview" in md and "vtk_volume-dlib_hog-dlib_resnet (control rank-1 0.060)" in md
    csv_lines = (tmp_path / "defacers.csv").read_text().splitlines()
    assert csv_lines[0].startswith("defacer,worst_rank1") and [line.split(",")[0] for line in csv_lines[1:]] == \
        [v.defacer for v in verdicts]
    assert (tmp_path / "heatmap.png").stat().st_size > 1000


@pytest.mark.chromium
@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium missing: apt-get install chromium")
def test_html_opened_in_headless_chromium_shows_the_verdict_and_the_heatmap(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    write_leaderboard(run, ROWS, attacker_floor=0.5)
    argv = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
            (run / "leaderboard.html").as_uri()]
    dom = subprocess.run(argv, capture_output=True, text=True, timeout=120).stdout
    table = dom[dom.index('<table id="verdict">'):dom.index("</table>", dom.index('<table id="verdict">'))]
    assert table.count("<tr>") == 1 + 4 and table.index("blur") < table.index("quickshear") < table.index(">none<")
    assert '<img id="heatmap"' in dom and dom.index('id="verdict"') < dom.index('id="leaderboard"')
