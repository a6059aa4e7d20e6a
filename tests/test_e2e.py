"""End-to-end: the real pipeline on a small generated sample (real DICOM, real plugins).

Covers what only a whole run shows: the results tree, 2N recognizer passes, a warm rerun that
computes nothing, identical matrices from the local pool and a real Dask LocalCluster, a SIGKILLed
run that resumes to identical results, and no DICOM patient metadata anywhere in the results.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pydicom = pytest.importorskip("pydicom")
pytest.importorskip("dlib")

ROOT = Path(__file__).resolve().parents[1]
N_SUBJECTS = 4  # subjects of the session's sample_dataset (tests/conftest.py)
# rescan only: the default's many-view scenarios run in bench/ and tests/test_scenarios.py; here they
# would multiply every end-to-end run's rendering by 15 views
ATTACKER = ["--renderers", "surface", "--detectors", "dlib_hog", "--recognizers", "dlib_resnet", "--scenarios", "rescan"]


def _cli(args: list[str], *, cache: Path, timeout: float = 600, env: dict | None = None,
         **popen) -> subprocess.CompletedProcess:
    env = env or {**os.environ, "DEFACEBENCH_CACHE": str(cache)}
    return subprocess.run([sys.executable, "-m", "defacebench", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, **popen)


def _run_args(dataset: Path, results: Path, run_id: str, *extra: str) -> list[str]:
    return ["run", "--dataset", str(dataset), "--results", str(results), "--run-id", run_id,
            "--defacers", "none,quickshear", *ATTACKER, "--n-bootstrap", "200", *extra]


def _matrix(run_dir: Path, config_id: str) -> list[list[str]]:
    with open(run_dir / config_id / "distances.csv", newline="") as handle:
        return list(csv.reader(handle))


CONTROL = "none-surface-dlib_hog-dlib_resnet"
QUICKSHEAR = "quickshear-surface-dlib_hog-dlib_resnet"


@pytest.fixture(scope="module")
def cold_run(sample_dataset, tmp_path_factory):
    """One complete local run with its own empty cache."""
    base = tmp_path_factory.mktemp("cold")
    # as on a terminal without a display: bars forced on (stderr), no DISPLAY (VTK must not complain)
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    out = _cli(_run_args(sample_dataset, base / "runs", "cold"), cache=base / "cache",
               env={**env, "DEFACEBENCH_PROGRESS": "1", "DEFACEBENCH_CACHE": str(base / "cache")})
    assert out.returncode == 0, out.stdout + out.stderr
    (base / "cold.stdout").write_text(out.stdout)
    (base / "cold.stderr").write_text(out.stderr)
    return base, base / "runs" / "cold"


def test_console_shows_bars_then_a_short_answer_and_v_restores_the_configuration_lines(cold_run, sample_dataset):
    """Issue 24: after its bars a cold run prints at most about 40 lines: the compact verdict, one
    sentence per class, the report and the run folder; per-configuration lines go to run.log and
    come back with -v; no VTK or X11 warning reaches the user."""
    base, run_dir = cold_run
    out, err = (base / "cold.stdout").read_text(), (base / "cold.stderr").read_text()
    assert "configurations" in err and "render" in err  # the stage bars, on stderr
    lines = out.splitlines()
    assert len(lines) <= 40, out
    assert "not shown exposed: " in out and "exposed: " in out
    assert f"report {run_dir / 'leaderboard.html'}" in out and f"run outputs in {run_dir}" in out
    assert f"{CONTROL}: n=" not in out and "# Leaderboard" not in out  # details stay in run.log
    for text in (out, err):
        assert "vtkXOpenGLRenderWindow" not in text and "X server" not in text and "Warning" not in text
    log = (run_dir / "run.log").read_text()
    assert f"{CONTROL}: n={N_SUBJECTS} rank1=" in log and "# Leaderboard" in log and "exposed: " in log
    verbose = _cli(_run_args(sample_dataset, base / "runs", "verbose", "-v"), cache=base / "cache")
    assert verbose.returncode == 0, verbose.stdout + verbose.stderr
    assert f"{CONTROL}: n={N_SUBJECTS} rank1=" in verbose.stdout and f"{QUICKSHEAR}: n=" in verbose.stdout
    assert "# Leaderboard" in verbose.stdout and "privacy gain" in verbose.stdout  # the full tables


def test_results_tree_and_manifest(cold_run):
    _, run_dir = cold_run
    for name in ("manifest.json", "leaderboard.md", "leaderboard.csv", "leaderboard.html"):
        assert (run_dir / name).is_file(), name
    for cid in (CONTROL, QUICKSHEAR):
        for name in ("distances.csv", "metrics.json", "roc_prc.png", "montage.png"):
            assert (run_dir / cid / name).is_file(), f"{cid}/{name}"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["configurations"][CONTROL] == {"status": "passed"}
    assert len(manifest["dataset"]["subjects"]) == N_SUBJECTS
    split = manifest["splits"][CONTROL]
    assert set(split["calibration_ids"]).isdisjoint(split["heldout_ids"])
    assert manifest["splits"][QUICKSHEAR] == split, "one split for every configuration"
    stages = manifest["stages"]
    assert stages["convert"]["pydicom"]["computed"] == 2 * N_SUBJECTS
    # the tested defacer defaces only the probe scans (no aware scenario asked); QC once per defacing
    assert stages["deface"]["quickshear"]["computed"] == stages["qc"]["quickshear"]["computed"] == N_SUBJECTS
    emb = manifest["embeddings_per_configuration"][CONTROL]
    assert emb["gallery"] + emb["probe"] <= 2 * N_SUBJECTS and emb["subjects"] == N_SUBJECTS
    # each image embedded once: control gallery + control probe + quickshear probe images at most
    assert manifest["embeddings_computed"] <= 3 * N_SUBJECTS
    lines = (run_dir / "leaderboard.md").read_text().splitlines()
    assert any(CONTROL in line for line in lines)


def test_control_reidentifies_and_quickshear_defaces(cold_run):
    _, run_dir = cold_run
    control = json.loads((run_dir / CONTROL / "metrics.json").read_text())
    shear = json.loads((run_dir / QUICKSHEAR / "metrics.json").read_text())
    assert control["n"] == shear["n"] == N_SUBJECTS, "same subject set for every defacer"
    assert control["rank1"] >= 0.75
    assert shear["rank1"] < control["rank1"] or shear["detection_rate"]["probe"] < 1.0


def test_warm_rerun_computes_nothing_and_matches(cold_run, sample_dataset):
    base, run_dir = cold_run
    start = time.monotonic()
    out = _cli(_run_args(sample_dataset, base / "runs", "warm"), cache=base / "cache")
    assert out.returncode == 0, out.stderr
    warm = base / "runs" / "warm"
    manifest = json.loads((warm / "manifest.json").read_text())
    assert manifest["embeddings_computed"] == 0
    assert _matrix(warm, CONTROL) == _matrix(run_dir, CONTROL)
    assert _matrix(warm, QUICKSHEAR) == _matrix(run_dir, QUICKSHEAR)
    assert time.monotonic() - start < 120


def test_dask_localcluster_gives_identical_matrices(cold_run, sample_dataset, tmp_path):
    pytest.importorskip("distributed")
    _, run_dir = cold_run
    out = _cli(_run_args(sample_dataset, tmp_path / "runs", "dask", "--executor", "dask", "--bench-workers", "2"),
               cache=tmp_path / "cache")
    assert out.returncode == 0, out.stdout + out.stderr
    manifest = json.loads((tmp_path / "runs" / "dask" / "manifest.json").read_text())
    assert manifest["executor"]["kind"] == "dask"
    for cid in (CONTROL, QUICKSHEAR):
        assert _matrix(tmp_path / "runs" / "dask", cid) == _matrix(run_dir, cid)


def test_run_ahead_gives_identical_matrices(cold_run, sample_dataset, tmp_path):
    """``--run-ahead on`` (threads computing later configurations' stages through the priority
    queue) changes when stages run, not what they compute."""
    _, run_dir = cold_run
    out = _cli(_run_args(sample_dataset, tmp_path / "runs", "ahead", "--run-ahead", "on", "--bench-workers", "2"),
               cache=tmp_path / "cache")
    assert out.returncode == 0, out.stdout + out.stderr
    manifest = json.loads((tmp_path / "runs" / "ahead" / "manifest.json").read_text())
    assert manifest["run"]["run_ahead"] is True
    for cid in (CONTROL, QUICKSHEAR):
        assert _matrix(tmp_path / "runs" / "ahead", cid) == _matrix(run_dir, cid)


def test_sigkilled_run_resumes_to_identical_results(cold_run, sample_dataset, tmp_path):
    _, run_dir = cold_run
    cache = tmp_path / "cache"
    env = {**os.environ, "DEFACEBENCH_CACHE": str(cache)}
    args = [sys.executable, "-m", "defacebench", *_run_args(sample_dataset, tmp_path / "runs", "killed")]
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if any((cache / "deface").glob("*/*")):
            break  # mid-run: some defacings are complete, the rest are not
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    out = _cli(_run_args(sample_dataset, tmp_path / "runs", "resumed"), cache=cache)
    assert out.returncode == 0, out.stdout + out.stderr
    for cid in (CONTROL, QUICKSHEAR):
        assert _matrix(tmp_path / "runs" / "resumed", cid) == _matrix(run_dir, cid)


def test_no_patient_metadata_reaches_results(sample_dataset, tmp_path):
    """Real DICOM headers carrying a name, id and birth date; none of them may leave the input, nor a
    SeriesInstanceUID (DICOM's confidentiality profile counts UIDs as identifying; issue 25)."""
    secrets = {"PatientName": "Quaxley^Brunhilde", "PatientID": "MRN-99887766", "PatientBirthDate": "19410307"}
    dataset = tmp_path / "phi"
    shutil.copytree(sample_dataset, dataset)
    series_uids: set[str] = set()
    for dcm in dataset.rglob("*"):
        if dcm.is_file() and not dcm.name.endswith((".nii", ".nii.gz", ".json")):
            try:
                ds = pydicom.dcmread(dcm)
            except pydicom.errors.InvalidDicomError:
                continue
            for key, value in secrets.items():
                setattr(ds, key, value)
            series_uids.add(str(ds.SeriesInstanceUID))
            ds.save_as(dcm)
    results = tmp_path / "runs"
    out = _cli(["run", "--dataset", str(dataset), "--results", str(results), "--run-id", "phi",
                "--defacers", "none", *ATTACKER, "--n-bootstrap", "100"], cache=tmp_path / "cache")
    assert out.returncode == 0, out.stdout + out.stderr
    texts = [out.stdout, out.stderr]
    for path in list(results.rglob("*")) + list((tmp_path / "cache").rglob("*")):
        if path.is_file():
            texts.append(path.read_bytes().decode("latin-1"))
    blob = "\n".join(texts)
    # long, distinctive values: short ones occur by chance inside base64 images embedded in the HTML
    for value in ("Quaxley", "Brunhilde", "MRN-99887766", "19410307"):
        assert value not in blob, f"{value} leaked into results, cache or logs"
    assert series_uids and not [uid for uid in series_uids if uid in blob], "a SeriesInstanceUID leaked"


def test_regression_gate_fails_and_lists_the_regressed_configuration(cold_run, sample_dataset, tmp_path):
    """`pytest bench/ --compare` on a baseline whose quickshear row was far better than now fails,
    listing the configuration with old and new values; the matching baseline passes."""
    base, _ = cold_run
    env = {**os.environ, "DEFACEBENCH_CACHE": str(base / "cache")}
    common = [sys.executable, "-m", "pytest", "bench/test_configurations.py", "-q", "-p", "no:cacheprovider",
              "--dataset", str(sample_dataset), "--defacers", "none,quickshear", *ATTACKER, "--n-bootstrap", "200",
              "--results", str(tmp_path / "runs"), "--no-images"]
    saved = tmp_path / "baseline.json"
    out = subprocess.run(common + ["--save-baseline", str(saved)], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    same = subprocess.run(common + ["--compare", str(saved)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert same.returncode == 0 and "no regression" in same.stdout, same.stdout
    # pytest's summary: the compact verdict with its sentences; -v adds every configuration's line
    assert "exposed: " in same.stdout and f"{CONTROL}: n=" not in same.stdout
    verbose = subprocess.run(common + ["-vv"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert verbose.returncode == 0 and f"{CONTROL}: n={N_SUBJECTS} rank1=" in verbose.stdout, verbose.stdout
    baseline = json.loads(saved.read_text())
    row = baseline["configs"][QUICKSHEAR]
    row.update(rank1=0.9, rank1_ci=[0.8, 1.0])
    worse = tmp_path / "better_baseline.json"
    worse.write_text(json.dumps(baseline))
    gated = subprocess.run(common + ["--compare", str(worse)], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=600)
    assert gated.returncode == 1, gated.stdout
    assert QUICKSHEAR in gated.stdout and "rank1" in gated.stdout
    assert CONTROL not in gated.stdout.split("regression(s)")[-1]


def test_bad_subject_and_failing_defacer_are_recorded_not_fatal(cold_run, sample_dataset, tmp_path):
    """A subject with a corrupt DICOM slice is a recorded dataset failure naming the file; a defacer
    that fails on every volume gives failure rows and QC label `failed`; the run goes on."""
    base, _ = cold_run
    dataset = tmp_path / "data"
    shutil.copytree(sample_dataset, dataset)
    broken = sorted((dataset / "002" / "scan").iterdir())[5]
    broken.write_bytes(broken.read_bytes()[:300])  # truncated: header without pixel data
    tool = tmp_path / "bin" / "always_fails"
    tool.parent.mkdir()
    tool.write_text(f"#!{sys.executable}\nimport sys\nsys.stderr.write('always_fails: cannot find the face\\n')\n"
                    "sys.exit(4)\n")
    tool.chmod(0o755)
    toml = tmp_path / "defacebench.toml"
    toml.write_text(f'[defacers.always_fails]\ncommand = "{tool} {{input}} {{output}}"\n')
    out = _cli(["--plugins-file", str(toml), "run", "--dataset", str(dataset), "--results", str(tmp_path / "runs"),
                "--run-id", "bad", "--defacers", "none,always_fails", *ATTACKER, "--n-bootstrap", "200",
                "--calibration", "1.0"],  # 3 subjects remain: too few to hold any out
               cache=base / "cache")
    # a defacer that fails on every subject is defacer_failed (exit 1, its first error shown), never "safe"
    assert out.returncode == 1, out.stdout + out.stderr
    assert "DEFACER FAILED always_fails-surface" in out.stderr and "cannot find the face" in out.stderr
    assert "1 subject(s) dropped before defacing (002 (convert))" in out.stdout
    run_dir = tmp_path / "runs" / "bad"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    conversion = manifest["dataset"]["conversion"][manifest["dataset"]["roles"]["002"]["probe"]]
    assert broken.name in conversion["error"]
    assert manifest["configurations"]["always_fails-surface-dlib_hog-dlib_resnet"]["status"] == "defacer_failed"
    metrics = json.loads((run_dir / "always_fails-surface-dlib_hog-dlib_resnet" / "metrics.json").read_text())
    control = json.loads((run_dir / CONTROL / "metrics.json").read_text())
    assert metrics["n"] == control["n"] == N_SUBJECTS - 1
    # exposed: the failed subjects are scored with their undefaced probes, exactly the control's matrix
    assert metrics["rank1"] == control["rank1"] and metrics["extra"]["status"] == "defacer_failed"
    assert metrics["extra"]["defacing_failure_rate"] == 1.0
    assert metrics["extra"]["qc"]["labels"] == {"failed": N_SUBJECTS - 1}
    rows = [r for r in metrics["extra"]["failures"] if r["stage"] == "deface"]
    assert len(rows) == N_SUBJECTS - 1 and all("exit code 4" in r["error"] and "cannot find the face" in r["error"]
                                               for r in rows)
    assert [r["subject_id"] for r in metrics["extra"]["failures"] if r["stage"] == "convert"] == ["002"]
