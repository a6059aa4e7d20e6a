"""pydeface, two ways: its own command line (needs FSL) and its method with ANTs (runs anywhere).

- ``pydeface`` (:class:`PydefaceCli`): ``pydeface <in> --outfile <out>`` exactly as the seed study ran
  it, plus ``--nocleanup`` so the warped face mask is kept (pydeface then moves it next to its input,
  which is why the input is staged as a copy inside the workdir). pydeface registers its template with
  FSL ``flirt`` and refuses to run without ``FSLDIR``.
- ``pydeface_ants`` (:class:`PydefaceAnts`): the same template (``data/mean_reg2mean.nii.gz``) and face
  mask (``data/facemask.nii.gz``) shipped with pydeface; the affine template -> subject registration is
  done by antspyx instead of FLIRT (see :mod:`defacebench.anatomy.registration`, including the HU -> T1-like
  mapping used on CT); the mask is warped with nearest neighbour and applied as pydeface applies it:
  the image is multiplied by it, so removed voxels become 0 (water on CT: use a cleanup policy).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Annotated

import nibabel as nib
import numpy as np

from defacebench.contracts import Availability, DefaceResult, Range
from defacebench.errors import DefaceError
from defacebench.anatomy.registration import CtToT1Params, RegistrationParams, keep_mask_for
from defacebench.plugins.tools import check_run, run_tool, which
from defacers._external import (
    check_grid, find_executable, join_logs, read_input, require_nifti, stage_input, write_removed_mask,
)


def _package_version(name: str) -> str:
    """Installed version of a distribution, or "unknown"."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class PydefaceCliParams:
    """``timeout_s`` for one run; ``keep_mask`` adds ``--nocleanup`` to keep pydeface's warped mask."""

    timeout_s: Annotated[float, Range(gt=0)] = 1800.0
    keep_mask: bool = True
    executable: str = "pydeface"


class PydefaceCli:
    """``pydeface``: the pydeface command line (FSL FLIRT registration); needs FSL installed."""

    name = "pydeface"
    version = "1"
    deterministic = True
    licence = "MIT (pydeface); FSL licence for flirt"
    needs = "the pydeface command and FSL's flirt on PATH (FSLDIR set)"

    def __init__(self, params: PydefaceCliParams | None = None) -> None:
        self.params = params or PydefaceCliParams()

    def available(self) -> Availability:
        """pydeface itself, FSL's ``flirt`` and ``FSLDIR`` (pydeface checks all three)."""
        if find_executable(self.params.executable) is None:
            return Availability.no(f"{self.params.executable} not on PATH: pip install pydeface")
        if which("flirt") is None:
            return Availability.no("pydeface needs FSL flirt, which is not on PATH: install FSL >= 6.0 and set FSLDIR")
        if not os.environ.get("FSLDIR"):
            return Availability.no("pydeface needs FSLDIR set: install FSL >= 6.0 and set FSLDIR")
        return Availability.yes()

    def tool_version(self) -> str:
        """pydeface's installed version (it has no --version option)."""
        return f"pydeface {_package_version('pydeface')}"

    def deface(self, volume_path: Path, workdir: Path) -> DefaceResult:
        """Run pydeface on a staged copy; raise DefaceError on exit code, timeout or missing output."""
        workdir = Path(workdir)
        staged = stage_input(volume_path, workdir)
        out = workdir / "defaced.nii.gz"
        exe = self.params.executable
        argv = [exe if which(exe) else (find_executable(exe) or exe), str(staged), "--outfile", str(out)]
        if self.params.keep_mask:
            argv.append("--nocleanup")
        # pydeface writes its temporary files with mkstemp: keep them in the workdir too
        run = run_tool(argv, cwd=workdir, timeout=self.params.timeout_s, env={"TMPDIR": str(workdir)})
        version = self.tool_version()
        log = join_logs(f"tool version: {version}", run.log())
        check_run(run, what=f"pydeface on {volume_path}")
        out = require_nifti(workdir, "defaced", what=f"pydeface on {volume_path}", run=run)
        check_grid(staged, out, what=f"pydeface on {volume_path}", log=log)
        tool_mask = self._tool_mask(staged)
        mask = write_removed_mask(staged, out, workdir, tool_mask=tool_mask)
        return DefaceResult(volume_path=out, mask_path=mask, tool_version=version, log=log)

    @staticmethod
    def _tool_mask(staged: Path) -> Path | None:
        """pydeface --nocleanup's mask: ``<input stem>_pydeface_mask.nii.gz`` next to the staged copy."""
        stem = staged.name.replace(".gz", "").replace(".nii", "")
        path = staged.parent / f"{stem}_pydeface_mask.nii.gz"
        return path if path.is_file() else None


@dataclass(frozen=True)
class PydefaceAntsParams:
    """Template, face mask (None = pydeface's shipped files), registration and CT mapping settings.

    ``threads``: ITK threads of the registration (1 = deterministic). ``spare_brain`` (off by default,
    so the method stays pydeface's): never remove voxels of the brain mask of the input's modality
    (:func:`defacebench.anatomy.masks.brain_mask`: HU on CT, intensity bands on MRI). On the sample dataset pydeface's own mask reaches
    0.5-1 % of the HU brain mask at the anterior skull base, with any registration quality.
    """

    template: str | None = None
    facemask: str | None = None
    registration: RegistrationParams = field(default_factory=RegistrationParams)
    ct_mapping: CtToT1Params = field(default_factory=CtToT1Params)
    map_ct: bool = True
    threads: Annotated[int, Range(ge=1)] = 1
    timeout_s: Annotated[float, Range(gt=0)] = 900.0
    spare_brain: bool = False


class PydefaceAnts:
    """``pydeface_ants``: pydeface's template and face mask, registered with antspyx (no FSL needed)."""

    name = "pydeface_ants"
    version = "1"
    licence = "MIT (pydeface's face mask and template); Apache-2.0 (antspyx)"
    needs = "the pydeface and antspyx packages (defacebench[all])"

    def __init__(self, params: PydefaceAntsParams | None = None) -> None:
        self.params = params or PydefaceAntsParams()
        # ANTs is bit-reproducible only single-threaded (multi-threaded metric sums vary per run)
        self.deterministic = self.params.threads == 1

    def available(self) -> Availability:
        """antspyx and pydeface (for its template and mask) must be installed."""
        import importlib.util

        # find_spec, not import: listing plugins must not pay for importing ANTs
        for module, install in (("ants", "pip install antspyx"), ("pydeface", "pip install pydeface")):
            if importlib.util.find_spec(module) is None:
                return Availability.no(f"{module} is not installed: {install}")
        return Availability.yes()

    def tool_version(self) -> str:
        """Versions of the pieces that decide the output."""
        return f"antspyx {_package_version('antspyx')}; pydeface {_package_version('pydeface')} template"

    def deface(self, volume_path: Path, workdir: Path) -> DefaceResult:
        """Register, warp the mask, multiply; write ``defaced.nii.gz`` and the removed mask in ``workdir``."""
        volume_path, workdir = Path(volume_path), Path(workdir)
        img, data = read_input(volume_path, "pydeface_ants")
        start = time.monotonic()
        keep, used_ct, child_log = self._keep_mask(volume_path, workdir, data)
        spared = self._spare_brain(img, data, keep) if self.params.spare_brain else 0
        defaced = data * keep  # exactly pydeface's application: removed voxels become 0
        out = workdir / "defaced.nii.gz"
        out_img = nib.Nifti1Image(defaced.astype(np.float32), img.affine, img.header)
        out_img.set_data_dtype(np.float32)
        nib.save(out_img, str(out))
        mask = write_removed_mask(volume_path, out, workdir, removed=keep == 0)
        log = (
            f"pydeface_ants: template->subject affine with antspyx in {time.monotonic() - start:.1f} s; "
            f"CT HU->T1 mapping {'applied' if used_ct else 'not applied (not CT)'}; "
            f"{int((keep == 0).sum())} voxels removed, {spared} brain voxels spared; params {asdict(self.params)}\n{child_log}"
        )
        return DefaceResult(volume_path=out, mask_path=mask, tool_version=self.tool_version(), log=log)

    def _spare_brain(self, img: nib.Nifti1Image, data: np.ndarray, keep: np.ndarray) -> int:
        """Set ``keep`` to 1 on the brain mask (in place); return how many voxels that spared."""
        from defacebench.anatomy.masks import brain_mask, nifti_modality
        from defacebench.contracts import Volume

        can = nib.as_closest_canonical(nib.Nifti1Image(data, img.affine))
        brain = brain_mask(Volume(np.asarray(can.dataobj, np.float32), can.affine, nifti_modality(img, data)))
        back = nib.orientations.ornt_transform(nib.io_orientation(can.affine), nib.io_orientation(img.affine))
        brain = nib.orientations.apply_orientation(brain, back).astype(bool)
        spared = int((brain & (keep == 0)).sum())
        keep[brain] = 1
        return spared

    def _keep_mask(self, volume_path: Path, workdir: Path, data: np.ndarray) -> tuple[np.ndarray, bool, str]:
        """pydeface's keep mask on the subject grid; registration errors become DefaceError."""
        p = self.params
        try:
            keep, used_ct, log = keep_mask_for(
                volume_path, workdir / "registration",
                template=Path(p.template) if p.template else None,
                facemask=Path(p.facemask) if p.facemask else None,
                params=p.registration, mapping=p.ct_mapping if p.map_ct else None,
                threads=p.threads, timeout_s=p.timeout_s,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise DefaceError(f"pydeface_ants: registration of the template to {volume_path} failed: {exc}") from exc
        if keep.shape != data.shape:
            raise DefaceError(f"pydeface_ants: warped mask shape {keep.shape} != input shape {data.shape} for {volume_path}")
        return keep, used_ct, log
