"""The harness's own output folders: marked when made, so dataset discovery never reads them as data.

Why (issue 25): a ``--results`` folder (or a ``convert --out`` folder, or a stage cache) placed
inside the dataset folder became a phantom subject on the next run and changed the dataset's
fingerprint. Every output folder the harness makes carries a small hidden marker file
(:data:`OUTPUT_MARKER`); the stage cache has its own (``.defacebench-cache`` and the standard
``CACHEDIR.TAG``). :func:`is_harness_output` recognises a marked folder, and a folder that holds
nothing but marked folders and sidecar files (``results/`` made as the parent of ``results/runs``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

OUTPUT_MARKER = ".defacebench-output"
"""Hidden file in every output folder the harness makes (run folders, --results, convert --out)."""
MARKERS = (OUTPUT_MARKER, ".defacebench-cache", "CACHEDIR.TAG")
"""Files whose presence makes a folder the harness's own (the last two are the stage cache's)."""
_MAX_DEPTH = 3  # results/ -> runs/ -> <run id>/: deeper nesting is not the harness's layout


def mark_output(folder: Path, what: str) -> None:
    """Write the marker into ``folder`` (an existing folder the harness writes its outputs into).

    Idempotent and best effort: a folder where the marker cannot be written fails on the real
    write that follows, with the storage error that names it."""
    marker = Path(folder) / OUTPUT_MARKER
    if marker.exists():
        return
    try:
        marker.write_text(json.dumps({"written_by": "defacebench", "holds": what}) + "\n")
    except OSError:
        pass


def is_harness_output(folder: Path, sidecar_suffixes: tuple[str, ...] = (), _depth: int = 0) -> bool:
    """True when ``folder`` is one of the harness's output folders: it holds a marker, or it holds
    at least one such folder and otherwise only hidden files and ``sidecar_suffixes`` files."""
    folder = Path(folder)
    if any((folder / name).is_file() for name in MARKERS):
        return True
    if _depth >= _MAX_DEPTH:
        return False
    try:
        entries = [e for e in os.scandir(folder) if not e.name.startswith(".")]
    except OSError:
        return False
    subfolders = [e for e in entries if e.is_dir()]
    others = [e for e in entries if not e.is_dir()]
    if not subfolders or any(not e.name.lower().endswith(sidecar_suffixes) for e in others):
        return False
    return all(is_harness_output(Path(e.path), sidecar_suffixes, _depth + 1) for e in subfolders)
