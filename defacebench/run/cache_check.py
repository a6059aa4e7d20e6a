"""Per-file checksums of cache artifacts, their verification on read, and corruption reports.

Why: a truncated or edited artifact (a full disk during a copy, a hand edit, bit rot on a shared
volume) used to be reused on every run and silently changed results. Each artifact's completion
marker now lists every file with its size and sha256, written when the artifact is published.

Cost on read: the size check is one ``stat``; the content hash goes through
:func:`~defacebench.run.cache_keys.file_hash`, memoised per process by (path, size, mtime). The
stages already content-hash every volume and image they hand on (that hash keys the next stage),
so verifying reuses those hashes and adds only the small JSON/array files; a warm process hashes
each file once. Publishing seeds the memo for the final paths, so a fresh artifact is not hashed
twice. (Size + mtime alone would miss a same-size overwrite, and a copied cache changes every mtime.)

A corrupt artifact is moved aside into ``<root>/.quarantine/`` (kept for inspection until
``cache clear``), a one-file JSON report is written next to it, and the caller rebuilds it.
:func:`read_reports` collects the reports of every process that shares the cache since a time.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from defacebench.errors import CacheError
from defacebench.run.cache_keys import file_hash, remember_hash, stat_hash

MARKER_SCHEMA = 2


def list_files(folder: Path) -> list[str]:
    """Relative paths of the files under ``folder``, sorted."""
    out = []
    for dirpath, _dirs, files in os.walk(folder):
        out += [os.path.relpath(os.path.join(dirpath, name), folder) for name in files]
    return sorted(out)


def describe_files(folder: Path, skip: str) -> dict[str, dict]:
    """``{relative path: {size, sha256}}`` of every file under ``folder`` except ``skip`` (the marker)."""
    return {rel: {"size": (folder / rel).stat().st_size, "sha256": file_hash(folder / rel)}
            for rel in list_files(folder) if rel != skip}


def remember(folder: Path, files: dict[str, dict]) -> None:
    """Seed the hash memo with the published files' digests (they were hashed in the temp folder)."""
    base = folder.resolve()
    for rel, want in files.items():
        remember_hash(base / rel, want["sha256"])


def _safe(rel: object) -> bool:
    """A marker entry must name a file inside the artifact folder."""
    return isinstance(rel, str) and rel != "" and not os.path.isabs(rel) and ".." not in Path(rel).parts


def problem(folder: Path, files: object, *, resolved: bool = False) -> str | None:
    """What is wrong with the files of an artifact compared to its marker's list, or None.

    ``files`` is the marker's ``files`` entry: a dict of sizes and hashes, or (markers written before
    checksums) a plain list of names, of which only the presence can be checked. ``resolved`` says
    ``folder`` has no symlinks in it (saves resolving it: a warm read stays a few stats per file).
    """
    if isinstance(files, list):
        missing = [rel for rel in files if not (_safe(rel) and (folder / rel).is_file())]
        return f"{missing[0]} is missing" if missing else None
    if not isinstance(files, dict):
        return "its completion marker lists no files"
    base = folder if resolved else folder.resolve()
    for rel, want in files.items():
        if not _safe(rel) or not isinstance(want, dict):
            return f"its completion marker has a malformed entry {rel!r}"
        try:
            st = os.stat(base / rel)
        except OSError:
            return f"{rel} is missing"
        if st.st_size != want.get("size"):
            return f"{rel} has {st.st_size} bytes, {want.get('size')} were written (truncated or replaced)"
        try:
            digest = stat_hash(base / rel, st)
        except (CacheError, OSError):
            return f"{rel} is missing or not a regular file"
        if digest != want.get("sha256"):
            return f"{rel} changed since it was written (sha256 differs)"
    return None


@dataclass(frozen=True)
class CorruptArtifact:
    """One artifact found corrupt on read: moved to ``quarantined`` and rebuilt by its reader."""

    stage: str
    key: str
    problem: str
    time: float
    quarantined: str
    pid: int

    def line(self) -> str:
        """``stage/key16 (problem)`` for a console summary."""
        return f"{self.stage}/{self.key[:16]} ({self.problem})"


def quarantine_name(stage: str, key: str) -> str:
    """A unique, time-sortable folder name in the quarantine for one artifact."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}.{stage}.{key[:16]}.{uuid.uuid4().hex[:8]}"


def write_report(quarantine: Path, name: str, stage: str, key: str, why: str) -> CorruptArtifact:
    """Write the JSON report of one quarantined artifact next to its folder; returns it."""
    report = CorruptArtifact(stage, key, why, time.time(), str(quarantine / name), os.getpid())
    tmp = quarantine / f".{name}.json.tmp"
    tmp.write_text(json.dumps(asdict(report)))
    os.replace(tmp, quarantine / f"{name}.json")
    return report


def read_reports(quarantine: Path, since: float = 0.0) -> tuple[CorruptArtifact, ...]:
    """Reports written at or after ``since`` (seconds since the epoch), oldest first."""
    out = []
    for path in quarantine.glob("*.json") if quarantine.is_dir() else ():
        try:
            report = CorruptArtifact(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue  # a report being removed by a concurrent clear
        if report.time >= since:
            out.append(report)
    return tuple(sorted(out, key=lambda r: r.time))


def summary(reports: tuple[CorruptArtifact, ...] | list[CorruptArtifact], limit: int = 5) -> str | None:
    """One line for the console and the manifest, or None when nothing was corrupt."""
    if not reports:
        return None
    shown = "; ".join(r.line() for r in reports[:limit])
    more = f"; and {len(reports) - limit} more" if len(reports) > limit else ""
    return (f"rebuilt {len(reports)} corrupt cache artifact(s): {shown}{more}; the corrupt copies are in "
            f"{Path(reports[0].quarantined).parent} until `defacebench cache clear`")
