"""Adversarial cases of the session (issue: nothing false, nothing lost): each reproduces a case that
was false, lost or destroyed, and checks the behaviour after the fix."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from defacebench.run.config import RunConfig
from defacebench.run.records import FailureRow, SubjectRoles
from defacebench.run.rundir import RunDirError, check_run_id, make_run_dir, new_run_id
from defacebench.run.scenarios import get_scenario

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ 9: unique, confined run ids

def test_runs_started_together_get_distinct_folders_and_reuse_is_an_error(tmp_path):
    ids = {new_run_id() for _ in range(200)}
    assert len(ids) == 200  # same second, still unique
    first = make_run_dir(tmp_path, "same")
    assert first.is_absolute() and first.parent == tmp_path.resolve()
    with pytest.raises(RunDirError, match="already exists: choose another --run-id"):
        make_run_dir(tmp_path, "same")
    for bad in ("../../x", "a/b", "..", ".hidden", ""):
        with pytest.raises(RunDirError):
            check_run_id(bad)


def test_a_relative_results_folder_gives_absolute_run_paths(tmp_path, monkeypatch):
    """Case 18: report image paths must resolve whatever the working folder (the HTML showed '-')."""
    monkeypatch.chdir(tmp_path)
    run_dir = make_run_dir(Path("results"), None)
    assert run_dir.is_absolute() and run_dir.is_dir() and run_dir.parent == (tmp_path / "results").resolve()


def test_leaderboard_html_shows_thumbnails_of_images_in_the_run_folder(tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image

    from defacebench.report import LeaderboardRow, write_leaderboard

    monkeypatch.chdir(tmp_path)
    run_dir = make_run_dir(Path("results"), "r1")
    cid = "none-surface-dlib_hog-dlib_resnet"
    (run_dir / cid).mkdir()
    for name in ("montage.png", "roc_prc.png"):
        Image.fromarray(np.full((40, 60, 3), 128, np.uint8)).save(run_dir / cid / name)
    row = LeaderboardRow(cid, *cid.split("-"), n=3, rank1=1.0, rank1_ci=(1.0, 1.0), rank5=1.0, roc_auc=1.0,
                         roc_auc_ci=(1.0, 1.0), eer=0.0, detection_rate=1.0, montage=run_dir / cid / "montage.png",
                         plot=run_dir / cid / "roc_prc.png")
    write_leaderboard(run_dir, [row])
    page = (run_dir / "leaderboard.html").read_text()
    assert "data:image" not in page  # thumbnails are files of the run folder
    assert f'src="thumbs/{cid}.row.jpg"' in page and (run_dir / "thumbs" / f"{cid}.row.jpg").is_file()
    assert f'href="{cid}/montage.png"' in page  # relative to the page: a copied run folder still links
    assert f'href="{cid}/roc_prc.png"' in page


# ------------------------------------------------------------------ 8: no silent scenario switch

class _Acq:
    def __init__(self, acq_id):
        self.acq_id = acq_id


class _Vol:
    def __init__(self, ok=True, error=""):
        self.ok, self.error = ok, error


class _Run:
    def __init__(self, roles, vols):
        self.roles, self._vols = roles, vols

    def volumes(self):
        return self._vols


def test_a_subject_missing_its_rescan_is_a_recorded_failure_not_a_seed_comparison():
    roles = [SubjectRoles("001", _Acq("001/scan"), _Acq("001/rescan")), SubjectRoles("002", _Acq("002/scan"), None),
             SubjectRoles("003", _Acq("003/scan"), _Acq("003/rescan"))]
    vols = {"001/scan": _Vol(), "001/rescan": _Vol(), "002/scan": _Vol(), "003/scan": _Vol(),
            "003/rescan": _Vol(False, "ConversionError: 003/rescan/slice_0007.dcm is truncated")}
    from defacebench.run.evaluation import scenario_subjects

    kept, dropped = scenario_subjects(_Run(roles, vols), get_scenario("rescan"))
    assert [r.subject_id for r in kept] == ["001"]
    assert dropped[0] == FailureRow("002", "roles", "gallery", dropped[0].error) and "needs a second" in dropped[0].error
    assert dropped[1].subject_id == "003" and dropped[1].stage == "convert" and "truncated" in dropped[1].error
    kept_seed, dropped_seed = scenario_subjects(_Run(roles, vols), get_scenario("seed"))
    assert [r.subject_id for r in kept_seed] == ["001", "002", "003"] and not dropped_seed


# ------------------------------------------------------------------ 17: split checked before computing

def test_too_few_subjects_fail_before_any_computing(tmp_path):
    from defacebench.errors import EvaluationError
    from defacebench.metrics.split import check_split_feasible

    with pytest.raises(EvaluationError, match="data has 3 usable subject.*--calibration 1.0"):
        check_split_feasible(3, 0.7, where="data")
    check_split_feasible(3, 1.0)
    with pytest.raises(EvaluationError, match="no usable subject"):
        check_split_feasible(0, 1.0)


def test_an_empty_dataset_says_what_is_empty_before_any_work(tmp_path):
    (tmp_path / "empty").mkdir()
    out = subprocess.run([sys.executable, "-m", "defacebench", "run", "--dataset", str(tmp_path / "empty"),
                          "--results", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 1
    assert "no subject" in out.stderr and str(tmp_path / "empty") in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------ 12: one line, not a traceback

def test_read_only_results_folder_is_one_line_naming_it(tmp_path):
    results = tmp_path / "ro"
    results.mkdir()
    results.chmod(0o500)
    try:
        if os.access(results, os.W_OK):
            pytest.skip("running as a user who can write to read-only folders (root without CAP restrictions)")
        out = subprocess.run([sys.executable, "-m", "defacebench", "run", "--results", str(results)],
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
    finally:
        results.chmod(0o700)
    assert out.returncode == 1 and str(results) in out.stderr and "Traceback" not in out.stderr


def test_make_run_dir_on_an_unwritable_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(RunDirError, match="is a file, not a folder; choose a writable --results"):
        make_run_dir(blocker, "x")
    with pytest.raises(RunDirError, match="cannot create the run folder.*writable --results"):
        make_run_dir(blocker / "below", "x")


def test_ctrl_c_prints_one_line_and_exits_130(tmp_path):
    # a shell's background job inherits SIGINT ignored; a user's terminal delivers it: restore that
    script = textwrap.dedent("""
        import signal, sys, time
        signal.signal(signal.SIGINT, signal.default_int_handler)
        import defacebench.cli.list as listing
        def slow(args):
            print("started", flush=True)
            time.sleep(60)
        listing.run = slow  # registered as the subcommand's func when the parser is built
        from defacebench import cli
        sys.exit(cli.main(["list"]))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "started"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------ 11: a killed run ends its workers

def test_sigkill_of_the_run_ends_its_pool_workers(tmp_path):
    psutil = pytest.importorskip("psutil")
    script = textwrap.dedent("""
        import os, sys, time
        from defacebench.run.executors import LocalExecutor
        from tests_helpers_sleep import nap
        with LocalExecutor(2) as ex:
            ex.map(nap, [60, 60], desc="nap")
    """)
    (tmp_path / "tests_helpers_sleep.py").write_text("import time\ndef nap(s):\n    print('napping', flush=True)\n"
                                                     "    time.sleep(s)\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "DEFACEBENCH_PROGRESS": "0"}
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    parent = psutil.Process(proc.pid)
    deadline = time.monotonic() + 120
    workers = []
    while time.monotonic() < deadline and len(workers) < 2:
        workers = [c for c in parent.children(recursive=True) if "resource_tracker" not in " ".join(c.cmdline())]
        time.sleep(0.2)
    assert proc.stdout.readline().startswith("napping")
    tree = parent.children(recursive=True)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    gone, alive = psutil.wait_procs(tree, timeout=20)
    assert not alive, f"orphans still running: {[p.pid for p in alive]}"
