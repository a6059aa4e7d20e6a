"""Content-addressed, crash-safe, self-checking artifact cache shared by every pipeline stage.

Why: a benchmark over hundreds of scans and many plugins is thousands of expensive, pure stage
calls. Keying each artifact by the content of its inputs (never by file paths,
:mod:`defacebench.run.cache_keys`) makes a rerun with nothing changed free, makes a changed
parameter recompute exactly the stages below it, and lets processes on different machines share
one cache directory.

Layout::

    <root>/.defacebench-cache                 marks the folder as a cache root (cache_root)
    <root>/<stage>/<key[:2]>/<key>/           one complete artifact (files + COMPLETE_MARKER)
    <root>/.tmp/<stage>.<key[:16]>.<random>/  builds in progress (same filesystem as the artifacts)
    <root>/.quarantine/<time>.<stage>.<key16>.<random>[.json]   corrupt artifacts moved aside + report

A build writes into a fresh temp folder inside the root; the completion marker, listing every
file with its size and sha256, is written last, and the folder is renamed into place in one atomic
``rename``. A killed build (SIGKILL included) therefore leaves at most a temp folder, which is
never returned and is swept once stale. Reads verify the files against the marker
(:mod:`defacebench.run.cache_check`): a corrupt artifact is quarantined, reported and rebuilt.
"""

from __future__ import annotations

import errno
import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from defacebench.errors import CacheError
from defacebench.run import cache_admin, cache_check, cache_root
from defacebench.run.cache_admin import COMPLETE_MARKER, STALE_AFTER_S, CacheInfo, StageInfo, remove_tree
from defacebench.run.cache_check import CorruptArtifact
from defacebench.run.cache_keys import KEY_SCHEMA, file_hash, make_key
from defacebench.run.cache_root import KEY_RE, QUARANTINE_DIRNAME, STAGE_RE, TEMP_DIRNAME
from defacebench.util.fsutil import storage_error, storage_errors

__all__ = ["COMPLETE_MARKER", "KEY_SCHEMA", "STALE_AFTER_S", "TEMP_DIRNAME", "Cache", "CacheInfo",
           "CorruptArtifact", "StageInfo", "default_cache_dir", "file_hash", "make_key"]

_MISSING = object()


def default_cache_dir() -> Path:
    """$DEFACEBENCH_CACHE if set, else ~/.cache/defacebench/cache."""
    env = os.environ.get("DEFACEBENCH_CACHE", "").strip()
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "defacebench" / "cache"


class Cache:
    """A content-addressed artifact store rooted at one folder (local or shared filesystem)."""

    key = staticmethod(make_key)

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        """Use ``root`` (created and marked on first write); ``None`` means :func:`default_cache_dir`.

        Nothing touches the disk here: workers make a Cache per task.
        """
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self._root_ready = False
        self._real_root: Path | None = None

    def __repr__(self) -> str:
        """Cache('<root>')."""
        return f"Cache({str(self.root)!r})"

    # -- paths

    def _check(self, stage: str, key: str) -> None:
        """Reject stage names and keys that could escape the layout or collide with temp folders."""
        if not isinstance(stage, str) or not STAGE_RE.match(stage):
            raise CacheError(f"cache stage name {stage!r} is invalid: use letters, digits, '_', '-', '.' "
                             "and do not start with '.' or '-'")
        if not isinstance(key, str) or not KEY_RE.match(key):
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

    @property
    def quarantine_root(self) -> Path:
        """Folder where corrupt artifacts are moved aside (with a JSON report each)."""
        return self.root / QUARANTINE_DIRNAME

    def prepare(self) -> None:
        """Create and mark the root, or check that an existing folder is a cache; then prove it is
        writable. Call before long work: a read-only or foreign cache folder fails at once
        (CacheError / StorageError, one line naming the folder)."""
        from defacebench.util.fsutil import ensure_writable_dir

        self._prepare_root()
        ensure_writable_dir(self.temp_root, "the cache's temp folder")

    def _prepare_root(self) -> None:
        if not self._root_ready:
            with storage_errors(self.root, "the cache root and its marker"):
                cache_root.prepare_for_writes(self.root)
            self._root_ready = True

    # -- read

    def get(self, stage: str, key: str) -> Path | None:
        """The artifact folder of (stage, key) if it is complete and intact, else None.

        An artifact whose files no longer match its marker is quarantined and reported (see
        :meth:`corruption_reports`); the caller then rebuilds it like a miss.
        """
        final = self.path(stage, key)
        why = self._problem(final, stage, key)
        if why is None:
            return final
        if why != "absent":
            self._quarantine(final, stage, key, why)
        return None

    def _problem(self, folder: Path, stage: str, key: str, *, upgrade: bool = True) -> str | None:
        """None for a complete, intact artifact; "absent" when there is no complete artifact (no
        folder or no marker: a leftover, not corruption); else what is corrupt."""
        try:
            meta = json.loads((folder / COMPLETE_MARKER).read_text())
        except (FileNotFoundError, NotADirectoryError):
            return "absent"
        except (OSError, ValueError) as exc:
            return f"its completion marker is unreadable ({type(exc).__name__})"
        if not isinstance(meta, dict) or meta.get("key") != key or meta.get("stage") != stage:
            return "its completion marker names another stage or key"
        why = cache_check.problem(self._real(folder), meta.get("files"), resolved=True)
        if why is None and upgrade and isinstance(meta.get("files"), list):
            self._upgrade_marker(folder, meta)
        return why

    def _real(self, folder: Path) -> Path:
        """``folder`` (inside the root) with the root's symlinks resolved, the root resolved once:
        the folders below it are the cache's own, never symlinks."""
        if self._real_root is None:
            self._real_root = self.root.resolve()
        return self._real_root / folder.relative_to(self.root)

    def _upgrade_marker(self, folder: Path, meta: dict) -> None:
        """Add sizes and checksums to a marker written before checksums existed (trust on first use),
        so later corruption of this artifact is detected. A read-only cache keeps the old marker."""
        meta = {**meta, "schema": cache_check.MARKER_SCHEMA,
                "files": cache_check.describe_files(folder, COMPLETE_MARKER)}
        tmp = folder / f".{COMPLETE_MARKER}.{uuid.uuid4().hex}"
        try:
            tmp.write_text(json.dumps(meta, indent=1))
            os.replace(tmp, folder / COMPLETE_MARKER)
        except OSError:
            tmp.unlink(missing_ok=True)

    def corruption_reports(self, since: float = 0.0) -> tuple[CorruptArtifact, ...]:
        """Artifacts found corrupt, quarantined and rebuilt since ``since`` (``time.time()`` at the
        start of a run), by any process sharing this cache; oldest first."""
        return cache_check.read_reports(self.quarantine_root, since)

    def corruption_summary(self, since: float = 0.0) -> str | None:
        """One line for the console and the manifest ("rebuilt N corrupt cache artifact(s): stage/key
        (problem); ..."), or None when nothing was found corrupt since ``since``."""
        return cache_check.summary(self.corruption_reports(since))

    # -- write

    def get_or_build(self, stage: str, key: str, build: Callable[[Path], None]) -> Path:
        """Return the complete artifact of (stage, key), building it first if needed.

        ``build(tmpdir)`` writes the artifact's files into ``tmpdir``. Concurrent builders of one
        key (threads, processes, machines sharing the folder) all return the same winning folder;
        losers' temp folders are removed. If ``build`` raises, its temp folder is removed and the
        exception propagates; nothing is left that ``get`` would return. A read-only cache or a full
        disk raises StorageError naming the cache folder.
        """
        hit = self.get(stage, key)
        if hit is not None:
            return hit
        with storage_errors(self.root, f"a {stage!r} artifact into the cache"):
            tmp = self._new_temp(stage, key)
            try:
                build(tmp)
                files = self._write_marker(tmp, stage, key)
                return self._publish(tmp, stage, key, files)
            finally:
                if tmp.exists():
                    remove_tree(tmp)  # failed build, or we lost the race

    def _new_temp(self, stage: str, key: str) -> Path:
        """A fresh, private temp folder for one build."""
        self._check(stage, key)
        self._prepare_root()
        self.temp_root.mkdir(parents=True, exist_ok=True)
        # os.mkdir (not tempfile.mkdtemp) so the umask applies: workers of one cluster may run as
        # different users of one group and must be able to read each other's artifacts.
        tmp = self.temp_root / f"{stage}.{key[:16]}.{uuid.uuid4().hex}"
        tmp.mkdir()
        return tmp

    def _write_marker(self, tmp: Path, stage: str, key: str) -> dict[str, dict]:
        """Write the completion marker last: its presence is what makes a folder an artifact, and
        its per-file sizes and checksums are what reads verify. Returns the file list."""
        if not tmp.is_dir():
            raise CacheError(f"{tmp}: the build for stage {stage!r} removed its own temp folder; "
                             "build functions must only write inside the folder they are given")
        files = cache_check.describe_files(tmp, COMPLETE_MARKER)
        meta = {"key": key, "stage": stage, "schema": cache_check.MARKER_SCHEMA, "pid": os.getpid(),
                "created": time.time(), "files": files}
        # no fsync: the build's own files are not synced either; after a power loss the checksums,
        # not the marker's durability, are what catch a half-written artifact
        (tmp / COMPLETE_MARKER).write_text(json.dumps(meta, indent=1))
        return files

    def _publish(self, tmp: Path, stage: str, key: str, files: dict[str, dict]) -> Path:
        """Rename ``tmp`` into place atomically; if another builder won, return its artifact."""
        final = self.path(stage, key)
        for _attempt in range(5):
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(tmp, final)
                cache_check.remember(final, files)  # only the winner's digests describe these files
                return final
            except FileNotFoundError:
                if not tmp.exists():
                    raise CacheError(f"{tmp}: the temp folder of this build was removed before it could "
                                     "be published (a `cache clear` with a zero stale age?); rerun") from None
                continue  # a concurrent clear removed the parent between mkdir and rename
            except OSError as e:
                if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise storage_error(e, self.root, f"the {stage!r} artifact into place") or CacheError(
                        f"{final}: cannot move the built artifact into place ({e}); check the cache folder") from e
            why = self._problem(final, stage, key)
            if why is None:
                return final  # another builder won; the caller removes our temp folder
            self._quarantine(final, stage, key, why)  # a corrupt or incomplete leftover: move it aside
        raise CacheError(f"{final}: could not publish the artifact after 5 attempts; another process "
                         f"keeps replacing or removing it. Run `defacebench cache clear --stage {stage}`")

    def _quarantine(self, folder: Path, stage: str, key: str, why: str) -> None:
        """Move a broken artifact folder out of the way atomically; keep and report a corrupt one.

        A folder without a marker is an abandoned leftover and is deleted. If another process
        replaced the folder with a good artifact between our check and the rename, it goes back.
        """
        name = cache_check.quarantine_name(stage, key)
        aside = self.quarantine_root / name
        try:
            aside.parent.mkdir(parents=True, exist_ok=True)
            os.rename(folder, aside)
        except OSError:
            return  # gone meanwhile, or it became complete (rename raced), or a read-only cache
        if self._problem(aside, stage, key, upgrade=False) is None:
            try:
                os.rename(aside, folder)  # a concurrent rebuild we must not throw away
            except OSError:
                remove_tree(aside)  # another good copy is in place already
            return
        if why == "absent":
            remove_tree(aside)
            return
        try:
            cache_check.write_report(self.quarantine_root, name, stage, key, why)
        except OSError:
            pass  # the artifact is out of the way; a report is best effort on a failing disk

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

    # -- maintenance (defacebench.run.cache_admin; each refuses a folder that is not a cache root)

    def stages(self) -> list[str]:
        """Names of the stage folders present, sorted."""
        cache_root.recognise(self.root)
        return cache_admin.stages(self.root)

    def info(self, *, stale_after_s: float = STALE_AFTER_S) -> CacheInfo:
        """Per-stage entry counts and sizes, plus temp folders (and how many are stale)."""
        return cache_admin.info(self.root, stale_after_s=stale_after_s)

    def sweep(self, *, stage: str | None = None, stale_after_s: float = STALE_AFTER_S) -> int:
        """Remove temp folders untouched for ``stale_after_s`` (abandoned by killed builds)."""
        return cache_admin.sweep(self.root, stage=stage, stale_after_s=stale_after_s)

    def clear(self, stage: str | None = None, *, stale_after_s: float = STALE_AFTER_S) -> int:
        """Delete every artifact (or those of one stage); returns how many complete artifacts went."""
        return cache_admin.clear(self.root, stage, stale_after_s=stale_after_s)
