"""Atomic file writes, and one-line errors when a folder cannot be written.

A reader never sees a half-written result file, even after SIGKILL or a full disk: data goes to a
temp file in the same folder, is flushed, and only then renamed over the target; on any failure
the temp file is removed. Failed writes caused by the storage (read-only, permission denied,
disk full, quota) become :class:`~defacebench.errors.StorageError` naming the folder and the fix,
instead of a long traceback.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from defacebench.errors import StorageError

_FULL = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
         errno.EFBIG: "file too large for this file system or limit"}
_DENIED = {errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
           errno.EROFS: "read-only file system"}


def storage_error(exc: OSError, folder: Path, what: str) -> StorageError | None:
    """A one-line StorageError for a write that failed because of the storage, else None.

    It names ``folder`` (the caller's output folder), not ``exc.filename``: for copies the OS error
    often carries the *source* file's name, which would send the user to the wrong disk.
    """
    if exc.errno in _FULL:
        fix = "free space there, or write to another disk"
        reason = _FULL[exc.errno]
    elif exc.errno in _DENIED:
        fix = "make the folder writable, or choose another folder"
        reason = _DENIED[exc.errno]
    else:
        return None
    return StorageError(f"{folder}: cannot write {what} ({reason}). Fix: {fix}")


def is_storage_failure(exc: BaseException) -> bool:
    """True for a failure of the storage itself (full, over quota, read-only), whoever hit it.

    Why: such a failure is transient and says nothing about the tool that was writing; the
    pipeline must not record it as, say, "this defacer failed on this subject" in the cache.
    """
    return isinstance(exc, StorageError) or (isinstance(exc, OSError) and exc.errno in (*_FULL, errno.EROFS))


@contextmanager
def storage_errors(folder: Path, what: str) -> Iterator[None]:
    """Turn storage failures inside the block into :func:`storage_error`; others pass through."""
    try:
        yield
    except StorageError:
        raise
    except OSError as exc:
        err = storage_error(exc, Path(folder), what)
        if err is None:
            raise
        raise err from exc


def ensure_writable_dir(folder: Path, what: str) -> Path:
    """Create ``folder`` if needed and prove it is writable (a probe file is written and removed).

    Call before long work so a read-only results or cache folder fails in the first second, not
    after an hour of computing. Raises StorageError naming the folder.
    """
    folder = Path(folder)
    with storage_errors(folder, what):
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-probe.{secrets.token_hex(6)}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        os.close(fd)
        probe.unlink()
    return folder


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to a temp file in ``path``'s folder, fsync it, then rename over ``path``."""
    path = Path(path)
    with storage_errors(path.parent, path.name):
        path.parent.mkdir(parents=True, exist_ok=True)
        # os.open with 0o666 honours the umask (mkstemp would leave results readable by their owner only)
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return path


def atomic_copy(src: Path, dst: Path) -> Path:
    """Copy ``src`` to ``dst`` atomically (temp file in ``dst``'s folder, then rename)."""
    dst = Path(dst)
    with storage_errors(dst.parent, dst.name):
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.parent / f".{dst.name}.{secrets.token_hex(6)}.tmp"
        try:
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return dst


def atomic_write_text(path: Path, text: str) -> Path:
    """Atomically write ``text`` (UTF-8)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj) -> Path:
    """Atomically write ``obj`` as indented JSON (non-JSON values via ``str``)."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
