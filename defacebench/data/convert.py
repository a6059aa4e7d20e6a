"""The conversion stage: one acquisition (DICOM series or NIfTI) to a canonical-RAS float32 HU NIfTI.

DICOM goes through ``dicom2nifti`` (default, pure Python) or the ``dcm2niix`` binary from the
package index; both apply RescaleSlope/RescaleIntercept, so values are HU for CT. Before a
converter sees anything, :mod:`defacebench.data.dicomio` picks the series and validates it, so bad
input fails with a message that names the file, the problem and the fix. The record keeps the
converter's original affine and why the series was chosen, and no patient metadata. When a
folder held several series, the record carries a :class:`~defacebench.data.dicomio.SeriesChoice`
and :func:`series_notice` gives the line to print.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from defacebench.contracts import Volume
from defacebench.errors import ConversionError
from defacebench.data.dicomio import SeriesChoice
from defacebench.data.volume import check_affine, check_finite, load_volume, save_volume

CONVERTERS = ("dicom2nifti", "dcm2niix")


@dataclass(frozen=True)
class ConversionParams:
    """Which converter to use and, optionally, which series (overrides the selection rule).

    ``several_series``: with several series in one folder, ``pick`` one by the documented rule
    (the choice is recorded and printed) or ``fail`` the acquisition.
    """

    converter: str = "dicom2nifti"
    series_uid: str | None = None
    several_series: str = "pick"


@dataclass(frozen=True)
class ConversionRecord:
    """What conversion did for one acquisition (no names, ids or birth dates of the patient)."""

    output_path: Path
    original_affine: list  # the converter's output affine, before canonical reorientation
    series_uid: str | None
    series_rule: str
    modality: str
    warnings: tuple[str, ...] = ()
    converter: str = ""
    shape: tuple[int, int, int] = (0, 0, 0)
    series_choice: SeriesChoice | None = None

    def to_dict(self) -> dict:
        """JSON-able dict (paths as strings)."""
        d = asdict(self)
        d["output_path"] = str(self.output_path)
        d["warnings"] = list(self.warnings)
        d["shape"] = list(self.shape)
        return d


def dcm2niix_executable() -> str | None:
    """Path of the dcm2niix binary: on PATH, next to this Python, or inside the pip package."""
    found = shutil.which("dcm2niix") or shutil.which("dcm2niix", path=str(Path(sys.executable).parent))
    if found:
        return found
    try:
        import dcm2niix  # the pip package ships the binary as dcm2niix/dcm2niix

        path = Path(dcm2niix.bin)
        return str(path) if path.is_file() else None
    except ImportError:
        return None


def _link_files(files: list[Path], folder: Path) -> None:
    """Symlink the chosen series' files into ``folder`` so the converter sees only that series."""
    for n, f in enumerate(files):
        os.symlink(f.resolve(), folder / f"{n:05d}_{f.name}")


def _run_dicom2nifti(src: Path, work: Path, folder: Path) -> Path:
    """Convert the series in ``src`` with dicom2nifti (no reorientation: we canonicalise ourselves)."""
    import dicom2nifti

    out = work / "dicom2nifti.nii.gz"
    try:
        dicom2nifti.dicom_series_to_nifti(str(src), str(out), reorient_nifti=False)
    except Exception as exc:  # dicom2nifti raises bare Exceptions of its own
        raise ConversionError(f"{folder}: dicom2nifti failed ({type(exc).__name__}: {exc}). "
                              "Fix: try --converter dcm2niix or check the series.") from exc
    return out


def _run_dcm2niix(src: Path, work: Path, folder: Path) -> Path:
    """Convert the series in ``src`` with the dcm2niix binary into one uncompressed NIfTI."""
    from defacebench.plugins.tools import run_tool

    exe = dcm2niix_executable()
    if exe is None:
        raise ConversionError("dcm2niix not found. Fix: pip install dcm2niix (it ships the binary) "
                              "or use --converter dicom2nifti.")
    out_dir = work / "dcm2niix"
    out_dir.mkdir()
    run = run_tool([exe, "-z", "n", "-b", "n", "-f", "volume", "-o", out_dir, src], timeout=600)
    outputs = sorted(out_dir.glob("*.nii"))
    if run.returncode != 0 or not outputs:
        raise ConversionError(f"{folder}: dcm2niix failed (exit {run.returncode}): {run.tail()}. "
                              "Fix: try --converter dicom2nifti or check the series.")
    if len(outputs) > 1:
        raise ConversionError(f"{folder}: dcm2niix split the series into {len(outputs)} volumes "
                              f"({', '.join(p.name for p in outputs)}). Fix: check for mixed acquisitions.")
    return outputs[0]


def _load_converted(path: Path, src: Path) -> tuple[Volume, np.ndarray]:
    """Load a converter's output: canonical Volume plus the converter's original affine."""
    img = nib.load(str(path))
    original = np.asarray(img.affine, float)
    shape = img.shape
    if len(shape) > 3 and any(n != 1 for n in shape[3:]):
        raise ConversionError(f"{src}: the series converts to a {len(shape)}-D volume {shape}. "
                              "Fix: split the acquisitions into separate series.")
    data = np.asarray(img.dataobj, dtype=np.float32).reshape(shape[:3])
    check_finite(data, src)
    check_affine(original, src)
    can = nib.as_closest_canonical(nib.Nifti1Image(data, original))
    return Volume(np.asarray(can.dataobj, dtype=np.float32), np.asarray(can.affine, float)), original


def convert_dicom(folder: Path, out_path: Path, params: ConversionParams) -> ConversionRecord:
    """Validate, select and convert the DICOM series in ``folder``; write ``out_path`` atomically."""
    from defacebench.data import dicomio

    if params.converter not in CONVERTERS:
        raise ConversionError(f"unknown converter {params.converter!r}; choose one of {', '.join(CONVERTERS)}")
    series, skipped = dicomio.find_series(folder)
    chosen, rule, choice = dicomio.select_series(series, folder, params.series_uid, params.several_series)
    ordered, _ = dicomio.sorted_slices(chosen, folder)
    warnings = []
    if skipped:
        warnings.append(f"{folder}: skipped {len(skipped)} non-image DICOM file(s) (e.g. {skipped[0].name})")
    if len(series) > 1:
        warnings.append(f"{folder}: {len(series)} series found; converted {chosen.uid} ({rule})")
    if chosen.modality != "CT":
        warnings.append(f"{folder}: modality {chosen.modality or 'missing'}, not CT: values are scanner "
                        "units, not HU (MR is allowed; HU-based steps may not apply)")
    with tempfile.TemporaryDirectory(prefix="defacebench-convert-") as tmp:
        src = Path(tmp) / "series"
        src.mkdir()
        _link_files([s.path for s in ordered], src)
        run = _run_dicom2nifti if params.converter == "dicom2nifti" else _run_dcm2niix
        volume, original = _load_converted(run(src, Path(tmp), folder), folder)
    save_volume(volume, out_path)
    return ConversionRecord(
        output_path=Path(out_path), original_affine=original.tolist(), series_uid=chosen.uid,
        series_rule=rule, modality=chosen.modality, warnings=tuple(warnings),
        converter=params.converter, shape=tuple(int(n) for n in volume.data.shape),  # type: ignore[arg-type]
        series_choice=choice,
    )


def series_notice(record: ConversionRecord | dict | None) -> str | None:
    """The one line to print when conversion chose among several series, else None.

    Accepts the record or its JSON form (what the convert stage caches), so the session can call it
    on ``BenchmarkRun.volumes()[acq_id]["record"]``.
    """
    choice = record.series_choice if isinstance(record, ConversionRecord) else (record or {}).get("series_choice")
    if not choice:
        return None
    return (choice if isinstance(choice, SeriesChoice) else SeriesChoice.from_dict(choice)).notice()


def convert_nifti(path: Path, out_path: Path, params: ConversionParams) -> ConversionRecord:
    """Validate a NIfTI input and write its canonical float32 copy to ``out_path``."""
    try:
        original = np.asarray(nib.load(str(path)).affine, float)
    except Exception:  # load_volume below raises the named ConversionError
        original = np.eye(4)
    volume = load_volume(path)
    save_volume(volume, out_path)
    return ConversionRecord(
        output_path=Path(out_path), original_affine=original.tolist(), series_uid=None,
        series_rule="NIfTI input", modality="", warnings=(), converter="nibabel",
        shape=tuple(int(n) for n in volume.data.shape),  # type: ignore[arg-type]
    )


def convert_acquisition(acq, out_path: Path, params: ConversionParams = ConversionParams()) -> ConversionRecord:
    """Convert one :class:`~defacebench.data.dataset.Acquisition` to a canonical HU NIfTI at ``out_path``."""
    path = Path(acq.path)
    if not path.exists():
        raise ConversionError(f"{path}: input does not exist. Fix: check the dataset folder.")
    if acq.kind == "nifti":
        return convert_nifti(path, Path(out_path), params)
    if acq.kind == "dicom":
        return convert_dicom(path, Path(out_path), params)
    raise ConversionError(f"{path}: unknown acquisition kind {acq.kind!r} (expected 'dicom' or 'nifti').")
