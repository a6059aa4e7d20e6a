"""The run's ``manifest.json``: everything needed to know what produced a results folder.

Versions and params of every plugin (and the external tools behind them), the run settings, the
dataset path and content hash, the split and its seed, the git commit, the executor, package
versions, per-configuration statuses (passed / failed with the error / skipped with the reason),
dataset failures and the number of recognizer passes. It never contains DICOM patient metadata:
only subject ids (folder names) and hashes.
"""

from __future__ import annotations

import dataclasses
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from defacebench.contracts import KINDS
from defacebench.util.fsutil import atomic_write_json

PACKAGES = ("numpy", "scipy", "scikit-learn", "nibabel", "pydicom", "dicom2nifti", "dcm2niix", "dlib-bin",
            "deepface", "onnxruntime", "opencv-contrib-python-headless", "antspyx", "quickshear", "pydeface",
            "vtk", "dask", "distributed")


def git_commit(path: Path | None = None) -> str | None:
    """The commit of the project checkout (None outside git), with ``+dirty`` for local changes."""
    cwd = path or Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def package_versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def plugin_records(registry) -> dict[str, list[dict]]:
    """Every registered plugin with version, params, source and availability."""
    out: dict[str, list[dict]] = {}
    for kind in KINDS:
        rows = []
        for entry in registry.all_entries(kind):
            avail = entry.plugin.available()
            params = entry.plugin.params
            rows.append({
                "name": entry.name, "version": str(entry.plugin.version), "source": entry.source,
                "params": dataclasses.asdict(params) if dataclasses.is_dataclass(params) else repr(params),
                "available": avail.ok, "reason": avail.reason,
            })
        rows += [{"name": p.name, "source": p.source, "available": False, "reason": f"failed to load: {p.error}"}
                 for p in registry.problems if p.kind == kind]
        out[kind] = rows
    return out


def build_manifest(*, run_config, registry, statuses: dict, run=None) -> dict:
    """The manifest as a JSON-able dict; ``run`` is the BenchmarkRun when one was started."""
    manifest = {
        "run": run_config.to_dict(),
        "git_commit": git_commit(),
        "packages": package_versions(),
        "plugins": plugin_records(registry),
        "configurations": statuses,
    }
    if run is not None and run.started:
        split = run.split_if_made()
        manifest.update({
            "run_dir": str(run.run_dir),
            "dataset": {"path": str(run.config.dataset), "fingerprint": run.dataset.fingerprint(),
                        "subjects": [r.subject_id for r in run.subjects],
                        "roles": {r.subject_id: {"probe": r.probe.acq_id, "gallery": r.gallery.acq_id,
                                                 "scenario": r.scenario} for r in run.roles}},
            "dataset_failures": [f.__dict__ for f in run.dataset_failures()],
            "split": None if split is None else {"seed": split.seed, "calibration_ids": list(split.calibration_ids),
                                                 "heldout_ids": list(split.heldout_ids)},
            "executor": run.executor_description(),
            "embeddings_computed": run.embeddings_computed,
            "embeddings_per_configuration": {cid: o.embeddings for cid, o in run.outcomes.items()},
            "seconds": {cid: round(o.seconds, 2) for cid, o in run.outcomes.items()},
        })
    return manifest


def write_manifest(path: Path, manifest: dict) -> Path:
    """Write atomically (a reader never sees half a manifest)."""
    return atomic_write_json(Path(path), manifest)
