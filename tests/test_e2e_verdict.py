"""End-to-end: the verdict's statistics and `defacebench report` on a real multi-scenario run.

One in-process run on in-plane halved copies of 8 subjects of the default sample (the generated
sample `pytest bench/` also uses), with the surface renderer, dlib's HOG detector and ResNet
recognizer in the `rescan` and `aware` scenarios, and two command defacers declared in TOML:

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


@pytest.fixture(scope="module")
def verdict_run(tmp_path_factory):
    from defacebench.data.sample import sample_dataset
    from defacebench.run.config import RunConfig
    from session_helpers import ATTACKER, run_session, sample_nifti, small_copy

    sample = sample_dataset()
    base = tmp_path_factory.mktemp("verdict")
    rows = [f"{s},{small_copy(sample_nifti(sample, s, session), base / 'data' / f'{s}_{session}.nii.gz')},{session}"
            for s in SUBJECTS for session in ("scan", "rescan")]
    manifest = base / "subjects.csv"
    manifest.write_text("subject_id,path,session\n" + "\n".join(rows) + "\n")
    script = base / "same_head.py"
    script.write_text(SAME_HEAD)
    toml = base / "defacebench.toml"
    toml.write_text(f'[defacers.copy_input]\ncommand = ["cp", "{{input}}", "{{output}}"]\n\n'
                    f'[defacers.same_head]\ncommand = ["{sys.executable}", "{script}", "{{input}}", '
                    f'"{sample_nifti(sample, "016", "scan")}", "{{output}}"]\n')
    config = RunConfig(dataset=manifest, results=base / "runs", run_id="v", cache_dir=base / "cache",
                       plugins_file=toml, defacers=("none", "copy_input", "same_head"), **ATTACKER,
                       scenarios=("rescan", "aware"), cleanup="none", n_bootstrap=100, executor="serial")
    session, finish = run_session(config)
    assert all(s.status == "passed" for s in session.statuses.values()), session.statuses
    return session.run.run_dir, "\n".join(finish.lines)


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
