"""Item d: seconds per DICOM series of both converters on the sample dataset's series."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from defacebench.perf.measure import BenchParams, Figure, Timing, timed


def sample_acquisitions(n: int, root: Path | None = None) -> list:
    """The first ``n`` DICOM acquisitions of the sample dataset (default sample unless ``root``)."""
    from defacebench.data.dataset import discover
    from defacebench.data.sample import sample_dataset

    ds = discover(root or sample_dataset())
    acqs = [a for s in ds.subjects for a in s.acquisitions if a.kind == "dicom"]
    return acqs[:n]


def time_conversion(acqs: list, converter: str, out_dir: Path) -> list[Timing]:
    """Wall and CPU seconds of ``convert_acquisition`` per series with ``converter`` (one call each);
    series ``i`` is written to ``out_dir/<converter>-<i>.nii.gz``."""
    from defacebench.data.convert import ConversionParams, convert_acquisition

    params = ConversionParams(converter=converter)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [timed(convert_acquisition, acq, out_dir / f"{converter}-{i}.nii.gz", params)[1]
            for i, acq in enumerate(acqs)]


def measure_convert(p: BenchParams, work: Path) -> list[Figure]:
    """Median seconds per series of both converters on the default sample's 2 mm series."""
    import nibabel as nib

    acqs = sample_acquisitions(p.convert_series)
    time_conversion(acqs[:1], "dicom2nifti", work / "warmup")  # imports and page cache, not timed
    time_conversion(acqs[:1], "dcm2niix", work / "warmup")
    runs = {c: time_conversion(acqs, c, work / "convert") for c in ("dicom2nifti", "dcm2niix")}
    wall = {c: float(np.median([t.wall for t in ts])) for c, ts in runs.items()}
    cpu = {c: float(np.median([t.cpu for t in ts])) for c, ts in runs.items()}
    shape = nib.load(str(work / "convert" / "dicom2nifti-0.nii.gz")).shape
    note = (f"median of {len(acqs)} sample series, {shape[0]}x{shape[1]}x{shape[2]} voxels; "
            f"load {os.getloadavg()[0]:.1f}")
    return [Figure("d", f"DICOM->NIfTI, {c} (s/series, wall / CPU)", f"{wall[c]:.2f} / {cpu[c]:.2f}", note)
            for c in runs] + [
        Figure("d", "ratio dicom2nifti / dcm2niix (wall / CPU)",
               f"{wall['dicom2nifti'] / wall['dcm2niix']:.2f} / {cpu['dicom2nifti'] / cpu['dcm2niix']:.2f}")]
