"""External defacer wrappers (fsl_deface, AFNI's refacer trio, pydeface) against stand-in executables.

Each test writes small Python scripts named like the real tools into a tmp ``bin`` folder put first
on PATH. They behave as the real tools do on disk (same argument parsing, outputs named as the tools
name them, FSL/pydeface keep-masks, AFNI face images and ``P_QC/``), record their argv, and can be
told (``STANDIN_MODE``) to fail with a message, hang, write nothing, or write ``.nii`` instead of
``.nii.gz``. So command lines, output discovery, timeouts and error reports are verified for real
subprocesses, without FSL or AFNI installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from defacebench.errors import DefaceError
from defacers.afni import AfniDeface, AfniParams, AfniReface, AfniRefacePlus
from defacers.fsl import FslDeface, FslDefaceParams
from defacers.pydeface import PydefaceCli, PydefaceCliParams

COMMON = r'''
import json, os, sys, time
from pathlib import Path
import nibabel as nib
import numpy as np

def record():
    with open(os.environ["STANDIN_LOG"], "a") as f:
        f.write(json.dumps({"tool": Path(sys.argv[0]).name, "argv": sys.argv[1:], "cwd": os.getcwd()}) + "\n")

def behave():
    """Handle the failure modes; return the suffix to write outputs with."""
    mode = os.environ.get("STANDIN_MODE", "ok")
    if mode == "fail":
        print("working...")
        print("ERROR: could not read header of image (stand-in failure)", file=sys.stderr)
        sys.exit(3)
    if mode == "hang":
        time.sleep(120)
    if mode == "missing":
        sys.exit(0)
    return ".nii" if mode == "nii" else ".nii.gz"

def face_box(shape):
    """Anterior-inferior block: last third along j, lower half along k."""
    keep = np.ones(shape, np.float32)
    keep[:, (2 * shape[1]) // 3:, : shape[2] // 2] = 0
    return keep

def out_name(path, suffix):
    return str(path).replace(".nii.gz", "").replace(".nii", "") + suffix
'''

FSL = COMMON + r'''
record()
suffix = behave()
args = sys.argv[1:]
src, out = args[0], args[1]
img = nib.load(src)
data = np.asarray(img.dataobj, np.float32)
keep = face_box(data.shape)
nib.save(nib.Nifti1Image(data * keep, img.affine), out_name(out, suffix))
if "-d" in args:
    nib.save(nib.Nifti1Image(keep.astype(np.uint8), img.affine), out_name(args[args.index("-d") + 1], suffix))
'''

AFNI = COMMON + r'''
record()
suffix = behave()
args = sys.argv[1:]
src, prefix = args[args.index("-input") + 1], args[args.index("-prefix") + 1]
assert "-mode_all" in args
img = nib.load(src)
data = np.asarray(img.dataobj, np.float32)
face = face_box(data.shape) == 0
plus = face.copy()
plus[:, :, : data.shape[2] // 4] = True
def save(name, arr):
    nib.save(nib.Nifti1Image(arr.astype(np.float32), img.affine), prefix + "." + name + suffix)
save("deface", np.where(face, 0, data))
save("reface", np.where(face, np.where(data > -500, 50.0, 0.0), data))
save("reface_plus", np.where(plus, np.where(data > -500, 60.0, 0.0), data))
save("face", np.where(face, data, 0))
save("face_plus", np.where(plus, data, 0))
Path(prefix + "_QC").mkdir()
(Path(prefix + "_QC") / "qc.txt").write_text("stand-in QC")
'''

PYDEFACE = COMMON + r'''
record()
suffix = behave()
args = sys.argv[1:]
src, out = args[0], args[args.index("--outfile") + 1]
img = nib.load(src)
data = np.asarray(img.dataobj, np.float32)
keep = face_box(data.shape)
nib.save(nib.Nifti1Image(data * keep, img.affine), out_name(out, suffix))
if "--nocleanup" in args:  # pydeface moves its warped mask next to its input
    nib.save(nib.Nifti1Image(keep, img.affine), src.replace(".gz", "").replace(".nii", "_pydeface_mask.nii.gz"))
'''

TRIVIAL = "import sys\nprint('stand-in 6.0.7')\n"


def _install(bin_dir: Path, name: str, source: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!{sys.executable}\n{source}")
    path.chmod(0o755)


@pytest.fixture
def standins(tmp_path, monkeypatch):
    """A bin folder with every stand-in first on PATH; returns a reader of the recorded calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, source in (("fsl_deface", FSL), ("@afni_refacer_run", AFNI), ("pydeface", PYDEFACE),
                         ("flirt", TRIVIAL), ("afni", TRIVIAL)):
        _install(bin_dir, name, source)
    fsldir = tmp_path / "fsl"
    (fsldir / "etc").mkdir(parents=True)
    (fsldir / "etc" / "fslversion").write_text("6.0.7.9:abcdef\n")
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FSLDIR", str(fsldir))
    monkeypatch.setenv("STANDIN_LOG", str(log))
    monkeypatch.setenv("STANDIN_MODE", "ok")

    def calls() -> list[dict]:
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    return calls


@pytest.fixture
def ct_input(ellipsoid_ct, write_ct, tmp_path):
    """An ellipsoid head CT in a folder whose name has a space."""
    return write_ct(ellipsoid_ct(), tmp_path / "input dir" / "head ct.nii.gz")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _workdir(tmp_path: Path, name: str) -> Path:
    work = tmp_path / name
    work.mkdir()
    return work


def _afni_params(tmp_path: Path, **kw) -> AfniParams:
    return AfniParams(cache_dir=str(tmp_path / "cache"), **kw)


def _check_removed_mask(result, original: np.ndarray) -> np.ndarray:
    """The result's mask is 1 exactly on the stand-ins' face box (j >= 2/3, k < 1/2)."""
    removed = np.asarray(nib.load(str(result.mask_path)).dataobj) == 1
    expected = np.zeros(original.shape, bool)
    expected[:, (2 * original.shape[1]) // 3:, : original.shape[2] // 2] = True
    assert np.array_equal(removed, expected)
    return removed


# ---------------------------------------------------------------------------------------------- FSL


def test_fsl_success_argv_outputs_and_log(standins, ct_input, tmp_path):
    work = _workdir(tmp_path, "work")
    digest = _digest(ct_input)
    result = FslDeface().deface(ct_input, work)
    [call] = standins()
    assert call["argv"] == [str(work / "input.nii.gz"), str(work / "defaced.nii.gz"), "-d",
                            str(work / "fsl_defacing_mask.nii.gz")]
    assert call["cwd"] == str(work)
    assert result.volume_path == work / "defaced.nii.gz"
    original = np.asarray(nib.load(str(ct_input)).dataobj)
    _check_removed_mask(result, original)
    assert result.tool_version == "FSL 6.0.7.9"
    assert "$ fsl_deface" in result.log and "exit code 0" in result.log and "tool version" in result.log
    assert _digest(ct_input) == digest


def test_fsl_nii_output_is_discovered(standins, ct_input, tmp_path, monkeypatch):
    monkeypatch.setenv("STANDIN_MODE", "nii")
    result = FslDeface().deface(ct_input, _workdir(tmp_path, "work"))
    assert result.volume_path.name == "defaced.nii"
    assert result.mask_path is not None and result.mask_path.exists()


@pytest.mark.parametrize("mode, message", [("fail", "could not read header"), ("missing", "was not written")])
def test_fsl_failures_carry_the_tools_message(standins, ct_input, tmp_path, monkeypatch, mode, message):
    monkeypatch.setenv("STANDIN_MODE", mode)
    with pytest.raises(DefaceError, match=message) as info:
        FslDeface().deface(ct_input, _workdir(tmp_path, "work"))
    assert str(ct_input) in str(info.value)
    assert "$ fsl_deface" in info.value.log


def test_fsl_timeout(standins, ct_input, tmp_path, monkeypatch):
    monkeypatch.setenv("STANDIN_MODE", "hang")
    with pytest.raises(DefaceError, match="timed out") as info:
        FslDeface(FslDefaceParams(timeout_s=1.0)).deface(ct_input, _workdir(tmp_path, "work"))
    assert "timed out" in info.value.log


def test_fsl_read_only_input_folder_stays_untouched(standins, ct_input, tmp_path):
    folder = ct_input.parent
    digest, listing = _digest(ct_input), sorted(os.listdir(folder))
    folder.chmod(0o555)
    try:
        FslDeface().deface(ct_input, _workdir(tmp_path, "work"))
    finally:
        folder.chmod(0o755)
    assert _digest(ct_input) == digest and sorted(os.listdir(folder)) == listing


def test_fsl_availability_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    reason = FslDeface().available().reason
    assert "fsl_deface not on PATH" in reason and "FSLDIR" in reason


# --------------------------------------------------------------------------------------------- AFNI


def test_afni_trio_runs_the_tool_once(standins, ct_input, tmp_path):
    params = _afni_params(tmp_path)
    original = np.asarray(nib.load(str(ct_input)).dataobj)
    results = {}
    for cls in (AfniReface, AfniDeface, AfniRefacePlus):
        results[cls.name] = cls(params).deface(ct_input, _workdir(tmp_path, cls.name))
    calls = standins()
    assert len(calls) == 1
    assert calls[0]["argv"] == ["-input", "input.nii.gz", "-mode_all", "-prefix", "afni"]
    shared = Path(calls[0]["cwd"])
    deface = np.asarray(nib.load(str(results["afni_deface"].volume_path)).dataobj)
    reface = np.asarray(nib.load(str(results["afni_reface"].volume_path)).dataobj)
    removed = _check_removed_mask(results["afni_deface"], original)
    assert (deface[removed] == 0).all() and (reface[removed & (original > -500)] == 50).all()
    _check_removed_mask(results["afni_reface"], original)
    plus = np.asarray(nib.load(str(results["afni_reface_plus"].mask_path)).dataobj) == 1
    assert plus.sum() > removed.sum()
    assert (tmp_path / "afni_reface_plus" / "afni_face_plus.nii.gz").exists()
    for name, result in results.items():
        assert result.volume_path.parent == tmp_path / name
        assert "$ @afni_refacer_run -input input.nii.gz -mode_all -prefix afni" in result.log
    final = next((tmp_path / "cache" / "afni_refacer").glob("*/*"))
    assert (final / "afni_QC" / "qc.txt").exists() and (final / "afni.face.nii.gz").exists()
    assert not (final / "input.nii.gz").exists()
    assert shared.name != final.name  # built in a temp folder, renamed into place


def test_afni_failure_is_not_cached(standins, ct_input, tmp_path, monkeypatch):
    params = _afni_params(tmp_path)
    monkeypatch.setenv("STANDIN_MODE", "fail")
    with pytest.raises(DefaceError, match="could not read header") as info:
        AfniReface(params).deface(ct_input, _workdir(tmp_path, "w1"))
    assert str(ct_input) in str(info.value) and "$ @afni_refacer_run" in info.value.log
    monkeypatch.setenv("STANDIN_MODE", "ok")
    AfniReface(params).deface(ct_input, _workdir(tmp_path, "w2"))
    assert len(standins()) == 2


def test_afni_missing_output_and_nii(standins, ct_input, tmp_path, monkeypatch):
    monkeypatch.setenv("STANDIN_MODE", "missing")
    with pytest.raises(DefaceError, match=r"afni\.deface\.nii\[\.gz\] was not written"):
        AfniDeface(_afni_params(tmp_path)).deface(ct_input, _workdir(tmp_path, "w1"))
    monkeypatch.setenv("STANDIN_MODE", "nii")
    result = AfniDeface(AfniParams(cache_dir=str(tmp_path / "cache2"))).deface(ct_input, _workdir(tmp_path, "w2"))
    assert result.volume_path.name == "defaced.nii"


def test_afni_timeout(standins, ct_input, tmp_path, monkeypatch):
    monkeypatch.setenv("STANDIN_MODE", "hang")
    with pytest.raises(DefaceError, match="timed out"):
        AfniRefacePlus(_afni_params(tmp_path, timeout_s=1.0)).deface(ct_input, _workdir(tmp_path, "w"))
    assert not list((tmp_path / "cache").glob("afni_refacer/*/*"))


def test_afni_availability_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert "@afni_refacer_run not on PATH" in AfniDeface().available().reason


# ----------------------------------------------------------------------------------------- pydeface


def test_pydeface_success_argv_and_mask(standins, ct_input, tmp_path):
    work = _workdir(tmp_path, "work")
    result = PydefaceCli().deface(ct_input, work)
    [call] = standins()
    assert call["argv"] == [str(work / "input.nii.gz"), "--outfile", str(work / "defaced.nii.gz"), "--nocleanup"]
    original = np.asarray(nib.load(str(ct_input)).dataobj)
    _check_removed_mask(result, original)
    assert (work / "input_pydeface_mask.nii.gz").exists()
    assert not (ct_input.parent / "head ct_pydeface_mask.nii.gz").exists()
    assert "exit code 0" in result.log


@pytest.mark.parametrize("mode, message", [("fail", "could not read header"), ("missing", "was not written"),
                                           ("hang", "timed out")])
def test_pydeface_failures(standins, ct_input, tmp_path, monkeypatch, mode, message):
    monkeypatch.setenv("STANDIN_MODE", mode)
    with pytest.raises(DefaceError, match=message) as info:
        timeout = 1.0 if mode == "hang" else 120.0  # a slow machine must not turn "fail" into a timeout
        PydefaceCli(PydefaceCliParams(timeout_s=timeout)).deface(ct_input, _workdir(tmp_path, "work"))
    assert str(ct_input) in str(info.value) and "$ pydeface" in info.value.log


def test_pydeface_availability_needs_flirt(standins, monkeypatch, tmp_path):
    assert PydefaceCli().available().ok
    only = tmp_path / "only_pydeface"
    only.mkdir()
    _install(only, "pydeface", TRIVIAL)
    monkeypatch.setenv("PATH", str(only))
    reason = PydefaceCli().available().reason
    assert "flirt" in reason and "FSL" in reason


# ------------------------------------------------------------------------------ conformance suite


@pytest.mark.parametrize("make", [
    lambda tmp: FslDeface(), lambda tmp: AfniReface(AfniParams(cache_dir=str(tmp / "cache"))),
    lambda tmp: PydefaceCli(),
], ids=["fsl_deface", "afni_reface", "pydeface"])
def test_wrappers_pass_the_conformance_suite(standins, tmp_path, make):
    """defacebench.testing's defacer checks, run against the wrappers driving the stand-ins."""
    from defacebench.testing import DEFACER_CHECKS

    plugin = make(tmp_path)
    assert plugin.available().ok
    for check in DEFACER_CHECKS:
        work = tmp_path / check.__name__
        work.mkdir()
        check(plugin, work)


def test_afni_shared_runs_live_in_the_default_cache(standins, ct_input, tmp_path, monkeypatch):
    monkeypatch.setenv("DEFACEBENCH_CACHE", str(tmp_path / "default cache"))
    AfniDeface().deface(ct_input, _workdir(tmp_path, "w1"))
    AfniRefacePlus().deface(ct_input, _workdir(tmp_path, "w2"))
    assert len(standins()) == 1
    [run_folder] = (tmp_path / "default cache" / "afni_refacer").glob("*/*")
    assert json.loads((run_folder / "run.json").read_text())["returncode"] == 0


def test_interpolated_keep_mask_counts_scaled_border_as_removed():
    """pydeface's FLIRT-resampled mask is fractional at its border; scaled voxels count as removed."""
    from defacers._external import removed_from_tool_mask

    original = np.full((6, 5, 4), -1000.0, np.float32)
    keep = np.ones_like(original)
    keep[:, 3:, :] = 0.0
    keep[:, 2, :] = 0.4
    removed = removed_from_tool_mask(keep, original, original * keep)
    assert np.array_equal(removed, keep < 1)
    face = np.where(keep < 1, original, 0.0)  # AFNI-style face image: nonzero on the face
    assert np.array_equal(removed_from_tool_mask(face, original, np.where(keep < 1, 0.0, original)), keep < 1)
