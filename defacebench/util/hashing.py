"""Content hashes of files, memoised once per process for every layer (datasets, cache keys).

A file is identified by (resolved path, size, mtime_ns): the dataset fingerprint and the stages'
cache keys hash the same DICOM files, and with one memo each file is read once per run.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

_MEMO: dict[tuple[str, int, int], str] = {}
_LOCK = threading.Lock()


def sha256_of(resolved: Path, st: os.stat_result) -> str:
    """sha256 hex of the regular file at ``resolved`` (already resolved and stat-ed by the caller)."""
    key = (str(resolved), st.st_size, st.st_mtime_ns)
    with _LOCK:
        hit = _MEMO.get(key)
    if hit is not None:
        return hit
    with open(resolved, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    remember(resolved, st, digest)
    return digest


def remember(resolved: Path, st: os.stat_result, digest: str) -> None:
    """Record ``digest`` as the hash of the file at ``resolved`` with this stat."""
    with _LOCK:
        _MEMO[(str(resolved), st.st_size, st.st_mtime_ns)] = digest


def file_sha256(path: Path) -> str:
    """sha256 hex of a file's content (memoised)."""
    resolved = Path(path).resolve()
    return sha256_of(resolved, resolved.stat())
