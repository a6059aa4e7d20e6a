"""A defacer from a separate pip-installed package, and one from a TOML file, appear everywhere:
``defacebench list`` and the ids of ``pytest bench/ --collect-only``."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PYPROJECT = textwrap.dedent("""\
    [build-system]
    requires = ["setuptools>=61"]
    build-backend = "setuptools.build_meta"
    [project]
    name = "tiny-blur-defacer"
    version = "0.3.0"
    [project.entry-points."defacebench.defacers"]
    tiny_blur = "tiny_blur:TinyBlur"
    """)

MODULE = textwrap.dedent('''\
    """A tiny third-party defacer: blurs the anterior third of the head."""
    from dataclasses import dataclass
    from pathlib import Path
    from defacebench.contracts import Availability, DefaceResult

    @dataclass(frozen=True)
    class Params:
        sigma_vox: float = 3.0

    class TinyBlur:
        name = "tiny_blur"
        version = "0.3.0"
        deterministic = True

        def __init__(self, params=None):
            self.params = params or Params()

        def available(self):
            return Availability.yes()

        def tool_version(self):
            return ""

        def deface(self, volume_path, workdir):
            import nibabel as nib
            from scipy import ndimage
            img = nib.load(str(volume_path))
            data = img.get_fdata(dtype="float32")
            front = slice(2 * data.shape[1] // 3, None)
            data[:, front] = ndimage.gaussian_filter(data[:, front], self.params.sigma_vox)
            out = Path(workdir) / "blurred.nii.gz"
            nib.save(nib.Nifti1Image(data, img.affine), str(out))
            return DefaceResult(out, None, self.version, "blurred")
    ''')


@pytest.fixture(scope="module")
def installed_site(tmp_path_factory) -> Path:
    """Build and pip-install the tiny package into its own folder (the test env stays untouched)."""
    src = tmp_path_factory.mktemp("tiny_pkg")
    (src / "pyproject.toml").write_text(PYPROJECT)
    (src / "tiny_blur.py").write_text(MODULE)
    site = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(src)], check=True, capture_output=True, text=True)
    assert any(p.name.startswith("tiny_blur_defacer-0.3.0") for p in site.iterdir())
    return site


def _run(args, site: Path | None = None, cwd: Path = ROOT):
    env = dict(os.environ, COLUMNS="1000")  # -rs truncates skip reasons to the terminal width
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_entry_point_package_is_listed(installed_site):
    out = _run(["-m", "defacebench", "list", "--kind", "defacers"], installed_site)
    assert out.returncode == 0, out.stderr
    assert any(line.startswith("tiny_blur ") for line in out.stdout.splitlines())
    rows = json.loads(_run(["-m", "defacebench", "list", "--json"], installed_site).stdout)
    row = next(r for r in rows if r["name"] == "tiny_blur")
    assert row == {"kind": "defacers", "name": "tiny_blur", "version": "0.3.0", "available": True, "reason": "",
                   "default": True, "notes": "",
                   "source": "entry point of tiny-blur-defacer 0.3.0"}


def test_entry_point_package_adds_pytest_ids(installed_site):
    out = _run(["-m", "pytest", "bench/", "--collect-only", "-q", "-k", "tiny_blur"], installed_site)
    assert out.returncode == 0, out.stdout + out.stderr
    ids = [line for line in out.stdout.splitlines() if "test_configuration[" in line]
    assert ids and all("[tiny_blur-" in i for i in ids)
    assert any("[tiny_blur-surface-dlib_hog-dlib_resnet]" in i for i in ids)


def test_toml_defacer_is_listed_and_adds_pytest_ids(tmp_path):
    toml = tmp_path / "defacebench.toml"
    toml.write_text('[defacers.mri_reface]\ncommand = "mri_reface {input} {workdir}"\noutput = "*_deFaced.nii*"\n')
    listed = _run(["-m", "defacebench", "--plugins-file", str(toml), "list", "--kind", "defacers"])
    assert listed.returncode == 0, listed.stderr
    assert "mri_reface" in listed.stdout and "mri_reface not found on PATH" in listed.stdout
    collected = _run(["-m", "pytest", "bench/", "--collect-only", "-q", "-k", "mri_reface",
                      "--plugins-file", str(toml)])
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert "test_configuration[mri_reface-surface-dlib_hog-dlib_resnet]" in collected.stdout
    # the default scenarios add -multiview, -svm, -aware and -refill_template ids for this attacker: one skip each
    assert all(f"test_configuration[mri_reface-surface-dlib_hog-dlib_resnet-{s}]" in collected.stdout
               for s in ("multiview", "svm", "aware", "refill_template"))
    skipped = _run(["-m", "pytest", "bench/", "-q", "-rs", "-k", "mri_reface-surface-dlib_hog-dlib_resnet",
                    "--plugins-file", str(toml), "--results", str(tmp_path / "runs")])
    assert "5 skipped" in skipped.stdout, skipped.stdout + skipped.stderr
    assert "mri_reface not found on PATH" in skipped.stdout


def test_toml_file_in_working_directory_is_picked_up(tmp_path):
    (tmp_path / "defacebench.toml").write_text('[defacers.cwd_tool]\ncommand = "cwd_tool {input}"\n')
    out = _run(["-m", "defacebench", "list", "--json"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    row = next(r for r in json.loads(out.stdout) if r["name"] == "cwd_tool")
    assert row["source"] == f"TOML {tmp_path / 'defacebench.toml'}"
    assert not row["available"] and "cwd_tool not found on PATH" in row["reason"]


def test_fsl_selection_lists_only_fsl_and_names_the_tool(tmp_path):
    out = _run(["-m", "pytest", "bench/", "-k", "fsl", "-rs", "-vv", "--results", str(tmp_path / "runs")])
    assert out.returncode == 0, out.stdout + out.stderr
    reasons = [line for line in out.stdout.splitlines()
               if line.startswith("SKIPPED") and "test_configurations.py" in line]
    assert reasons, out.stdout
    collected = _run(["-m", "pytest", "bench/", "-k", "fsl", "--collect-only", "-q"])
    ids = [line for line in collected.stdout.splitlines() if "test_configuration[" in line]
    assert ids and all(i.split("[")[1].startswith("fsl_deface-") for i in ids)
    if "fsl_deface" not in os.environ.get("PATH", "") and not any(
            Path(p, "fsl_deface").exists() for p in os.environ.get("PATH", "").split(os.pathsep)):
        assert all("fsl_deface" in r and "FSL" in r for r in reasons), reasons[:3]
