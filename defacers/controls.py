"""Control defacers: reference points that run through exactly the same path as real tools."""

from __future__ import annotations

import shutil
from pathlib import Path

from defacebench.contracts import Availability, DefaceResult, NoParams


class NoneDefacer:
    """``none``: no defacing. Its output is an unchanged copy of the input inside the workdir.

    Every other defacer's privacy gain is read against this row: it is the "identifiable before
    defacing" baseline.
    """

    name = "none"
    version = "1"
    deterministic = True
    needs = "nothing"

    def __init__(self, params: NoParams | None = None) -> None:
        self.params = params or NoParams()

    def tool_version(self) -> str:
        return ""

    def available(self) -> Availability:
        return Availability.yes()

    def deface(self, volume_path: Path, workdir: Path) -> DefaceResult:
        volume_path = Path(volume_path)
        suffix = ".nii.gz" if volume_path.name.endswith(".nii.gz") else volume_path.suffix
        out = Path(workdir) / f"none{suffix}"
        shutil.copyfile(volume_path, out)
        return DefaceResult(volume_path=out, mask_path=None, tool_version=self.version, log="copied unchanged")
