"""AFNI's refacer: ``afni_deface``, ``afni_reface`` and ``afni_reface_plus`` from ONE run per input.

``@afni_refacer_run -input <in> -mode_all -prefix <P>`` writes all three results at once
(``P.deface``, ``P.reface``, ``P.reface_plus``), the face masks (``P.face``, ``P.face_plus``) and a
``P_QC/`` folder. The run is shared: it happens in a cache folder keyed by the input's content hash,
the AFNI version and the command (under ``defacebench.run.cache.default_cache_dir()/afni_refacer`` unless
``cache_dir`` says otherwise), built in a temp folder and renamed into place atomically, so whichever
of the three plugins runs first pays for it and the other two reuse it. A failed run is not cached.

Each plugin copies its own output and AFNI's face mask (``P.face`` for deface/reface, ``P.face_plus``
for reface_plus) into its workdir and derives the removed-voxel mask (``mask_path``, 1 = removed or
replaced) from that face mask; the full AFNI run (``P_QC/`` included) stays in the cache folder. AFNI may write ``.nii`` or ``.nii.gz``; both are found.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

from defacebench.contracts import Availability, DefaceResult, Range
from defacebench.errors import DefaceError
from defacebench.plugins.tools import check_run, run_tool, tool_version, which
from defacers._external import (
    check_grid, find_nifti, join_logs, nifti_suffix, require_nifti, stage_input, write_removed_mask,
)

PREFIX = "afni"
STAGE = "afni_refacer"
RUN_RECORD = "run.json"


@dataclass(frozen=True)
class AfniParams:
    """``timeout_s`` of the shared run; ``cache_dir`` (None = defacebench's default cache) holds the
    shared runs; ``extra_args`` are appended verbatim; ``executable`` is looked up on PATH."""

    timeout_s: Annotated[float, Range(gt=0)] = 3600.0
    cache_dir: str | None = None
    extra_args: tuple[str, ...] = ()
    executable: str = "@afni_refacer_run"


def afni_version() -> str:
    """``afni -ver`` first line, or "unknown" when AFNI's ``afni`` binary is not on PATH."""
    return tool_version(["afni", "-ver"])


def refacer_argv(params: AfniParams, input_name: str) -> list[str]:
    """The exact command line (run inside the shared folder, so names are relative and space-free)."""
    return [params.executable, "-input", input_name, "-mode_all", "-prefix", PREFIX, *params.extra_args]


def shared_run(volume_path: Path, params: AfniParams) -> tuple[Path, dict]:
    """The shared ``@afni_refacer_run`` folder for ``volume_path`` (run now if not cached) and its record."""
    from defacebench.run.cache import Cache, default_cache_dir, file_hash

    if not Path(volume_path).is_file():
        raise DefaceError(f"{volume_path}: input volume not found. Fix: check the path.")
    version = afni_version()
    input_name = "input" + nifti_suffix(volume_path)
    argv = refacer_argv(params, input_name)
    root = Path(params.cache_dir) if params.cache_dir else default_cache_dir()
    cache = Cache(root)
    key = cache.key(file_hash(volume_path), argv, version)

    def build(folder: Path) -> None:
        staged = stage_input(volume_path, folder)
        run = run_tool(argv, cwd=folder, timeout=params.timeout_s, env={"TMPDIR": str(folder)})
        staged.unlink()  # the cache keeps AFNI's outputs, not a second copy of the input
        record = {"argv": list(argv), "returncode": run.returncode, "timed_out": run.timed_out,
                  "stdout": run.stdout, "stderr": run.stderr, "seconds": run.seconds,
                  "version": version, "log": run.log()}
        check_run(run, what=f"@afni_refacer_run on {volume_path}")
        (folder / RUN_RECORD).write_text(json.dumps(record, indent=1))

    folder = cache.get_or_build(STAGE, key, build)
    return folder, json.loads((folder / RUN_RECORD).read_text())


class _AfniRefacer:
    """One output of the shared AFNI run; subclasses name the output and its face mask."""

    output = ""
    mask = ""
    version = "1"
    deterministic = True
    licence = "GPL-2.0 (AFNI; the tool is run, not shipped)"
    needs = "AFNI's @afni_refacer_run on PATH (one run serves afni_deface, afni_reface and afni_reface_plus)"

    def __init__(self, params: AfniParams | None = None) -> None:
        self.params = params or AfniParams()

    def available(self) -> Availability:
        """``@afni_refacer_run`` must be on PATH."""
        if which(self.params.executable) is None:
            return Availability.no(
                f"{self.params.executable} not on PATH: install AFNI (afni.nimh.nih.gov) and put its binaries on PATH"
            )
        return Availability.yes()

    def tool_version(self) -> str:
        """AFNI's version string."""
        return f"AFNI {afni_version()}"

    def deface(self, volume_path: Path, workdir: Path) -> DefaceResult:
        """Reuse (or make) the shared run, copy this plugin's output into ``workdir``, write its mask."""
        volume_path, workdir = Path(volume_path), Path(workdir)
        folder, record = shared_run(volume_path, self.params)
        what = f"{self.name} ({record['argv'][0]} on {volume_path})"
        log = join_logs(f"tool version: {record['version']}", f"shared run folder: {folder}", record["log"])
        try:
            found = require_nifti(folder, f"{PREFIX}.{self.output}", what=what)
        except DefaceError as exc:
            raise DefaceError(str(exc), log=log) from None
        out = workdir / f"defaced{nifti_suffix(found)}"
        shutil.copyfile(found, out)
        check_grid(volume_path, out, what=what, log=log)
        tool_mask = find_nifti(folder, f"{PREFIX}.{self.mask}")
        if tool_mask is not None:  # keep AFNI's own face mask next to the output, as written
            tool_mask = Path(shutil.copyfile(tool_mask, workdir / f"afni_{self.mask}{nifti_suffix(tool_mask)}"))
        mask = write_removed_mask(volume_path, out, workdir, tool_mask=tool_mask)
        log = join_logs(log, f"face mask: {tool_mask.name if tool_mask else 'none written; mask = changed voxels'}",
                        f"params: {asdict(self.params)}")
        return DefaceResult(volume_path=out, mask_path=mask, tool_version=f"AFNI {record['version']}", log=log)


class AfniDeface(_AfniRefacer):
    """``afni_deface``: AFNI refacer's deface mode (face region removed)."""

    name = "afni_deface"
    output = "deface"
    mask = "face"


class AfniReface(_AfniRefacer):
    """``afni_reface``: AFNI refacer's reface mode (face replaced by a template face; the seed study's)."""

    name = "afni_reface"
    output = "reface"
    mask = "face"


class AfniRefacePlus(_AfniRefacer):
    """``afni_reface_plus``: reface plus the ears and the back of the head (larger ``face_plus`` region)."""

    name = "afni_reface_plus"
    output = "reface_plus"
    mask = "face_plus"
