"""Adversarial cases of the stage cache (issue 11, items 1, 5 and the cache part of 12).

1. ``cache clear/info/sweep`` pointed at a folder the cache did not create (a DICOM dataset)
   refuse with one line naming it; nothing is deleted; counts are of what was really removed.
5. A truncated or edited artifact is detected on read, quarantined, reported and rebuilt.
12. A read-only cache folder and a full disk give one line naming the cache folder, and leave no
   partial artifact (real tmpfs in a private mount namespace, no mocks).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from adversarial_helpers import needs_namespaces, run_on_small_fs, tiny_ct
from defacebench.cli import cache as cache_cli
from defacebench.cli import main
from defacebench.data.dicom_write import SeriesInfo, write_series
from defacebench.errors import CacheError
from defacebench.run.cache import COMPLETE_MARKER, Cache
from defacebench.run.cache_check import summary
from defacebench.run.cache_root import ROOT_MARKER, TAG_FILE

KEY = Cache.key("adversarial", 1)


def dicom_dataset(root: Path, n: int = 2) -> list[Path]:
    """A real DICOM dataset root: one folder of slices per subject; returns every file."""
    data, affine = tiny_ct(shape=(8, 6, 4))
    for s in range(n):
        write_series(data, affine, root / f"00{s + 1}", SeriesInfo(uid_key=f"adv-{s}"))
    (root / "README.txt").write_text("the study's notes")
    return sorted(p for p in root.rglob("*") if p.is_file())


def fill(cache: Cache, n: int = 3) -> list[Path]:
    return [cache.get_or_build("render", Cache.key("r", i), lambda tmp: (tmp / "v.png").write_bytes(b"x" * 100))
            for i in range(n)]


# ------------------------------------------------------------------------------------------------ 1


@pytest.mark.parametrize("command", [["clear", "--yes"], ["clear", "--stage", "001", "--yes"], ["info"], ["sweep"]])
def test_cache_commands_refuse_a_dicom_dataset_root(tmp_path, capsys, command):
    files = dicom_dataset(tmp_path / "data")
    code = main(["cache", command[0], "--cache-dir", str(tmp_path / "data"), *command[1:]])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and str(tmp_path / "data") in err
    assert "not a defacebench cache" in err and ROOT_MARKER in err  # what is wrong and how to mark a real one
    assert sorted(p for p in (tmp_path / "data").rglob("*") if p.is_file()) == files  # nothing deleted


def test_writes_into_a_foreign_folder_are_refused_before_anything_is_written(tmp_path):
    files = dicom_dataset(tmp_path / "data")
    cache = Cache(tmp_path / "data")
    with pytest.raises(CacheError, match="not a defacebench cache"):
        cache.get_or_build("render", KEY, lambda tmp: (tmp / "v.png").write_bytes(b"x"))
    with pytest.raises(CacheError, match="not a defacebench cache"):
        cache.prepare()
    assert sorted(p for p in (tmp_path / "data").rglob("*")) == sorted(
        set(files) | {p.parent for p in files if p.parent != tmp_path / "data"})


def test_a_new_root_is_marked_and_tagged_and_clear_counts_only_what_went(tmp_path, capsys):
    cache = Cache(tmp_path / "c")
    fill(cache)
    assert (cache.root / ROOT_MARKER).is_file()
    assert (cache.root / TAG_FILE).read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")
    leftover = cache.path("render", Cache.key("half"))  # an incomplete folder: not an artifact
    leftover.mkdir(parents=True)
    notes = cache.root / "notes"  # a user's folder inside a real cache: not created by the cache
    notes.mkdir()
    (notes / "todo.txt").write_text("keep me")
    assert main(["cache", "clear", "--cache-dir", str(cache.root), "--yes"]) == 0
    assert "removed 3 artifact(s)" in capsys.readouterr().out
    assert (notes / "todo.txt").read_text() == "keep me" and not (cache.root / "render").exists()


def test_an_unmarked_cache_of_an_older_version_is_recognised_by_its_layout(tmp_path, capsys):
    cache = Cache(tmp_path / "old")
    fill(cache)
    (cache.root / ROOT_MARKER).unlink()
    (cache.root / TAG_FILE).unlink()
    assert main(["cache", "info", "--cache-dir", str(cache.root)]) == 0
    assert (cache.root / ROOT_MARKER).is_file()  # adopted: marked for next time
    (cache.root / ROOT_MARKER).unlink()
    (cache.root / "render" / "x.txt").write_text("?")  # no longer the cache's layout: refused
    assert main(["cache", "clear", "--cache-dir", str(cache.root), "--yes"]) == 2
    err = capsys.readouterr().err
    assert "x.txt" in err and f"touch {cache.root / ROOT_MARKER}" in err
    (cache.root / ROOT_MARKER).touch()  # the documented fix
    assert main(["cache", "clear", "--cache-dir", str(cache.root), "--yes"]) == 0
    assert (cache.root / "render" / "x.txt").exists()  # a stage folder with foreign content stays


def test_missing_and_empty_folders_are_harmless(tmp_path, capsys):
    # a missing folder is named as such (exit 2, nothing created; issue 25), not shown as an empty cache
    assert cache_cli.run(cache_cli_args("info", tmp_path / "none")) == 2
    assert "no cache here" in capsys.readouterr().err and not (tmp_path / "none").exists()
    (tmp_path / "empty").mkdir()
    assert cache_cli.run(cache_cli_args("clear", tmp_path / "empty", "--yes")) == 0
    assert "removed 0 artifact(s)" in capsys.readouterr().out


def cache_cli_args(command: str, root: Path, *extra: str):
    from defacebench.cli import build_parser

    return build_parser().parse_args(["cache", command, "--cache-dir", str(root), *extra])


# ------------------------------------------------------------------------------------------------ 5


def test_a_truncated_artifact_is_quarantined_reported_and_rebuilt(tmp_path):
    cache = Cache(tmp_path / "c")
    start = time.time()
    calls = []

    def build(tmp: Path) -> None:
        calls.append(1)
        (tmp / "volume.bin").write_bytes(bytes(range(256)) * 40)

    path = cache.get_or_build("deface", KEY, build)
    with open(path / "volume.bin", "r+b") as f:
        f.truncate(1000)
    assert cache.get("deface", KEY) is None
    assert (cache.get_or_build("deface", KEY, build) / "volume.bin").read_bytes() == bytes(range(256)) * 40
    assert len(calls) == 2
    reports = cache.corruption_reports(since=start)
    assert [(r.stage, r.key) for r in reports] == [("deface", KEY)]
    assert "volume.bin has 1000 bytes, 10240 were written" in reports[0].problem
    assert Path(reports[0].quarantined).is_dir()  # kept for inspection
    line = summary(reports)
    assert line.startswith("rebuilt 1 corrupt cache artifact(s): deface/") and "\n" not in line
    assert cache.corruption_reports(since=time.time() + 1) == ()
    assert cache.info().quarantined == 1
    cache.clear()
    assert cache.info().quarantined == 0


def test_same_size_edits_and_broken_markers_are_detected(tmp_path):
    cache = Cache(tmp_path / "c")
    path = cache.get_or_build("render", KEY, lambda tmp: (tmp / "view.png").write_bytes(b"A" * 64))
    (path / "view.png").write_bytes(b"B" * 64)
    later = time.time() + 5  # a real edit happens later than the write; coarse clocks may not show it
    os.utime(path / "view.png", (later, later))
    assert cache.get("render", KEY) is None
    path = cache.get_or_build("render", KEY, lambda tmp: (tmp / "view.png").write_bytes(b"A" * 64))
    (path / COMPLETE_MARKER).write_text('{"key": "')  # a truncated marker
    assert cache.get("render", KEY) is None
    problems = [r.problem for r in cache.corruption_reports()]
    assert problems == ["view.png changed since it was written (sha256 differs)",
                        "its completion marker is unreadable (JSONDecodeError)"]


def test_an_artifact_of_an_older_version_gets_checksums_on_first_read(tmp_path):
    cache = Cache(tmp_path / "c")
    path = cache.get_or_build("render", KEY, lambda tmp: (tmp / "view.png").write_bytes(b"A" * 64))
    meta = json.loads((path / COMPLETE_MARKER).read_text())
    (path / COMPLETE_MARKER).write_text(json.dumps({**meta, "files": ["view.png"]}))  # the old format
    assert cache.get("render", KEY) == path
    assert json.loads((path / COMPLETE_MARKER).read_text())["files"]["view.png"]["size"] == 64
    with open(path / "view.png", "r+b") as f:
        f.truncate(10)
    assert cache.get("render", KEY) is None


def test_a_truncated_converted_volume_is_rebuilt_by_the_convert_stage(tmp_path):
    """The issue's case end to end through the real convert stage: the cached volume is truncated
    between two runs; the second run must not read it, and must say so."""
    from defacebench.data.dataset import Acquisition
    from defacebench.data.convert import ConversionParams
    from defacebench.run.stages import ConvertTask, StageEnv, convert_task

    data, affine = tiny_ct()
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "s1.nii.gz")
    task = ConvertTask(StageEnv(str(tmp_path / "cache")), Acquisition("s1", "", tmp_path / "s1.nii.gz", "nifti"),
                       ConversionParams())
    first = convert_task(task)
    size = Path(first.path).stat().st_size
    with open(first.path, "r+b") as f:
        f.truncate(size // 2)
    start = time.time() - 1
    second = convert_task(task)
    assert second.hash == first.hash and Path(second.path).stat().st_size == size
    assert np.array_equal(np.asarray(nib.load(second.path).dataobj), np.asarray(nib.load(first.path).dataobj))
    assert [r.stage for r in Cache(tmp_path / "cache").corruption_reports(since=start)] == ["convert"]


def _corrupt_reader(root: str) -> None:
    Cache(root).get("render", KEY)


def test_reports_from_worker_processes_reach_the_parent(tmp_path):
    cache = Cache(tmp_path / "c")
    path = cache.get_or_build("render", KEY, lambda tmp: (tmp / "view.png").write_bytes(b"A" * 64))
    (path / "view.png").write_bytes(b"A" * 3)
    proc = multiprocessing.get_context("spawn").Process(target=_corrupt_reader, args=(str(cache.root),))
    proc.start()
    proc.join(timeout=60)
    assert proc.exitcode == 0
    reports = cache.corruption_reports()
    assert len(reports) == 1 and reports[0].pid == proc.pid


# ------------------------------------------------------------------------------------------------ 12


@needs_namespaces
def test_a_read_only_cache_folder_gives_one_line_naming_it(tmp_path):
    mount = tmp_path / "ro"
    script = f"""
        import json
        from defacebench.run.cache import Cache
        out = {{}}
        for name, call in (("prepare", lambda c: c.prepare()),
                           ("build", lambda c: c.get_or_build("render", Cache.key(1), lambda t: None))):
            try:
                call(Cache("{mount}/cache"))
            except Exception as exc:
                out[name] = [type(exc).__name__, str(exc)]
        print(json.dumps(out))
    """
    out = run_on_small_fs(mount, script, setup=f"import os; os.mkdir('{mount}/cache')", readonly=True)
    for name in ("prepare", "build"):
        kind, message = out[name]
        assert kind == "StorageError" and "\n" not in message
        assert message.startswith(f"{mount}/cache") and "read-only file system" in message and "Fix:" in message


@needs_namespaces
def test_a_full_disk_gives_one_line_and_leaves_no_partial_artifact(tmp_path):
    mount = tmp_path / "full"
    script = f"""
        import json, os
        from defacebench.run.cache import Cache
        cache = Cache("{mount}/cache")
        try:
            cache.get_or_build("deface", Cache.key(1), lambda t: (t / "v.nii").write_bytes(b"x" * 400_000))
            out = {{"error": None}}
        except Exception as exc:
            out = {{"error": [type(exc).__name__, str(exc)]}}
        out["files"] = sorted(os.path.relpath(os.path.join(d, f), "{mount}/cache")
                              for d, _, fs in os.walk("{mount}/cache") for f in fs)
        out["get"] = str(cache.get("deface", Cache.key(1)))
        print(json.dumps(out))
    """
    out = run_on_small_fs(mount, script, size_kb=128)
    kind, message = out["error"]
    assert kind == "StorageError" and "\n" not in message
    assert message.startswith(f"{mount}/cache") and "no space left on device" in message
    assert out["get"] == "None" and out["files"] == [ROOT_MARKER, TAG_FILE]


@needs_namespaces
def test_a_full_cache_during_defacing_is_an_error_not_a_cached_defacing_failure(tmp_path):
    """A transient full disk must not be stored as "this defacer failed on this subject" forever."""
    data = np.random.default_rng(0).normal(0, 300, (48, 40, 36)).astype(np.float32)  # ~250 KB compressed
    nib.save(nib.Nifti1Image(data, tiny_ct()[1]), tmp_path / "s1.nii.gz")
    mount = tmp_path / "small"
    script = f"""
        import json, os
        from defacebench.anatomy.cleanup import CleanupParams
        from defacebench.run.cache import file_hash
        from defacebench.run.stages import DefaceTask, StageEnv, deface_task
        volume = "{tmp_path / 's1.nii.gz'}"
        task = DefaceTask(StageEnv("{mount}/cache"), volume, file_hash(volume), "none", CleanupParams(policy="none"))
        try:
            out = {{"result": deface_task(task).ok}}
        except Exception as exc:
            out = {{"error": [type(exc).__name__, str(exc)]}}
        out["markers"] = sum(".complete.json" in fs for _, _, fs in os.walk("{mount}/cache"))
        print(json.dumps(out))
    """
    out = run_on_small_fs(mount, script, size_kb=160)
    assert out["markers"] == 0, out  # nothing cached
    kind, message = out["error"]
    assert kind == "StorageError" and message.startswith(f"{mount}/cache") and "no space left" in message
