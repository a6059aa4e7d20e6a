"""Attacker validity and the verdict per defacer: exposure over the valid attackers, ranks, ties, and
defacers that are not usable (failed, or destroying the anatomy)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from defacebench.metrics.binomial import exact_interval
from defacebench.metrics.identification import Identification
from defacebench.report import LeaderboardRow, write_leaderboard
from defacebench.report.verdict import VerdictParams, apply_validity, attacker_validity, verdict

CHROMIUM = Path("/usr/bin/chromium")
IDS = [f"s{i:02d}" for i in range(16)]


def _ident(hits: int) -> Identification:
    """16 probes, the first ``hits`` identified, the others nearest to the next subject."""
    return Identification(tuple(IDS), {p: (p if i < hits else IDS[(i + 1) % 16]) for i, p in enumerate(IDS)})


def _row(defacer, renderer, hits, *, scenario="rescan", tar=None, dice=None, status="ok", fusion="single",
         qc=None, fail=0.0):
    cid = f"{defacer}-{renderer}-dlib_hog-dlib_resnet"
    rank1 = hits / 16
    return LeaderboardRow(cid, defacer, renderer, "dlib_hog", "dlib_resnet", n=16, rank1=rank1,
                          rank1_ci=exact_interval(hits, 16), rank5=rank1, roc_auc=0.9,
                          roc_auc_ci=(0.8, 1.0), eer=0.1, detection_rate=0.5, scenario=scenario, tar_far_1e2=tar,
                          brain_dice=dice, status=status, fusion=fusion, qc=qc or {"ok": 16},
                          defacing_failure_rate=fail, rank1_chance=1 / 16, identification={fusion: _ident(hits)})


ROWS = [
    _row("none", "surface", 16, tar=0.9), _row("none", "surface", 15, scenario="multiview", fusion="min"),
    _row("none", "vtk_volume", 1),  # a blind attacker: cannot identify even undefaced faces
    _row("quickshear", "surface", 1, dice=1.0), _row("quickshear", "surface", 5, scenario="multiview",
                                                     tar=0.25, dice=1.0, fusion="min"),
    _row("quickshear", "vtk_volume", 8, dice=1.0),
    _row("pydeface_ants", "surface", 0, dice=0.99), _row("pydeface_ants", "surface", 0, scenario="multiview",
                                                         dice=0.99),
    _row("blur", "surface", 0, dice=0.995), _row("blur", "surface", 0, scenario="multiview", dice=0.995),
]


def test_a_blind_attacker_is_invalid_and_enters_no_verdict():
    validity = attacker_validity(ROWS, floor=0.5)
    blind = validity[("vtk_volume", "dlib_hog", "dlib_resnet", "rescan")]
    assert not blind.valid and blind.control_rank1 == 1 / 16
    rows = apply_validity(ROWS, validity)
    shear_vtk = next(r for r in rows if r.defacer == "quickshear" and r.renderer == "vtk_volume")
    assert shear_vtk.status == "attacker_invalid" and shear_vtk.privacy_gain is None
    shear = next(r for r in rows if r.defacer == "quickshear" and r.key.endswith("dlib_resnet"))
    assert shear.privacy_gain == pytest.approx(1.0 - 1 / 16)
    # the invalid attacker's 0.5 would be quickshear's selected maximum; it must not count
    v = {x.defacer: x for x in verdict(rows, validity)}
    assert v["quickshear"].worst_rank1_selected == 5 / 16 and v["quickshear"].worst_scenario == "multiview (min)"
    assert v["quickshear"].n_attacks == 2 and v["quickshear"].worst_tar_far_1e2 == 0.25


def test_verdict_is_sorted_best_first_ties_by_anatomy_and_the_control_is_the_reference():
    validity = attacker_validity(ROWS, floor=0.5)
    verdicts = verdict(apply_validity(ROWS, validity), validity)
    assert [v.defacer for v in verdicts] == ["blur", "pydeface_ants", "quickshear", "none"]  # blur ties: better Dice
    selected = {v.defacer: v.worst_rank1_selected for v in verdicts}
    for row in ROWS:  # the selected maximum is >= every valid single attack
        if validity[row.attacker].valid:
            assert selected[row.defacer] >= row.rank1
    v = {x.defacer: x for x in verdicts}
    assert v["none"].rank is None and v["none"].exposure == "exposed" and v["none"].p_exposed < 0.001
    assert v["blur"].exposure == "not_shown_exposed" and v["blur"].p_exposed == 1.0
    assert v["blur"].chance_rank1 == 1 / 16 and v["blur"].worst_rank1_ci == pytest.approx((0.0, 0.2059), abs=1e-4)
    # 0 of 16 against 5 of 16 on the same probes: exact McNemar p = 2 / 2**5 = 0.0625, not significant: a tie
    assert v["blur"].rank == v["pydeface_ants"].rank == v["quickshear"].rank == 1
    assert v["blur"].tied_with == ("pydeface_ants", "quickshear")


def test_defacers_a_paired_test_separates_get_different_ranks():
    rows = [_row("none", "surface", 16), _row("good", "surface", 0), _row("leaky", "surface", 9),
            _row("same", "surface", 1)]
    validity = attacker_validity(rows, floor=0.5)
    v = {x.defacer: x for x in verdict(apply_validity(rows, validity), validity)}
    # good vs leaky: 9 discordant probes all one way, p = 2 / 2**9 < 0.05; same is within noise of good
    assert (v["good"].rank, v["same"].rank, v["leaky"].rank) == (1, 1, 3)
    assert v["good"].tied_with == ("same",) and "good" not in v["leaky"].tied_with


def test_a_failed_defacer_keeps_its_status_in_the_verdict():
    rows = ROWS + [_row("broken", "surface", 16, status="defacer_failed", fail=1.0)]
    validity = attacker_validity(rows, floor=0.5)
    verdicts = verdict(apply_validity(rows, validity), validity)
    v = {x.defacer: x for x in verdicts}
    assert v["broken"].status == "defacer_failed" and v["broken"].worst_rank1_selected == 1.0
    assert v["broken"].defacing_failure_rate == 1.0 and v["broken"].rank is None
    assert verdicts[-1].defacer == "broken"


def test_a_defacer_that_destroys_the_anatomy_is_not_ranked_as_usable(tmp_path):
    """A defacer that erases the head (QC head_removed on every subject) protects perfectly and would
    top the verdict; it must say so and be listed below the usable defacers with the reason."""
    rows = ROWS + [_row("eraser", "surface", 0, dice=0.0, qc={"head_removed": 16}),
                   _row("eraser", "surface", 0, scenario="multiview", fusion="min", dice=0.0, qc={"head_removed": 16}),
                   _row("harsh", "surface", 0, dice=0.5, qc={"ok": 13, "brain_damaged": 3}),
                   _row("harsh", "surface", 0, scenario="multiview", fusion="min", dice=0.5,
                        qc={"ok": 13, "brain_damaged": 3})]
    verdicts = write_leaderboard(tmp_path, rows, attacker_floor=0.5)
    v = {x.defacer: x for x in verdicts}
    assert v["eraser"].status == "anatomy_destroyed" and v["eraser"].rank is None
    assert "head_removed on 16 of 16 subjects" in v["eraser"].reason and "20%" in v["eraser"].reason
    assert v["harsh"].status == "ok" and v["harsh"].rank == 1  # 3 of 16 = 19 %: within the allowed share
    order = [x.defacer for x in verdicts]
    assert order.index("eraser") > order.index("none") > order.index("harsh")
    strict = verdict(apply_validity(rows, attacker_validity(rows, 0.5)), attacker_validity(rows, 0.5),
                     VerdictParams(anatomy_fail_share=0.1))
    assert {x.defacer: x.status for x in strict}["harsh"] == "anatomy_destroyed"
    md = (tmp_path / "leaderboard.md").read_text()
    assert "anatomy_destroyed: head_removed on 16 of 16 subjects" in md
    csv_rows = (tmp_path / "defacers.csv").read_text().splitlines()
    assert csv_rows[-1].startswith("eraser,,") and "anatomy_destroyed" in csv_rows[-1]


def test_leaderboard_writes_verdict_first_defacers_csv_and_heatmap(tmp_path):
    verdicts = write_leaderboard(tmp_path, ROWS, attacker_floor=0.5)
    md = (tmp_path / "leaderboard.md").read_text()
    assert md.index("# Verdict per defacer") < md.index("# Leaderboard")
    assert "surface-dlib_hog-dlib_resnet-multiview" in md and "vtk_volume-dlib_hog-dlib_resnet (control rank-1 0.062)" in md
    csv_lines = (tmp_path / "defacers.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in csv_lines[1:]] == [v.defacer for v in verdicts]
    header = csv_lines[0].split(",")
    for column in ("chance_rank1", "worst_rank1", "worst_rank1_lo", "worst_rank1_hi", "worst_rank1_selected",
                   "p_exposed", "exposure", "detectable_rank1", "rank", "tied_with", "worst_attacker", "worst_scenario"):
        assert column in header, column
    head = md.splitlines()[2]
    for column in ("rank", "exposure (p max-T)", "(cross-fitted)", "selected max rank-1", "chance rank-1",
                   "detectable rank-1"):
        assert column in head, column
    assert "1 (tied with pydeface_ants, quickshear)" in md
    assert (tmp_path / "heatmap.png").stat().st_size > 1000 and (tmp_path / "attacks.png").stat().st_size > 1000


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
    assert table.count("<tr>") == 1 + 4 and table.index(">blur<") < table.index(">quickshear<") < table.index(">none<")
    assert "exposure (p max-T)" in table and "not_shown_exposed" in table
    assert '<img id="heatmap"' in dom and '<img id="attacks"' in dom
    assert dom.index('id="verdict"') < dom.index('id="leaderboard"')
