"""One option table feeds `defacebench run` and `pytest bench/`: same names, same validation."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from defacebench.cli import build_parser
from defacebench.run.config import ConfigError, RunConfig
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
    run_flags = _flags(_run_help()) - {"--help", "--verbose"}  # -v: the console, not a run option
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
    (["--qc-filter", "bogus"], "invalid choice: 'bogus'"),
    (["--qc-filter", "OK"], "invalid choice: 'OK'"),
    (["--view-grid", "nan:15,0:0,1"], "finite"),
    (["--view-grid", "30:inf,15:15,1"], "finite"),
    (["--split-seed", "-1"], "-1 must be an integer in [0, 2**32)"),
    (["--split-seed", "1e3"], "integer"),
    (["--calibration", "0"], "not a fraction in (0, 1]"),
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


def test_save_baseline_pointing_at_a_folder_fails_before_the_run(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["run", "--save-baseline", str(tmp_path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "argument --save-baseline" in err and f"{tmp_path} is a folder" in err
    missing = tmp_path / "no" / "such" / "folder" / "b.json"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--save-baseline", str(missing)])
    assert "argument --save-baseline" in capsys.readouterr().err
    args = build_parser().parse_args(["run", "--save-baseline", str(tmp_path / "baseline.json")])
    assert run_config(vars(args)).save_baseline == tmp_path / "baseline.json"


@pytest.mark.parametrize(("values", "names"), [
    ({"protocol": "seed", "policy": "youden"}, ("--protocol seed", "--policy youden")),
    ({"view_grid": (90.0, 1.0, 90.0, 1.0, 1)}, ("--view-grid", "32,761 views", "CPU", "--max-views")),
    ({"sample_subjects": 8, "dataset": Path("/data/ct")}, ("--sample-subjects", "--dataset")),
    ({"sample_subjects": 3}, ("--sample-subjects", ">= 4", "got 3")),
])
def test_options_that_cannot_go_together_fail_before_any_work(values, names):
    """Checks across options live in RunConfig, which both surfaces build before planning."""
    with pytest.raises(ConfigError) as error:
        run_config(values)
    assert all(name in str(error.value) for name in names), str(error.value)
    assert len(str(error.value)) < 400


def test_a_conflict_across_options_is_a_usage_error_on_both_surfaces(tmp_path):
    args = ["--protocol", "seed", "--policy", "youden", "--results", str(tmp_path)]
    cli = subprocess.run([sys.executable, "-m", "defacebench", "run", *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert cli.returncode == 1 and "--policy youden" in cli.stderr and "Traceback" not in cli.stderr
    py = subprocess.run([sys.executable, "-m", "pytest", "bench", *args, "-q", "-p", "no:cacheprovider"], cwd=ROOT,
                        capture_output=True, text=True, timeout=120)
    assert py.returncode == 4 and "--policy youden" in py.stderr and "Traceback" not in py.stderr + py.stdout
    assert not any(tmp_path.iterdir()), "no run folder is made for a refused run"


def test_the_qc_labels_the_option_accepts_are_the_qc_labels():
    from defacebench.anatomy.qc import LABELS
    from defacebench.run.config import QC_LABELS

    assert QC_LABELS == LABELS


def test_sample_subjects_sizes_the_embedded_sample_the_run_uses(tmp_path, monkeypatch):
    """``--sample-subjects 8`` (the README's test command) builds and runs the 8-subject sample; the
    resolved config names that dataset, so the manifest and the gate's fingerprint say which it was."""
    import defacebench.data.sample as sample
    from defacebench.run.session import Session

    built = []

    def fake_build(out=None, params=None, **kwargs):
        built.append(params)
        raise RuntimeError("stop after the sample's params are known")

    monkeypatch.setattr(sample, "make_sample_dataset", fake_build)
    args = build_parser().parse_args(["run", "--sample-subjects", "8", "--results", str(tmp_path)])
    session = Session(run_config(vars(args)))
    with pytest.raises(RuntimeError):
        session.run
    assert [p.n_subjects for p in built] == [8] and built[0].seed == 0 and built[0].modality == "ct"
    built.clear()
    with pytest.raises(RuntimeError):
        Session(run_config({"results": tmp_path})).run
    assert [p.n_subjects for p in built] == [16]
