"""``fsl_deface``: FSL's defacing script (FSL >= 6.0), run exactly as the seed study ran it.

Command: ``fsl_deface <in> <out> -d <mask>``; ``-d`` saves FSL's defacing mask, turned into our
removed-voxel mask (its polarity is read from the voxels FSL changed, see
:func:`defacers._external.removed_from_tool_mask`). The input is staged as
a copy inside the workdir (``fsl_deface`` is a shell script: plain names, nothing written next to the
original). FSL writes ``.nii.gz`` or ``.nii`` depending on ``FSLOUTPUTTYPE``; both are accepted.
A non-zero exit, a timeout, or a missing/empty output raises DefaceError with FSL's message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from defacebench.contracts import Availability, DefaceResult, Range
from defacebench.plugins.tools import check_run, run_tool, which
from defacers._external import check_grid, find_nifti, join_logs, require_nifti, stage_input, write_removed_mask


@dataclass(frozen=True)
class FslDefaceParams:
    """``timeout_s`` per run; ``save_mask`` adds ``-d``; ``extra_args`` are appended verbatim
    (e.g. ``("-f", "0.3")``); ``executable`` is looked up on PATH."""

    timeout_s: Annotated[float, Range(gt=0)] = 3600.0
    save_mask: bool = True
    extra_args: tuple[str, ...] = ()
    executable: str = "fsl_deface"


class FslDeface:
    """``fsl_deface``: FSL's defacer (registration to MNI + face mask); needs FSL installed."""

    name = "fsl_deface"
    version = "1"
    deterministic = True
    licence = "FSL licence (non-commercial; the tool is run, not shipped)"
    needs = "FSL >= 6 on PATH with FSLDIR set"

    def __init__(self, params: FslDefaceParams | None = None) -> None:
        self.params = params or FslDefaceParams()

    def available(self) -> Availability:
        """``fsl_deface`` on PATH and ``FSLDIR`` set (FSL's scripts need both)."""
        if which(self.params.executable) is None:
            return Availability.no(f"{self.params.executable} not on PATH: install FSL >= 6.0 and set FSLDIR")
        if not os.environ.get("FSLDIR"):
            return Availability.no("FSLDIR is not set: install FSL >= 6.0 and set FSLDIR")
        return Availability.yes()

    def tool_version(self) -> str:
        """FSL's version from ``$FSLDIR/etc/fslversion`` (FSL's scripts have no --version)."""
        fsldir = os.environ.get("FSLDIR", "")
        try:
            return "FSL " + (Path(fsldir) / "etc" / "fslversion").read_text().strip().split(":")[0]
        except OSError:
            return "FSL unknown"

    def argv(self, staged: Path, out: Path, mask: Path) -> list[str]:
        """The exact command line."""
        argv = [self.params.executable, str(staged), str(out)]
        if self.params.save_mask:
            argv += ["-d", str(mask)]
        return argv + list(self.params.extra_args)

    def deface(self, volume_path: Path, workdir: Path) -> DefaceResult:
        """Run fsl_deface in ``workdir`` on a staged copy of ``volume_path``."""
        workdir = Path(workdir)
        what = f"fsl_deface on {volume_path}"
        staged = stage_input(volume_path, workdir)
        argv = self.argv(staged, workdir / "defaced.nii.gz", workdir / "fsl_defacing_mask.nii.gz")
        # FSL's scripts put temporary files under TMPDIR: keep them in the workdir
        run = run_tool(argv, cwd=workdir, timeout=self.params.timeout_s, env={"TMPDIR": str(workdir)})
        version = self.tool_version()
        log = join_logs(f"tool version: {version}", run.log())
        check_run(run, what=what)
        out = require_nifti(workdir, "defaced", what=what, run=run)
        check_grid(staged, out, what=what, log=log)
        tool_mask = find_nifti(workdir, "fsl_defacing_mask") if self.params.save_mask else None
        mask = write_removed_mask(staged, out, workdir, tool_mask=tool_mask)
        return DefaceResult(volume_path=out, mask_path=mask, tool_version=version, log=log)
