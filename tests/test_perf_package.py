"""The measuring package behind scripts/benchmarks.py and tests/perf/: its command lines are ones
``defacebench run`` accepts, its table names the machine, and bad requests fail before any work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from defacebench.cli import build_parser
from defacebench.perf import MEASUREMENTS, BenchmarkError, BenchParams, Figure, measure
from defacebench.perf.measure import markdown, timed
from defacebench.perf.runs import _summary_line, run_argv

ROOT = Path(__file__).resolve().parents[1]


def test_measured_run_command_is_accepted_by_defacebench_run(tmp_path):
    argv = run_argv(tmp_path / "data", tmp_path / "results", "cold", {"defacers": "none,quickshear", "renderers": None},
                    200, tmp_path / "cache")
    assert argv[:4] == [sys.executable, "-m", "defacebench", "run"]
    args = build_parser().parse_args(argv[3:])
    assert (args.cache_dir, args.dataset, args.run_id, args.n_bootstrap) == \
        (tmp_path / "cache", tmp_path / "data", "cold", 200)
    assert args.defacers == ("none", "quickshear") and args.renderers is None


def test_summary_line_is_the_runs_closing_counts():
    out = "none-surface-dlib_hog-dlib_resnet: n=4 rank1=1.000\n2 passed, 0 failed, 0 defacer_failed, 9 skipped\n| x |"
    assert _summary_line(out) == "2 passed, 0 failed, 0 defacer_failed, 9 skipped"
    assert _summary_line("nothing here") == ""


def test_unknown_measurement_fails_before_anything_runs(tmp_path):
    with pytest.raises(BenchmarkError, match=r"unknown measurement\(s\) \['nope'\]; choose from convert"):
        measure(["convert", "nope"], BenchParams(), tmp_path)
    assert not any(tmp_path.iterdir()) and set(MEASUREMENTS) == {"convert", "sample_run", "memory", "matrix"}


def test_table_names_the_machine_and_every_figure():
    value, timing = timed(sum, [1, 2, 3])
    assert value == 6 and timing.wall >= 0 and timing.cpu >= 0
    info = {"cores": 2, "ram_gib": 23.5, "cpu": "AMD EPYC", "python": "3.11.7", "os": "Linux"}
    table = markdown([Figure("d", "DICOM->NIfTI (s)", "0.46 / 0.45", "load 2.8")], info)
    assert table.startswith("Machine: 2 cores, 23.5 GiB RAM, AMD EPYC; Python 3.11.7, Linux\n")
    assert "| d " in table and "0.46 / 0.45" in table and "load 2.8" in table


def test_script_is_a_wrapper_that_reports_bad_requests():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "benchmarks.py"), "--only", "convert,nope"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "unknown measurement(s) ['nope']" in out.stderr
    assert len((ROOT / "scripts" / "benchmarks.py").read_text().splitlines()) < 60
