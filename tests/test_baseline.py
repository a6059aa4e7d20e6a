"""Regression gate: save a baseline, compare a run, parse tolerances."""

from __future__ import annotations

import json

import pytest

from defacebench.report import LeaderboardRow, compare_baseline, parse_tolerances, save_baseline
from defacebench.report.baseline import BaselineError, ToleranceError, format_regressions, load_baseline


def _row(cid: str, rank1: float | None, ci=(0.6, 0.9), auc: float | None = 0.95, auc_ci=(0.9, 0.99)) -> LeaderboardRow:
    return LeaderboardRow(cid, *cid.split("-"), n=20, rank1=rank1, rank1_ci=ci if rank1 is not None else None,
                          rank5=None, roc_auc=auc, roc_auc_ci=auc_ci if auc is not None else None, eer=0.1,
                          detection_rate=1.0)


PROVENANCE = {"dataset": {"fingerprint": "abc", "subjects": 20}, "split": {"seed": 0},
              "plugins": {"defacers": {"fsl": "1"}}}


def test_regression_is_below_ci_lower_bound_minus_tolerance(tmp_path):
    base = tmp_path / "baseline.json"
    save_baseline(base, [_row("none-s-d-r", 0.8), _row("fsl-s-d-r", 0.7), _row("afni-s-d-r", 0.5)], **PROVENANCE)
    assert json.loads(base.read_text())["configs"]["fsl-s-d-r"]["rank1_ci"] == [0.6, 0.9]
    new = [
        _row("none-s-d-r", 0.551),            # inside CI lower bound - 0.05: fine
        _row("fsl-s-d-r", 0.549, auc=0.80),   # both metrics regress
        _row("afni-s-d-r", None, auc=None),   # failed configuration: regresses
        _row("quickshear-s-d-r", 0.0),        # not in the baseline: not compared
    ]
    regs = compare_baseline(new, base, tolerances={"rank1": 0.05, "roc_auc": 0.05})
    got = {(r.config_id, r.metric) for r in regs}
    assert got == {("fsl-s-d-r", "rank1"), ("fsl-s-d-r", "roc_auc"), ("afni-s-d-r", "rank1"), ("afni-s-d-r", "roc_auc")}
    fsl = next(r for r in regs if r.config_id == "fsl-s-d-r" and r.metric == "rank1")
    assert (fsl.old, fsl.new, fsl.ci) == (0.7, 0.549, (0.6, 0.9))
    afni = next(r for r in regs if r.config_id == "afni-s-d-r" and r.metric == "rank1")
    assert afni.new != afni.new and f"{afni.new:.3f}" == "nan"  # NaN: still formats as a number
    text = format_regressions(regs)
    assert "fsl-s-d-r: rank1 0.7000 -> 0.5490" in text and "afni-s-d-r: rank1 0.5000 -> missing" in text
    assert compare_baseline(new[:1], base) == []
    assert compare_baseline([_row("fsl-s-d-r", 0.56)], base, tolerances={"rank1": 0.0})[0].metric == "rank1"


def test_parse_tolerances_and_bad_files(tmp_path):
    assert parse_tolerances("rank1:0.05,roc_auc:0.1") == {"rank1": 0.05, "roc_auc": 0.1}
    assert parse_tolerances(" rank1:0 ") == {"rank1": 0.0}
    for bad in ("", "rank1", "rank1:x", "eer:0.1", "rank1:-1"):
        with pytest.raises(ToleranceError):
            parse_tolerances(bad)
    broken = tmp_path / "b.json"
    broken.write_text("{not json")
    with pytest.raises(BaselineError, match="b.json"):
        compare_baseline([], broken)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["configs"]["fsl-s-d-r"].update(rank1="high"), "configs.fsl-s-d-r.rank1 = 'high'"),
    (lambda d: d["configs"]["fsl-s-d-r"].update(rank1_ci=[0.1, float("nan")]), "rank1_ci"),
    (lambda d: d.update(configs={}), "holds no configuration"),
    (lambda d: d.pop("dataset"), "records no dataset fingerprint"),
    (lambda d: d.update(version=1), "records no dataset fingerprint"),
])
def test_a_baseline_the_gate_cannot_judge_with_is_an_error_naming_the_file(tmp_path, mutate, message):
    base = tmp_path / "baseline.json"
    save_baseline(base, [_row("fsl-s-d-r", 0.7)], **PROVENANCE)
    data = json.loads(base.read_text())
    mutate(data)
    base.write_text(json.dumps(data))
    with pytest.raises(BaselineError, match="baseline.json") as info:
        load_baseline(base)
    assert message in str(info.value) and "--save-baseline" in str(info.value)
