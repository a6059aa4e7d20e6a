"""End-to-end: the verdict's statistics and `defacebench report` on a real multi-scenario run.

One run on 8 subjects of the default sample (the generated sample `pytest bench/` also uses), with
the surface renderer, dlib's HOG detector and ResNet recognizer in the `rescan` and `aware`
scenarios, and two command defacers declared in TOML:

* ``copy_input`` copies its input: `none` run as if it were a defacer. It must be ``exposed`` with
  p < 0.001 (8 subjects: a chance relabelling identifies everyone with probability 1/8!).
* ``same_head`` writes the same head (another subject's, not in the run) for every input, with
  independent noise: it leaves no identity, so it must be ``not_shown_exposed``.

On that run `defacebench report` must rebuild byte-identical tables (issue 25: it mixed up the
scenario results), say when it rewrites a file, and warn when a result folder is missing; and an
independent recomputation of the verdict from the distance matrices must agree.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("dlib")

ROOT = Path(__file__).resolve().parents[1]
SUBJECTS = [f"{i:03d}" for i in range(1, 9)]
TABLES = ("leaderboard.md", "leaderboard.csv", "defacers.csv", "leaderboard.html", "heatmap.png", "attacks.png")

SAME_HEAD = """\
import sys

import nibabel as nib
import numpy as np
from scipy import ndimage

source, reference, target = sys.argv[1:4]
image, head = nib.load(source), nib.load(reference)
to_head = np.linalg.inv(head.affine) @ image.affine  # this volume's voxels -> the fixed head's voxels
data = ndimage.affine_transform(np.asarray(head.dataobj, np.float32), to_head[:3, :3], to_head[:3, 3],
                                output_shape=image.shape[:3], order=0, cval=-1000.0)
data += np.random.default_rng().normal(0.0, 15.0, data.shape).astype(np.float32)  # independent noise
nib.save(nib.Nifti1Image(data.astype(np.float32), image.affine), target)
"""


def _cli(args: list[str], *, cache: Path, timeout: float = 1800) -> subprocess.CompletedProcess:
    env = {**os.environ, "DEFACEBENCH_CACHE": str(cache)}
    return subprocess.run([sys.executable, "-m", "defacebench", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def verdict_run(tmp_path_factory):
    from defacebench.data.sample import sample_dataset

    nifti = sample_dataset().parent / "nifti"
    base = tmp_path_factory.mktemp("verdict")

    def scan(subject: str, session: str) -> Path:
        return nifti / f"sub-{subject}" / f"ses-{session}" / "ct" / f"sub-{subject}_ses-{session}_ct.nii.gz"

    manifest = base / "subjects.csv"
    manifest.write_text("subject_id,path,session\n" + "".join(
        f"{s},{scan(s, session)},{session}\n" for s in SUBJECTS for session in ("scan", "rescan")))
    script = base / "same_head.py"
    script.write_text(SAME_HEAD)
    toml = base / "defacebench.toml"
    toml.write_text(f'[defacers.copy_input]\ncommand = ["cp", "{{input}}", "{{output}}"]\n\n'
                    f'[defacers.same_head]\ncommand = ["{sys.executable}", "{script}", "{{input}}", '
                    f'"{scan("016", "scan")}", "{{output}}"]\n')
    out = _cli(["--plugins-file", str(toml), "run", "--dataset", str(manifest), "--results", str(base / "runs"),
                "--run-id", "v", "--defacers", "none,copy_input,same_head", "--renderers", "surface", "--detectors",
                "dlib_hog", "--recognizers", "dlib_resnet", "--scenarios", "rescan,aware", "--cleanup", "none",
                "--n-bootstrap", "100"], cache=base / "cache")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return base / "runs" / "v", out.stdout


def _verdict(run_dir: Path) -> dict[str, dict[str, str]]:
    with open(run_dir / "defacers.csv", newline="") as handle:
        return {row["defacer"]: row for row in csv.DictReader(handle)}


def test_a_copy_of_the_input_is_exposed_and_a_defacer_that_leaves_no_identity_is_not(verdict_run):
    run_dir, stdout = verdict_run
    v = _verdict(run_dir)
    assert v["copy_input"]["exposure"] == "exposed" and float(v["copy_input"]["p_exposed"]) < 0.001
    assert float(v["copy_input"]["worst_rank1_selected"]) >= 0.75
    assert v["same_head"]["exposure"] == "not_shown_exposed" and float(v["same_head"]["p_exposed"]) >= 0.05
    assert float(v["copy_input"]["chance_rank1"]) == pytest.approx(1 / 8)
    assert v["none"]["rank"] == "" and v["copy_input"]["valid_attacks"] == "2"  # rescan and aware
    for column in ("exposure (p max-T)", "(cross-fitted)", "selected max rank-1", "detectable rank-1"):
        assert column in stdout, column  # the console verdict shows the new columns


def _report(run_dir: Path, capsys) -> tuple[int, str, str]:
    from defacebench.cli import main

    code = main(["report", str(run_dir)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_report_rebuilds_a_multi_scenario_run_byte_identical(verdict_run, tmp_path, capsys):
    """Issue 25: `report` on a run with scenarios other than rescan rebuilt ids like `...-aware-aware`
    with empty defacer fields, dropped the strong attacks from the verdict and overwrote the run's
    own tables in place."""
    run_dir, _ = verdict_run
    copy = tmp_path / "v"
    shutil.copytree(run_dir, copy)
    before = {name: (copy / name).read_bytes() for name in TABLES}
    code, stdout, stderr = _report(copy, capsys)
    assert code == 0 and not stderr, stdout + stderr
    for name, data in before.items():
        assert (copy / name).read_bytes() == data, f"{name} changed"
    assert "unchanged (identical to what was there)" in stdout and "REWRITTEN" not in stdout
    rows = list(csv.DictReader((copy / "leaderboard.csv").read_text().splitlines()))
    assert all(r["defacer"] and r["renderer"] and "aware-aware" not in r["config_id"] for r in rows)
    assert sorted({r["scenario"] for r in rows}) == ["aware", "rescan"]
    assert not list(copy.glob("*.orig"))


def test_report_on_a_run_with_a_result_folder_missing_warns_and_says_what_it_rewrote(verdict_run, tmp_path, capsys):
    run_dir, _ = verdict_run
    copy = tmp_path / "v"
    shutil.copytree(run_dir, copy)
    shutil.rmtree(copy / "copy_input-surface-dlib_hog-dlib_resnet-aware")
    original = (copy / "defacers.csv").read_bytes()
    code, stdout, stderr = _report(copy, capsys)
    assert code == 0, stdout + stderr
    assert "warning" in stderr and "copy_input-surface-dlib_hog-dlib_resnet-aware" in stderr
    assert "REWRITTEN defacers.csv" in stdout and (copy / "defacers.csv.orig").read_bytes() == original
    assert _verdict(copy)["copy_input"]["valid_attacks"] == "1"


def test_an_independent_recomputation_from_the_distance_matrices_agrees(verdict_run):
    run_dir, _ = verdict_run
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "verdict_crosscheck.py"), str(run_dir),
                          "--permutations", "20000"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count(" ok") == 3  # none, copy_input, same_head
