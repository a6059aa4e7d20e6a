"""Regression gate: save a baseline, compare a run figure by figure (asv marks), parse tolerances."""

from __future__ import annotations

import json

import pytest

from defacebench.metrics.binomial import exact_interval
from defacebench.metrics.identification import Identification
from defacebench.report import LeaderboardRow, compare_baseline, compare_figures, gate_failed, parse_tolerances, save_baseline
from defacebench.report.baseline import BaselineError, ToleranceError, load_baseline
from defacebench.report.compare import format_comparison

IDS = tuple(f"s{i:02d}" for i in range(20))


def _row(cid: str, rank1: float | None, ci=(0.6, 0.9), auc: float | None = 0.95, auc_ci=(0.9, 0.99),
         hits: int | None = None) -> LeaderboardRow:
    """A row; with ``hits`` its per-probe facts (first ``hits`` of 20 probes identified) and exact CI."""
    ident = {}
    if hits is not None:
        rank1, ci = hits / 20, exact_interval(hits, 20)
        ident = {"single": Identification(IDS, {p: (p if i < hits else IDS[i - 1]) for i, p in enumerate(IDS)})}
    return LeaderboardRow(cid, *cid.split("-"), n=20, rank1=rank1, rank1_ci=ci if rank1 is not None else None,
                          rank5=None, roc_auc=auc, roc_auc_ci=auc_ci if auc is not None else None, eer=0.1,
                          detection_rate=1.0, identification=ident)


PROVENANCE = {"dataset": {"fingerprint": "abc", "subjects": 20}, "split": {"seed": 0},
              "plugins": {"defacers": {"fsl": "1"}}}


def _saved(tmp_path, rows, name="baseline.json"):
    path = tmp_path / name
    save_baseline(path, rows, **PROVENANCE)
    return path


def test_unchanged_figures_are_within_noise_and_the_baseline_stores_per_probe_hits(tmp_path):
    rows = [_row("none-s-d-r", None, hits=19), _row("fsl-s-d-r", None, hits=6)]
    base = _saved(tmp_path, rows)
    entry = json.loads(base.read_text())["configs"]["fsl-s-d-r"]
    assert entry["probes"] == list(IDS) and entry["identified"] == list(IDS[:6])
    figures = compare_figures(rows, base)
    assert [f.mark for f in figures] == ["~"] * 4 and not gate_failed(figures)
    assert "no regression against the baseline (4 figures: 4 ~" in format_comparison(figures)


def test_a_paired_test_decides_noise_when_both_sides_stored_per_probe_hits(tmp_path):
    base = _saved(tmp_path, [_row("fsl-s-d-r", None, hits=6)])
    # 6 -> 9 of 20: +0.15 is beyond the 0.05 tolerance but 3 discordant probes (McNemar p 0.25): noise
    noisy = compare_figures([_row("fsl-s-d-r", None, hits=9)], base)
    rank1 = next(f for f in noisy if f.metric == "rank1")
    assert rank1.mark == "~" and "McNemar p 0.25" in rank1.test and not gate_failed(noisy)
    # 6 -> 14 of 20: 8 discordant probes all one way, p = 2 / 2**8: a defacer that protects less is worse
    worse = next(f for f in compare_figures([_row("fsl-s-d-r", None, hits=14)], base) if f.metric == "rank1")
    assert worse.mark == "+" and worse.fails and worse.p == pytest.approx(2 / 2 ** 8)


def test_the_gate_fails_on_a_defacer_rank1_that_rises_as_well_as_one_that_falls(tmp_path):
    """Issue 25: only drops were gated, so a defacer whose rank-1 rose (it protects less) passed."""
    base = _saved(tmp_path, [_row("none-s-d-r", 0.8), _row("fsl-s-d-r", 0.7), _row("afni-s-d-r", 0.5, ci=(0.3, 0.7))])
    new = [_row("none-s-d-r", 0.95, ci=(0.8, 1.0)),   # control better: '-', still a significant move
           _row("fsl-s-d-r", 1.0, ci=(0.85, 1.0)),    # defacer worse (more identified): '+'
           _row("afni-s-d-r", 0.2, ci=(0.05, 0.4))]   # defacer better: '-'
    marks = {(f.config_id, f.metric): f.mark for f in compare_figures(new, base)}
    assert marks[("fsl-s-d-r", "rank1")] == "+" and marks[("afni-s-d-r", "rank1")] == "-"
    assert marks[("none-s-d-r", "rank1")] == "-" and marks[("none-s-d-r", "roc_auc")] == "~"
    failing = {(r.config_id, r.metric) for r in compare_baseline(new, base)}
    assert failing == {("fsl-s-d-r", "rank1"), ("afni-s-d-r", "rank1"), ("none-s-d-r", "rank1")}
    lowered = [_row("none-s-d-r", 0.45, ci=(0.25, 0.65))]  # the control's attacker got weaker: '+'
    assert compare_figures(lowered, base)[0].mark == "+"


def test_a_failed_or_missing_figure_is_incomparable_and_a_failure_now_fails(tmp_path):
    base = _saved(tmp_path, [_row("fsl-s-d-r", 0.7), _row("afni-s-d-r", None, auc=None)])
    figures = compare_figures([_row("fsl-s-d-r", None, auc=None), _row("afni-s-d-r", 0.5),
                               _row("quickshear-s-d-r", 0.0)], base)  # not in the baseline: not compared
    by = {(f.config_id, f.metric): f for f in figures}
    assert {f.config_id for f in figures} == {"fsl-s-d-r", "afni-s-d-r"}
    assert by[("fsl-s-d-r", "rank1")].mark == "x" and by[("fsl-s-d-r", "rank1")].fails
    assert by[("afni-s-d-r", "rank1")].mark == "x" and not by[("afni-s-d-r", "rank1")].fails
    assert "fsl-s-d-r: rank1 0.7000 -> missing" in format_comparison(figures)
    only_x = compare_figures([_row("afni-s-d-r", 0.5)], base)
    assert all(f.mark == "x" for f in only_x) and gate_failed(only_x)  # nothing comparable: never "passed"


def test_naming_one_tolerance_keeps_the_other_metrics_gated(tmp_path):
    """Issue 25: `--compare-fail rank1:0.05` silently stopped gating ROC AUC (0.90 -> 0.50 passed)."""
    assert parse_tolerances("rank1:0.05") == {"rank1": 0.05, "roc_auc": 0.05}
    assert parse_tolerances("rank1:0.1,roc_auc:off") == {"rank1": 0.1, "roc_auc": None}
    base = _saved(tmp_path, [_row("fsl-s-d-r", 0.7, auc=0.90, auc_ci=(0.85, 0.95))])
    dropped = [_row("fsl-s-d-r", 0.7, auc=0.50, auc_ci=(0.4, 0.6))]
    failing = compare_baseline(dropped, base, tolerances=parse_tolerances("rank1:0.05"))
    assert [(r.config_id, r.metric) for r in failing] == [("fsl-s-d-r", "roc_auc")]
    assert compare_baseline(dropped, base, tolerances=parse_tolerances("roc_auc:off")) == []  # said so explicitly


@pytest.mark.parametrize("text", ["rank1:nan", "rank1:inf", "roc_auc:-inf", "rank1:0.05,rank1:0.1", "", "rank1",
                                  "rank1:x", "eer:0.1", "rank1:-1"])
def test_a_nan_inf_duplicate_or_malformed_tolerance_is_refused(text):
    """Issue 25: `rank1:nan` or `inf` disabled the gate; a duplicate key silently took the last value."""
    with pytest.raises(ToleranceError):
        parse_tolerances(text)


def _as_format_2(path):
    data = json.loads(path.read_text())
    data["version"] = 2
    for entry in data["configs"].values():
        entry.pop("probes"), entry.pop("identified")
    path.write_text(json.dumps(data))
    return data


def test_a_format_2_baseline_is_compared_by_its_intervals(tmp_path):
    """The committed baseline predates per-probe hits: its figures are judged by the intervals."""
    base = _saved(tmp_path, [_row("fsl-s-d-r", 0.7, ci=(0.6, 0.9))])
    _as_format_2(base)
    inside = compare_figures([_row("fsl-s-d-r", None, hits=15)], base)  # 0.75 [0.51, 0.91]: each holds the other
    assert inside[0].mark == "~" and "new value inside the baseline's 95% interval" in inside[0].test
    outside = compare_figures([_row("fsl-s-d-r", None, hits=20)], base)  # 1.0: +0.3, outside
    assert outside[0].mark == "+" and outside[0].fails


def test_a_baseline_rank1_lowered_by_0_3_fails_naming_the_configuration(tmp_path):
    """Issue 19: a deliberately edited baseline (one rank-1 lowered by 0.3, nothing else touched) must
    fail the gate; the new value may still lie inside the untouched old interval, but the old value
    lies outside the new run's exact interval."""
    rows = [_row("none-s-d-r", None, hits=20), _row("fsl-s-d-r", None, hits=9)]
    for name, fmt2 in (("v3.json", False), ("v2.json", True)):
        base = _saved(tmp_path, rows, name)
        data = _as_format_2(base) if fmt2 else json.loads(base.read_text())
        data["configs"]["fsl-s-d-r"]["rank1"] = round(9 / 20 - 0.3, 4)  # the stored hits still say 9 of 20
        base.write_text(json.dumps(data))
        figures = compare_figures(rows, base)
        failing = [f for f in figures if f.fails]
        assert [(f.config_id, f.metric, f.mark) for f in failing] == [("fsl-s-d-r", "rank1", "+")], name
        assert "baseline value outside the new 95% interval" in failing[0].test
        assert "fsl-s-d-r: rank1 0.1500 -> 0.4500" in format_comparison(figures) and gate_failed(figures)


def test_compare_rule_delta_keeps_the_plain_rule(tmp_path):
    base = _saved(tmp_path, [_row("fsl-s-d-r", 0.7, ci=(0.6, 0.9))])
    near = [_row("fsl-s-d-r", 0.56)]  # below the interval, but within its lower bound minus 0.05
    assert compare_figures(near, base, rule="delta")[0].mark == "~"
    assert compare_figures(near, base, rule="noise")[0].mark == "-"  # outside the interval and 0.14 > 0.05
    assert compare_figures([_row("fsl-s-d-r", 0.549)], base, rule="delta")[0].mark == "-"


def test_a_baseline_whose_metric_keys_are_renamed_or_missing_is_refused(tmp_path):
    """Issue 25: a baseline with `rank_1` instead of `rank1` gated nothing and said "no regression"."""
    base = _saved(tmp_path, [_row("fsl-s-d-r", 0.7)])
    data = json.loads(base.read_text())
    entry = data["configs"]["fsl-s-d-r"]
    entry["rank_1"], entry["rank_1_ci"] = entry.pop("rank1"), entry.pop("rank1_ci")
    base.write_text(json.dumps(data))
    with pytest.raises(BaselineError, match=r"configs.fsl-s-d-r has no 'rank1' \(it has .*rank_1"):
        load_baseline(base)
    data["configs"]["fsl-s-d-r"] = {"status": "ok", "n": 20}
    base.write_text(json.dumps(data))
    with pytest.raises(BaselineError, match="has no 'rank1'"):
        compare_baseline([_row("fsl-s-d-r", 0.1)], base)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["configs"]["fsl-s-d-r"].update(rank1="high"), "configs.fsl-s-d-r.rank1 = 'high'"),
    (lambda d: d["configs"]["fsl-s-d-r"].update(rank1_ci=[0.1, float("nan")]), "rank1_ci"),
    (lambda d: d["configs"]["fsl-s-d-r"].update(identified=["nobody"]), "'identified' must be a list"),
    (lambda d: d.update(configs={}), "holds no configuration"),
    (lambda d: d.pop("dataset"), "records no dataset fingerprint"),
    (lambda d: d.update(version=1), "records no dataset fingerprint"),
])
def test_a_baseline_the_gate_cannot_judge_with_is_an_error_naming_the_file(tmp_path, mutate, message):
    base = _saved(tmp_path, [_row("fsl-s-d-r", None, hits=7)])
    data = json.loads(base.read_text())
    mutate(data)
    base.write_text(json.dumps(data))
    with pytest.raises(BaselineError, match="baseline.json") as info:
        load_baseline(base)
    assert message in str(info.value) and "--save-baseline" in str(info.value)
