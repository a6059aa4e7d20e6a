"""One option table feeds `defacebench run` and `pytest bench/`: same names, same validation."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from defacebench.cli import build_parser
from defacebench.run.config import RunConfig
from defacebench.run.options import OPTIONS, run_config

ROOT = Path(__file__).resolve().parents[1]
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]+)")


def _flags(help_text: str) -> set[str]:
    return set(FLAG.findall(help_text))


def _run_help() -> str:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices["run"].format_help()


def _pytest_group_help() -> str:
    out = subprocess.run([sys.executable, "-m", "pytest", "--help", "-p", "no:cacheprovider"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("defacebench benchmark"))
    group = []
    for line in lines[start + 1:]:
        if line and not line[0].isspace():
            break  # the next option group's title
        group.append(line)
    return "\n".join(group)


def test_both_surfaces_list_exactly_the_table_options():
    table = {o.flag for o in OPTIONS}
    run_flags = _flags(_run_help()) - {"--help"}
    pytest_flags = _flags(_pytest_group_help()) - {"--run-slow", "--run-perf"}
    assert run_flags == table
    assert pytest_flags == table


def test_run_config_is_built_from_the_table_with_the_same_names(tmp_path):
    args = build_parser().parse_args(["run", "--split-seed", "3", "--bench-workers", "2", "--scenarios",
                                      "rescan,multiview", "--no-images", "--cache-dir", str(tmp_path),
                                      "--defacers", "none,quickshear", "--policy", "far=0.01"])
    cfg = run_config(vars(args))
    assert (cfg.seed, cfg.workers, cfg.scenarios, cfg.images, cfg.cache_dir) == \
        (3, 2, ("rescan", "multiview"), False, tmp_path)
    assert cfg.restrict == {"defacers": ("none", "quickshear")} and cfg.policy == "far=0.01"
    assert run_config({}) == RunConfig()  # unset options keep the RunConfig defaults


@pytest.mark.parametrize(("argv", "message"), [
    (["--policy", "best"], "threshold policy 'best' is unknown"),
    (["--compare-fail", "rank1:x"], "tolerance 'rank1:x' is malformed"),
    (["--scenarios", "photos"], "scenario 'photos' is unknown"),
    (["--calibration", "1.5"], "not a fraction"),
    (["--run-id", "../../x"], "not a plain folder name"),
    (["--defacers", "fsl-deface"], "no '-'"),
    (["--view-grid", "30,15"], "YAWMAX:YAWSTEP"),
])
def test_invalid_values_fail_before_any_work_naming_the_option(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["run", *argv])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {argv[0]}" in err and message in err


def test_a_compare_file_that_does_not_parse_fails_at_once_on_both_surfaces(tmp_path):
    bad = tmp_path / "baseline.json"
    bad.write_text("{not json")
    cli = subprocess.run([sys.executable, "-m", "defacebench", "run", "--compare", str(bad)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 2 and "argument --compare" in cli.stderr and "baseline.json: not JSON" in cli.stderr
    py = subprocess.run([sys.executable, "-m", "pytest", "bench", "--compare", str(bad), "-q", "-p", "no:cacheprovider"],
                        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert py.returncode == 4 and "--compare" in py.stderr and "not JSON" in py.stderr
    assert "Traceback" not in py.stderr + py.stdout
