"""Run folders: unique ids (collision-free even for runs started in the same second), confined to
``--results``, never reused silently."""

from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path

from defacebench.errors import DefacebenchError
from defacebench.util.outputs import mark_output

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class RunDirError(DefacebenchError, ValueError):
    """A run id is not a plain folder name, or its folder already exists."""


def check_run_id(text: str) -> str:
    """``text`` if it is a plain folder name (letters, digits, ``.``, ``_``, ``-``; no path parts)."""
    if not _RUN_ID.match(text) or ".." in text:
        raise RunDirError(f"run id {text!r} is not a plain folder name: use letters, digits, '.', '_' or '-' "
                          "(no '/' or '..': the run folder stays inside --results)")
    return text


def new_run_id() -> str:
    """A timestamp plus a random suffix: sorts by start time, unique for runs started together."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def make_run_dir(results: Path, run_id: str | None) -> Path:
    """Create ``results/<run_id>`` (a fresh unique id when None); an existing folder is an error
    naming it, so two runs never overwrite each other's manifest and leaderboard. Both folders are
    marked as the harness's outputs, so a results folder inside a dataset is never read as a subject."""
    results = Path(results).resolve()  # absolute: report paths then resolve from any working folder
    chosen = check_run_id(run_id) if run_id else new_run_id()
    target = results / chosen
    try:
        if not results.is_dir():
            results.mkdir(parents=True)
        os.mkdir(target)
    except FileExistsError:
        if not results.is_dir():
            raise RunDirError(f"{results}: --results is a file, not a folder; choose a writable --results folder") from None
        raise RunDirError(f"{target} already exists: choose another --run-id or remove that folder") from None
    except OSError as exc:
        raise RunDirError(f"{target}: cannot create the run folder ({exc.strerror}); "
                          "choose a writable --results folder") from None
    mark_output(results, "benchmark run folders")
    mark_output(target, "one benchmark run")
    return target
