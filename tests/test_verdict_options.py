"""The verdict's and the gate's run options: validated before any work, recorded in the RunConfig."""

from __future__ import annotations

import pytest

from defacebench.cli import build_parser
from defacebench.report.verdict import VerdictParams
from defacebench.run.config import ConfigError, RunConfig
from defacebench.run.options import run_config


@pytest.mark.parametrize(("argv", "message"), [
    (["--compare-fail", "rank1:nan"], "tolerance 'rank1:nan' is malformed"),
    (["--compare-fail", "rank1:inf"], "tolerance 'rank1:inf' is malformed"),
    (["--compare-fail", "rank1:0.05,rank1:0.5"], "rank1 is given twice"),
    (["--alpha", "0"], "not a significance level"),
    (["--alpha", "1.5"], "not a significance level"),
    (["--permutations", "0"], "must be >= 1"),
    (["--cross-fit-repeats", "-2"], "must be >= 1"),
    (["--permutation-seed", "-1"], "must be >= 0"),
    (["--anatomy-fail-share", "2"], "not a fraction"),
    (["--compare-rule", "loose"], "invalid choice"),
])
def test_invalid_verdict_and_gate_values_fail_before_any_work_naming_the_option(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["run", *argv])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {argv[0]}" in err and message in err


def test_verdict_settings_are_run_config_fields_and_reach_the_verdict():
    args = build_parser().parse_args(["run", "--alpha", "0.01", "--permutations", "500", "--permutation-seed", "4",
                                      "--cross-fit-repeats", "20", "--compare-fail", "rank1:0.1",
                                      "--compare-rule", "delta", "--defacer-fail-share", "0.3"])
    cfg = run_config(vars(args))
    assert (cfg.alpha, cfg.permutations, cfg.permutation_seed, cfg.cross_fit_repeats, cfg.compare_rule) == \
        (0.01, 500, 4, 20, "delta")
    assert dict(cfg.compare_fail) == {"rank1": 0.1, "roc_auc": 0.05}  # naming one keeps the other gated
    params = VerdictParams.from_settings(cfg.to_dict())
    assert (params.alpha, params.permutations, params.permutation_seed, params.cross_fit_repeats) == (0.01, 500, 4, 20)
    assert params.anatomy_fail_share == 0.3  # defaults to the defacer fail share
    assert VerdictParams.from_settings({**cfg.to_dict(), "anatomy_fail_share": 0.5}).anatomy_fail_share == 0.5
    assert VerdictParams.from_settings({}) == VerdictParams()  # a run folder without a manifest
    with pytest.raises(ConfigError, match="alpha"):
        RunConfig(alpha=0.0)
