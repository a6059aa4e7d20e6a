"""Content-addressed, crash-safe artifact cache shared by every pipeline stage.

Why: a benchmark over hundreds of scans and many plugins is thousands of expensive, pure stage
calls. Keying each artifact by the content of its inputs (never by file paths) makes a rerun with
nothing changed free, makes a changed parameter recompute exactly the stages below it, and lets
processes on different machines share one cache directory.

Layout::

    <root>/<stage>/<key[:2]>/<key>/          one complete artifact (files + COMPLETE_MARKER)
    <root>/.tmp/<stage>.<key[:16]>.<random>/ builds in progress (same filesystem as the artifacts)

A build writes into a fresh temp folder inside the root, the completion marker is written last,
and the folder is renamed into place in one atomic ``rename``. A killed build (SIGKILL included)
therefore leaves at most a temp folder, which is never returned and is swept once stale.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from defacebench.errors import CacheError

COMPLETE_MARKER = ".complete.json"
TEMP_DIRNAME = ".tmp"
KEY_SCHEMA = "defacebench-cache-v1"
STALE_AFTER_S = 3600.0
_STAGE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_KEY_RE = re.compile(r"^[0-9a-f]{64}$")
_MISSING = object()


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
                        "pass a content hash instead, e.g. defacebench.run.cache.file_hash(path)")
    raise TypeError(f"Cache.key cannot encode a {type(obj).__name__}: pass str/int/float/bool/None, "
                    "lists/tuples, dicts with str keys, numpy scalars or dataclasses; for files or "
                    "arrays pass a content hash (defacebench.run.cache.file_hash(path) or a sha256 of the bytes)")


def make_key(*parts: Any) -> str:
    """sha256 hex digest of the canonical JSON encoding of ``parts`` (see :meth:`Cache.key`)."""
    payload = {"schema": KEY_SCHEMA, "parts": _canonical(list(parts))}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


_HASH_MEMO: dict[tuple[str, int, int], str] = {}
_HASH_LOCK = threading.Lock()


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
    if not resolved.is_file():
        raise CacheError(f"{p}: is not a regular file; hash each file of a folder separately")
    memo_key = (str(resolved), st.st_size, st.st_mtime_ns)
    with _HASH_LOCK:
        hit = _HASH_MEMO.get(memo_key)
    if hit is not None:
        return hit
    with open(resolved, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    with _HASH_LOCK:
        _HASH_MEMO[memo_key] = digest
    return digest


@dataclasses.dataclass(frozen=True)
class StageInfo:
    """Complete artifacts of one stage: how many and how many bytes (markers included)."""

    stage: str
    entries: int
    bytes: int


@dataclasses.dataclass(frozen=True)
class CacheInfo:
    """What a cache folder holds, for ``defacebench cache info`` and the run manifest."""

    root: Path
    stages: tuple[StageInfo, ...]
    temp_dirs: int
    stale_temp_dirs: int
    temp_bytes: int

    @property
    def entries(self) -> int:
        """Total complete artifacts over all stages."""
        return sum(s.entries for s in self.stages)

    @property
    def bytes(self) -> int:
        """Total bytes of complete artifacts over all stages."""
        return sum(s.bytes for s in self.stages)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (root as a string)."""
        d = dataclasses.asdict(self)
        d["root"] = str(self.root)
        d["entries"], d["bytes"] = self.entries, self.bytes
        return d


def default_cache_dir() -> Path:
    """$DEFACEBENCH_CACHE if set, else ~/.cache/defacebench/cache."""
    env = os.environ.get("DEFACEBENCH_CACHE", "").strip()
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "defacebench" / "cache"


def _tree_bytes(path: Path) -> int:
    """Total size of the regular files under ``path`` (0 if it vanished meanwhile)."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except FileNotFoundError:
                pass  # removed by a concurrent clear
    return total


def _remove_tree(path: Path) -> None:
    """Remove a folder, tolerating a concurrent remover."""
    shutil.rmtree(path, ignore_errors=True)


def _file_list(folder: Path) -> list[str]:
    """Relative paths of the files a build wrote, sorted (recorded in the completion marker)."""
    out = []
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            out.append(os.path.relpath(os.path.join(dirpath, name), folder))
    return sorted(out)


def _is_stale(path: Path, now: float, max_age_s: float) -> bool:
    """True when nothing in a temp folder was modified for ``max_age_s`` seconds.

    The newest mtime in the whole tree counts, so a long build that keeps writing (a slow defacer
    working in a subfolder) is not mistaken for an abandoned one.
    """
    newest = 0.0
    for dirpath, _dirs, files in os.walk(path):
        for name in [".", *files]:
            try:
                newest = max(newest, os.lstat(os.path.join(dirpath, name)).st_mtime)
            except FileNotFoundError:
                pass
    return newest > 0.0 and now - newest > max_age_s


class Cache:
    """A content-addressed artifact store rooted at one folder (local or shared filesystem)."""

    key = staticmethod(make_key)

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        """Use ``root`` (created on first write); ``None`` means :func:`default_cache_dir`."""
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()

    def __repr__(self) -> str:
        """Cache('<root>')."""
        return f"Cache({str(self.root)!r})"

    # -- paths

    def _check(self, stage: str, key: str) -> None:
        """Reject stage names and keys that could escape the layout or collide with temp folders."""
        if not isinstance(stage, str) or not _STAGE_RE.match(stage):
            raise CacheError(f"cache stage name {stage!r} is invalid: use letters, digits, '_', '-', '.' "
                             "and do not start with '.' or '-'")
        if not isinstance(key, str) or not _KEY_RE.match(key):
            raise CacheError(f"cache key {key!r} for stage {stage!r} is not a sha256 hex digest; "
                             "make it with Cache.key(...)")

    def path(self, stage: str, key: str) -> Path:
        """Where the artifact of (stage, key) lives once complete (it may not exist)."""
        self._check(stage, key)
        return self.root / stage / key[:2] / key

    @property
    def temp_root(self) -> Path:
        """Folder of builds in progress; inside the root so the final rename stays on one filesystem."""
        return self.root / TEMP_DIRNAME

    # -- read

    def get(self, stage: str, key: str) -> Path | None:
        """The artifact folder of (stage, key) if it is complete, else None."""
        final = self.path(stage, key)
        return final if self._is_complete(final, stage, key) else None

    def _is_complete(self, folder: Path, stage: str, key: str) -> bool:
        """Complete = marker present, naming this stage and key, and every listed file still there."""
        try:
            meta = json.loads((folder / COMPLETE_MARKER).read_text())
        except (FileNotFoundError, NotADirectoryError):
            return False
        except (OSError, ValueError):
            return False  # unreadable or truncated marker: treat as absent and rebuild
        if not isinstance(meta, dict) or meta.get("key") != key or meta.get("stage") != stage:
            return False
        return all((folder / name).is_file() for name in meta.get("files", []))

    # -- write

    def get_or_build(self, stage: str, key: str, build: Callable[[Path], None]) -> Path:
        """Return the complete artifact of (stage, key), building it first if needed.

        ``build(tmpdir)`` writes the artifact's files into ``tmpdir``. Concurrent builders of one
        key (threads, processes, machines sharing the folder) all return the same winning folder;
        losers' temp folders are removed. If ``build`` raises, its temp folder is removed and the
        exception propagates; nothing is left that ``get`` would return.
        """
        hit = self.get(stage, key)
        if hit is not None:
            return hit
        tmp = self._new_temp(stage, key)
        try:
            build(tmp)
            self._write_marker(tmp, stage, key)
            return self._publish(tmp, stage, key)
        finally:
            if tmp.exists():
                _remove_tree(tmp)  # failed build, or we lost the race

    def _new_temp(self, stage: str, key: str) -> Path:
        """A fresh, private temp folder for one build."""
        self._check(stage, key)
        self.temp_root.mkdir(parents=True, exist_ok=True)
        # os.mkdir (not tempfile.mkdtemp) so the umask applies: workers of one cluster may run as
        # different users of one group and must be able to read each other's artifacts.
        tmp = self.temp_root / f"{stage}.{key[:16]}.{uuid.uuid4().hex}"
        tmp.mkdir()
        return tmp

    def _write_marker(self, tmp: Path, stage: str, key: str) -> None:
        """Write the completion marker last: its presence is what makes a folder an artifact."""
        if not tmp.is_dir():
            raise CacheError(f"{tmp}: the build for stage {stage!r} removed its own temp folder; "
                             "build functions must only write inside the folder they are given")
        meta = {"key": key, "stage": stage, "created": time.time(), "pid": os.getpid(),
                "files": _file_list(tmp)}
        (tmp / COMPLETE_MARKER).write_text(json.dumps(meta, indent=1))

    def _publish(self, tmp: Path, stage: str, key: str) -> Path:
        """Rename ``tmp`` into place atomically; if another builder won, return its artifact."""
        final = self.path(stage, key)
        for _attempt in range(5):
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(tmp, final)
                return final
            except FileNotFoundError:
                if not tmp.exists():
                    raise CacheError(f"{tmp}: the temp folder of this build was removed before it could "
                                     "be published (a `cache clear` with a zero stale age?); rerun") from None
                continue  # a concurrent clear removed the parent between mkdir and rename
            except OSError as e:
                if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise CacheError(f"{final}: cannot move the built artifact into place ({e}); "
                                     "check permissions and free space of the cache folder") from e
            if self._is_complete(final, stage, key):
                return final  # another builder won; the caller removes our temp folder
            self._quarantine(final)  # an incomplete leftover (not ours): move it aside, retry
        raise CacheError(f"{final}: could not publish the artifact after 5 attempts; another process "
                         f"keeps replacing or removing it. Run `defacebench cache clear --stage {stage}`")

    def _quarantine(self, folder: Path) -> None:
        """Move a broken artifact folder out of the way atomically, then delete it."""
        trash = self.temp_root / f"trash.{uuid.uuid4().hex}"
        try:
            os.rename(folder, trash)
        except FileNotFoundError:
            return
        except OSError:
            return  # it became complete meanwhile (rename raced); the caller rechecks
        _remove_tree(trash)

    # -- small artifacts

    def write_json(self, stage: str, key: str, obj: Any) -> Path:
        """Store a JSON-able object as the artifact (stage, key); returns the artifact folder."""
        text = json.dumps(obj, indent=1, sort_keys=True)
        return self.get_or_build(stage, key, lambda tmp: (tmp / "value.json").write_text(text))

    def read_json(self, stage: str, key: str, default: Any = _MISSING) -> Any:
        """The object stored by :meth:`write_json`; ``default`` (or CacheError) when absent."""
        path = self._value_path(stage, key, "value.json", default)
        return default if path is None else json.loads(path.read_text())

    def write_array(self, stage: str, key: str, array: np.ndarray) -> Path:
        """Store one numpy array (np.save, no pickles) as the artifact (stage, key)."""
        arr = np.asarray(array)
        return self.get_or_build(stage, key, lambda tmp: np.save(tmp / "value.npy", arr, allow_pickle=False))

    def read_array(self, stage: str, key: str, default: Any = _MISSING) -> Any:
        """The array stored by :meth:`write_array`; ``default`` (or CacheError) when absent."""
        path = self._value_path(stage, key, "value.npy", default)
        return default if path is None else np.load(path, allow_pickle=False)

    def _value_path(self, stage: str, key: str, name: str, default: Any) -> Path | None:
        """The value file of a complete small artifact; None (if a default is given) or CacheError."""
        folder = self.get(stage, key)
        if folder is not None and (folder / name).is_file():
            return folder / name
        if default is not _MISSING:
            return None
        raise CacheError(f"{self.path(stage, key)}: no complete {name} artifact for stage {stage!r}; "
                         "write it first (Cache.write_json / Cache.write_array)")

    # -- maintenance

    def stages(self) -> list[str]:
        """Names of the stage folders present, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _STAGE_RE.match(p.name))

    def _temp_dirs(self, stage: str | None = None) -> list[Path]:
        """Temp folders (builds in progress or abandoned), optionally only those of one stage."""
        if not self.temp_root.is_dir():
            return []
        out = [p for p in self.temp_root.iterdir() if p.is_dir()]
        if stage is not None:
            out = [p for p in out if p.name.startswith(f"{stage}.")]
        return sorted(out)

    def _stage_info(self, stage: str) -> StageInfo:
        """Count complete artifacts of one stage and their bytes."""
        entries = size = 0
        stage_dir = self.root / stage
        for shard in (p for p in stage_dir.iterdir() if p.is_dir()):
            for folder in (p for p in shard.iterdir() if p.is_dir()):
                if self._is_complete(folder, stage, folder.name):
                    entries += 1
                    size += _tree_bytes(folder)
        return StageInfo(stage=stage, entries=entries, bytes=size)

    def info(self, *, stale_after_s: float = STALE_AFTER_S) -> CacheInfo:
        """Per-stage entry counts and sizes, plus temp folders (and how many are stale)."""
        temps = self._temp_dirs()
        now = time.time()
        return CacheInfo(
            root=self.root,
            stages=tuple(self._stage_info(s) for s in self.stages()),
            temp_dirs=len(temps),
            stale_temp_dirs=sum(_is_stale(p, now, stale_after_s) for p in temps),
            temp_bytes=sum(_tree_bytes(p) for p in temps),
        )

    def sweep(self, *, stage: str | None = None, stale_after_s: float = STALE_AFTER_S) -> int:
        """Remove temp folders untouched for ``stale_after_s`` (abandoned by killed builds).

        Younger temp folders are left alone: they may belong to a build still running elsewhere.
        """
        now = time.time()
        removed = 0
        for p in self._temp_dirs(stage):
            if _is_stale(p, now, stale_after_s):
                _remove_tree(p)
                removed += 1
        return removed

    def clear(self, stage: str | None = None, *, stale_after_s: float = STALE_AFTER_S) -> int:
        """Delete every artifact (or those of one stage) and sweep stale temp folders.

        Returns the number of complete artifacts removed. Each stage folder is first renamed
        aside so a concurrent reader sees either the whole stage or none of it.
        """
        if stage is not None and not _STAGE_RE.match(stage):
            raise CacheError(f"cache stage name {stage!r} is invalid; see `defacebench cache info`")
        targets = [stage] if stage is not None else self.stages()
        removed = 0
        for name in targets:
            if not (self.root / name).is_dir():
                continue
            removed += self._stage_info(name).entries
            self.temp_root.mkdir(parents=True, exist_ok=True)
            trash = self.temp_root / f"trash.{uuid.uuid4().hex}"
            try:
                os.rename(self.root / name, trash)
            except FileNotFoundError:
                continue
            _remove_tree(trash)
        self.sweep(stage=stage, stale_after_s=stale_after_s)
        return removed
