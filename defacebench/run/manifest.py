"""The run's ``manifest.json``: everything needed to know what produced a results folder.

Versions and params of every plugin (and the external tools behind them), the run settings, the
dataset path and content hash, roles and dropped subjects, the split, the git commit, the executor,
package versions, per-item statuses (passed / failed with the error / skipped with the reason /
defacer_failed), per-stage timing and the number of recognizer passes. It never contains DICOM
patient metadata: only subject ids (folder names) and hashes.
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
            "vtk", "dask", "distributed", "SimpleITK")


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
    from defacebench.run.stage_base import tool_version

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
                **({"tool_version": tool_version(entry.plugin)} if kind == "defacers" and avail.ok else {}),
            })
        rows += [{"name": p.name, "source": p.source, "available": False, "reason": f"failed to load: {p.error}"}
                 for p in registry.problems if p.kind == kind]
        out[kind] = rows
    return out


def build_manifest(session) -> dict:
    """The manifest of a :class:`~defacebench.run.session.Session` as a JSON-able dict."""
    manifest = {
        "run": session.config.to_dict(),
        "git_commit": git_commit(),
        "packages": package_versions(),
        "plugins": plugin_records(session.registry),
        "configurations": {key: status.to_dict() for key, status in session.statuses.items()},
    }
    run = session._run
    if run is None or not run.started:
        return manifest
    outcomes = {**session.outcomes, **session.extra_outcomes}
    manifest.update({
        "run_dir": str(run.run_dir),
        "dataset": {"path": str(run.config.dataset), "fingerprint": run.dataset.fingerprint(),
                    "subjects": [r.subject_id for r in run.roles],
                    "roles": {r.subject_id: {"probe": r.probe.acq_id, "other": r.other.acq_id if r.other else None}
                              for r in run.roles},
                    "conversion": {a: (v.record if v.ok else {"error": v.error}) for a, v in run.volumes().items()},
                    "ignored": [str(p) for p in run.dataset.ignored]},  # the harness's own outputs in it
        "dataset_failures": [{"subject_id": f.subject_id, "path": str(f.path), "reason": f.reason}
                             for f in run.dataset.failures],
        "controls_added": sorted(session.extra_outcomes),
        "calibration": session.calibration,
        "splits": {key: o.evaluation.split.to_dict() for key, o in outcomes.items()},
        "executor": run.executor_description(),
        "embeddings_computed": run.embeddings_computed,
        "embeddings_per_configuration": {key: o.embeddings for key, o in outcomes.items()},
        "seconds": {key: round(o.seconds, 2) for key, o in outcomes.items()},
        "stages": run.times.to_dict(),
        "cache_corruption": [dataclasses.asdict(r) for r in run.cache.corruption_reports(since=run.started_at)],
    })
    return manifest


def write_manifest(path: Path, manifest: dict) -> Path:
    """Write atomically (a reader never sees half a manifest)."""
    return atomic_write_json(Path(path), manifest)
