"""The conversion stage: one acquisition (DICOM series, NIfTI or another ITK image) to a canonical-RAS
float32 NIfTI in HU (CT) or scanner units (MRI), tagged with its modality.

DICOM goes through ``pydicom`` (default: the validated, sorted slices stacked by
:mod:`defacebench.data.stack`, the cheapest, issue #15), ``dicom2nifti`` (pure Python), the
``dcm2niix`` binary from the package index or SimpleITK's GDCM series reader (``simpleitk``); all apply RescaleSlope/RescaleIntercept,
so values are HU for CT. Before a converter sees anything, :mod:`defacebench.data.dicomio` picks the
series and validates it, so bad input fails with a message that names the file, the problem and
the fix. A gantry-tilted series is converted without the converters' own tilt handling (they
disagree: dcm2niix pads and rotates, SimpleITK ignores the shear): the harness takes the voxels,
the sheared geometry from the headers, and resamples once (:mod:`defacebench.data.tilt`), so the
converters give identical volumes. NRRD/MHA/MHD files are read with SimpleITK. The modality
is decided by :mod:`defacebench.data.modality` and recorded. The record keeps the converter's
original affine, why the series was chosen, the tilt, the modality decision, the voxel and
field-of-view sizes, and no patient metadata: series are named by a digest of their UID
(:func:`~defacebench.data.series_choice.uid_digest`), never by the UID. A blank volume, or one that
cannot hold a face, fails its conversion (:mod:`defacebench.data.intake_checks`).
When a folder held several series, the record carries a
:class:`~defacebench.data.series_choice.SeriesChoice` and :func:`series_notice` gives the line to print.
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
from defacebench.data.intake_checks import GeometryLimits, check_volume
from defacebench.data.modality import decide as decide_modality
from defacebench.data.modality import declared_from_dicom, declared_from_name
from defacebench.data.series_choice import SeriesChoice, matches, uid_digest
from defacebench.data.tilt import TILT_TOLERANCE_DEG, detilt, shear_deg
from defacebench.data.volume import check_affine, check_finite, load_volume, save_volume
from defacebench.errors import ConversionError

CONVERTERS = ("pydicom", "dicom2nifti", "dcm2niix", "simpleitk")
RECORD_VERSION = 2
"""Version of :class:`ConversionRecord`'s content, part of the convert stage's cache key: version 2
names series by digest (a cached version-1 record would carry raw SeriesInstanceUIDs into outputs)."""


@dataclass(frozen=True)
class ConversionParams:
    """Which converter to use, optionally which series (a SeriesInstanceUID or its digest; it
    overrides the selection rule in the folder that holds it), what to do with several series in
    one folder (``pick`` one by the documented rule, recorded and printed, or ``fail`` the
    acquisition), the modality choice (``auto`` decides from the headers and intensities;
    ``ct``/``mri`` force it), and when a volume is too coarse to use or to trust."""

    converter: str = "pydicom"
    series_uid: str | None = None
    several_series: str = "pick"
    modality: str = "auto"
    geometry: GeometryLimits = GeometryLimits()


@dataclass(frozen=True)
class ConversionRecord:
    """What conversion did for one acquisition (no names, ids or birth dates of the patient)."""

    output_path: Path
    original_affine: list  # the converter's output affine, before canonical reorientation
    series_uid: str | None  # the converted series' digest (uid_digest), never the UID itself
    series_rule: str
    modality: str  # the decided modality: "ct" or "mri"
    warnings: tuple[str, ...] = ()
    converter: str = ""
    shape: tuple[int, int, int] = (0, 0, 0)
    series_choice: SeriesChoice | None = None
    dicom_modality: str = ""  # the series' DICOM Modality tag as written ("CT", "MR", ...)
    modality_decision: dict | None = None  # ModalityDecision.to_dict()
    gantry_tilt_deg: float = 0.0  # shear of the series' grid, resampled away when > 0
    series_requested: bool = False  # the series is the one --series chose (else: the folder's rule)
    geometry: dict | None = None  # voxel and field-of-view sizes (mm) along the canonical axes

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

    import dicom2nifti.settings as d2n_settings

    out = work / "dicom2nifti.nii.gz"
    # a tilted series is resampled by the harness (one implementation for every converter), so
    # dicom2nifti's orthogonality check (which refuses it) is off; it is a module global
    validate = d2n_settings.validate_orthogonal
    d2n_settings.disable_validate_orthogonal()
    try:
        dicom2nifti.dicom_series_to_nifti(str(src), str(out), reorient_nifti=False)
    except Exception as exc:  # dicom2nifti raises bare Exceptions of its own
        raise ConversionError(f"{folder}: dicom2nifti failed ({type(exc).__name__}: {exc}). "
                              "Fix: try --converter dcm2niix or check the series.") from exc
    finally:
        if validate:
            d2n_settings.enable_validate_orthogonal()
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
    # dcm2niix adds a resampled "_Tilt_" copy of a tilted series; the harness resamples the original
    outputs = sorted(p for p in out_dir.glob("*.nii") if "_Tilt_" not in p.name)
    if run.returncode != 0 or not outputs:
        raise ConversionError(f"{folder}: dcm2niix failed (exit {run.returncode}): {run.tail()}. "
                              "Fix: try --converter dicom2nifti or check the series.")
    if len(outputs) > 1:
        raise ConversionError(f"{folder}: dcm2niix split the series into {len(outputs)} volumes "
                              f"({', '.join(p.name for p in outputs)}). Fix: check for mixed acquisitions.")
    return outputs[0]


def _canonical(data: np.ndarray, affine: np.ndarray, src: Path) -> tuple[np.ndarray, np.ndarray]:
    """(data, affine) reoriented to the closest canonical RAS+ axes; shape checked (3-D)."""
    shape = data.shape
    if len(shape) > 3 and any(n != 1 for n in shape[3:]):
        raise ConversionError(f"{src}: the series converts to a {len(shape)}-D volume {shape}. "
                              "Fix: split the acquisitions into separate series.")
    data = np.asarray(data, dtype=np.float32).reshape(shape[:3])
    check_finite(data, src)
    check_affine(affine, src)
    ornt = nib.io_orientation(affine)
    can_affine = affine @ nib.orientations.inv_ornt_aff(ornt, data.shape)
    return np.ascontiguousarray(nib.orientations.apply_orientation(data, ornt)), can_affine


def _load_nifti_output(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A converter's NIfTI output as (data, affine)."""
    img = nib.load(str(path))
    return np.asarray(img.dataobj, dtype=np.float32), np.asarray(img.affine, float)


def _untilt(data: np.ndarray, header: np.ndarray, shape: tuple[int, int, int], src: Path) -> tuple[np.ndarray, np.ndarray]:
    """A canonical tilted volume on its true (header) geometry, resampled to an orthogonal grid.

    ``data`` is canonical; the header affine (column, row, slice order) is brought to the same
    canonical index order, so every converter's voxels meet the same geometry."""
    ornt = nib.io_orientation(header)
    can_header = header @ nib.orientations.inv_ornt_aff(ornt, shape)
    can_shape = tuple(int(shape[int(a)]) for a in np.argsort(ornt[:, 0]))
    if can_shape != data.shape:
        raise ConversionError(f"{src}: converted volume {data.shape} does not match the series' "
                              f"geometry {can_shape}. Fix: try another --converter.")
    return detilt(data, can_header)


def _convert_series(run, src: Path, work: Path, folder: Path, ordered, tilt: float) -> tuple[Volume, np.ndarray]:
    """Run one converter and return the canonical Volume (tilt resampled) and its raw affine."""
    from defacebench.data import dicomio

    if run == "pydicom":
        from defacebench.data.stack import read_stack

        data, original = read_stack(ordered, folder)
    elif run == "simpleitk":
        from defacebench.data.itkio import read_series

        data, original = read_series([s.path for s in ordered], folder)
    else:
        converter = _run_dicom2nifti if run == "dicom2nifti" else _run_dcm2niix
        data, original = _load_nifti_output(converter(src, work, folder))
    data, affine = _canonical(data, original, folder)
    if tilt > TILT_TOLERANCE_DEG:
        shape = (ordered[0].columns, ordered[0].rows, len(ordered))
        data, affine = _untilt(data, dicomio.header_affine(ordered), shape, folder)
    return Volume(data, affine), original


def convert_dicom(folder: Path, out_path: Path, params: ConversionParams) -> ConversionRecord:
    """Validate, select and convert the DICOM series in ``folder``; write ``out_path`` atomically."""
    from defacebench.data import dicomio

    if params.converter not in CONVERTERS:
        raise ConversionError(f"unknown converter {params.converter!r}; choose one of {', '.join(CONVERTERS)}")
    series, skipped = dicomio.find_series(folder)
    chosen, rule, choice = dicomio.select_series(series, folder, params.series_uid, params.several_series)
    ordered, _ = dicomio.sorted_slices(chosen, folder)
    tilt = shear_deg(dicomio.header_affine(ordered))
    warnings = []
    if skipped:
        warnings.append(f"{folder}: skipped {len(skipped)} non-image DICOM file(s) (e.g. {skipped[0].name})")
    if len(series) > 1:
        warnings.append(f"{folder}: {len(series)} series found; converted {uid_digest(chosen.uid)} ({rule})")
    if tilt > TILT_TOLERANCE_DEG:
        warnings.append(f"{folder}: gantry tilt {tilt:.2f} deg: resampled to an orthogonal grid (linear)")
    with tempfile.TemporaryDirectory(prefix="defacebench-convert-") as tmp:
        src = Path(tmp) / "series"
        src.mkdir()
        if params.converter in ("dicom2nifti", "dcm2niix"):  # they read a folder: show them only this series
            _link_files([s.path for s in ordered], src)
        volume, original = _convert_series(params.converter, src, Path(tmp), folder, ordered, tilt)
    geometry, checked = check_volume(volume.data, volume.affine, str(folder), params.geometry)
    warnings += checked
    decision = decide_modality(volume.data, where=str(folder), declared=declared_from_dicom(chosen.modality),
                               declared_by="DICOM Modality", choice=params.modality)
    if decision.warning:
        warnings.append(decision.warning)
    volume = Volume(volume.data, volume.affine, modality=decision.modality)
    save_volume(volume, out_path)
    return ConversionRecord(
        output_path=Path(out_path), original_affine=original.tolist(), series_uid=uid_digest(chosen.uid),
        series_rule=rule, modality=decision.modality, warnings=tuple(warnings),
        converter=params.converter, shape=tuple(int(n) for n in volume.data.shape),  # type: ignore[arg-type]
        series_choice=choice,
        dicom_modality=chosen.modality, modality_decision=decision.to_dict(), gantry_tilt_deg=round(tilt, 4),
        series_requested=params.series_uid is not None and matches(chosen.uid, params.series_uid),
        geometry=geometry,
    )


def series_notice(record: ConversionRecord | dict | None) -> str | None:
    """The one line to print when conversion chose among several series, else None.

    Accepts the record or its JSON form (what the convert stage caches), so the session can call it
    on ``BenchmarkRun.volumes()[acq_id].record``.
    """
    choice = record.series_choice if isinstance(record, ConversionRecord) else (record or {}).get("series_choice")
    if not choice:
        return None
    return (choice if isinstance(choice, SeriesChoice) else SeriesChoice.from_dict(choice)).notice()


def conversion_notices(record: ConversionRecord | dict | None) -> list[str]:
    """Every line a user must see about one conversion: the series choice (:func:`series_notice`),
    then the record's warnings (coarse voxels, short field of view, modality, tilt, skipped files),
    without the series warning the notice already says."""
    warnings = record.warnings if isinstance(record, ConversionRecord) else (record or {}).get("warnings", ())
    notice = series_notice(record)
    return ([notice] if notice else []) + [w for w in warnings if not (notice and " series found; converted " in w)]


def convert_file(path: Path, out_path: Path, params: ConversionParams) -> ConversionRecord:
    """Validate a NIfTI (nibabel) or NRRD/MHA/MHD (SimpleITK) input and write its canonical copy."""
    from defacebench.data.itkio import is_itk_image, read_image

    if is_itk_image(path) or (params.converter == "simpleitk" and not path.is_dir()):
        data, original = read_image(path)
        data, affine = _canonical(data, original, path)
        data, affine = detilt(data, affine)
        volume, reader = Volume(data, affine), "simpleitk"
    else:
        try:
            original = np.asarray(nib.load(str(path)).affine, float)
        except Exception:  # load_volume below raises the named ConversionError
            original = np.eye(4)
        volume, reader = load_volume(path, modality="ct"), "nibabel"
    geometry, warnings = check_volume(volume.data, volume.affine, str(path), params.geometry)
    declared = declared_from_name(path)
    decision = decide_modality(volume.data, where=str(path), declared=declared, declared_by="BIDS suffix",
                               choice=params.modality)
    volume = Volume(volume.data, volume.affine, modality=decision.modality)
    save_volume(volume, out_path)
    return ConversionRecord(
        output_path=Path(out_path), original_affine=original.tolist(), series_uid=None,
        series_rule=f"{reader} input", modality=decision.modality,
        warnings=tuple(warnings) + ((decision.warning,) if decision.warning else ()), converter=reader,
        shape=tuple(int(n) for n in volume.data.shape),  # type: ignore[arg-type]
        modality_decision=decision.to_dict(), geometry=geometry,
    )


def convert_acquisition(acq, out_path: Path, params: ConversionParams = ConversionParams()) -> ConversionRecord:
    """Convert one :class:`~defacebench.data.dataset.Acquisition` to a canonical NIfTI at ``out_path``."""
    path = Path(acq.path)
    if not path.exists():
        raise ConversionError(f"{path}: input does not exist. Fix: check the dataset folder.")
    if acq.kind in ("nifti", "itk"):
        return convert_file(path, Path(out_path), params)
    if acq.kind == "dicom":
        return convert_dicom(path, Path(out_path), params)
    raise ConversionError(f"{path}: unknown acquisition kind {acq.kind!r} (expected 'dicom', 'nifti' or 'itk').")
