"""Cache keys and content hashes: what a cached artifact is addressed by.

A key hashes the canonical JSON of its parts (never file locations), so a moved input hits its
artifact and an edited one misses it. :func:`file_hash` is the content hash of one file, memoised
per process by (path, size, mtime) because the same input is keyed by every stage of every
configuration; the cache also uses it to verify artifacts on read (see :mod:`defacebench.run.cache`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np

from defacebench.errors import CacheError
from defacebench.util.hashing import remember, sha256_of

KEY_SCHEMA = "defacebench-cache-v1"


def _canonical(obj: Any) -> Any:
    """Turn one key part into plain JSON data, or raise TypeError for anything ambiguous.

    Why so strict: a key must depend on content only. A Path (or an open file, an array) would key
    on a location or an identity, so a moved or edited input would silently hit a stale artifact.
    """
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, np.generic) and not isinstance(obj, (np.void, np.datetime64, np.timedelta64)):
        return _canonical(obj.item())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        cls = type(obj)
        return {"__dataclass__": f"{cls.__module__}.{cls.__qualname__}",
                "fields": _canonical(dataclasses.asdict(obj))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, dict):
        for k in obj:
            if not isinstance(k, str):
                raise TypeError(f"Cache.key: dict keys must be str, got {type(k).__name__} {k!r}; "
                                "convert the keys to strings before keying")
        return {k: _canonical(v) for k, v in obj.items()}
    if isinstance(obj, os.PathLike):
        raise TypeError(f"Cache.key got a path ({obj!s}): keys must not depend on file locations; "
                        "pass a content hash instead, e.g. defacebench.run.cache_keys.file_hash(path)")
    raise TypeError(f"Cache.key cannot encode a {type(obj).__name__}: pass str/int/float/bool/None, "
                    "lists/tuples, dicts with str keys, numpy scalars or dataclasses; for files or "
                    "arrays pass a content hash (defacebench.run.cache_keys.file_hash(path) or a sha256 of the bytes)")


def make_key(*parts: Any) -> str:
    """sha256 hex digest of the canonical JSON encoding of ``parts`` (see :meth:`Cache.key`)."""
    payload = {"schema": KEY_SCHEMA, "parts": _canonical(list(parts))}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()




def file_hash(path: str | os.PathLike[str]) -> str:
    """sha256 hex digest of a file's bytes, memoised in-process by (resolved path, size, mtime_ns).

    Why the memo: the same input volume is keyed by every stage of every configuration; rereading
    a 100 MB scan each time would dominate a warm run. Size + mtime_ns changes invalidate it.
    """
    p = Path(path)
    try:
        resolved = p.resolve(strict=True)
        st = resolved.stat()
    except (FileNotFoundError, NotADirectoryError) as e:
        raise CacheError(f"{p}: cannot hash a missing file ({e.strerror}); check the path") from e
    return stat_hash(resolved, st)


def stat_hash(resolved: Path, st: os.stat_result) -> str:
    """:func:`file_hash` of a path already resolved and stat-ed by the caller (no more syscalls on a
    memo hit). Why: verifying every file of every artifact on each read must stay cheap."""
    if not stat.S_ISREG(st.st_mode):
        raise CacheError(f"{resolved}: is not a regular file; hash each file of a folder separately")
    return sha256_of(resolved, st)


def remember_hash(resolved: Path, digest: str) -> None:
    """Record ``digest`` as the hash of the file at ``resolved`` as it is now (after a rename that
    kept its bytes).

    Why: an artifact is hashed once when it is published; its files then move from the temp folder
    to their final place, and the stage that reads them right away need not hash them again.
    """
    try:
        st = resolved.stat()
    except OSError:
        return
    remember(resolved, st, digest)
