"""Seconds per subject of every defacer that runs here, on one sample-dataset head CT (2 mm).

Why: defacing is the most expensive stage per subject; a run over hundreds of scans is planned from
these numbers. Defacers that are not installed (FSL, AFNI, pydeface's FSL backend) are skipped with
their Availability reason. Registration-based and external defacers are ``slow``. ``[check]``
(CI, quickshear only) defaces once and checks something was removed; ``[perf]`` times it. Run with:

    pytest tests/perf/test_perf_defacers.py --run-perf --benchmark-enable --run-slow
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from defacers.afni import AfniDeface, AfniReface, AfniRefacePlus
from defacers.fsl import FslDeface
from defacers.pydeface import PydefaceAnts, PydefaceCli
from defacers.quickshear import Quickshear

SLOW = pytest.mark.slow
DEFACERS = [
    pytest.param(Quickshear, id="quickshear"),
    pytest.param(PydefaceAnts, id="pydeface_ants", marks=SLOW),
    pytest.param(PydefaceCli, id="pydeface", marks=SLOW),
    pytest.param(FslDeface, id="fsl_deface", marks=SLOW),
    pytest.param(AfniDeface, id="afni_deface", marks=SLOW),
    pytest.param(AfniReface, id="afni_reface", marks=SLOW),
    pytest.param(AfniRefacePlus, id="afni_reface_plus", marks=SLOW),
]


@pytest.fixture(scope="module")
def sample_head(sample_dataset) -> Path:
    """One acquisition of the shared sample dataset (same generator and voxel size as the default)."""
    from defacebench.data.sample import nifti_copy_path

    return nifti_copy_path(sample_dataset, "001", "scan")


@pytest.mark.parametrize("cls", DEFACERS)
def test_perf_deface_one_subject(bench, cls, sample_head, tmp_path):
    defacer = cls()
    avail = defacer.available()
    if not avail:
        pytest.skip(avail.reason)
    counter = itertools.count()

    def fresh_workdir():
        work = tmp_path / f"round{next(counter)}"
        work.mkdir()
        return (sample_head, work), {}

    result = bench.pedantic(defacer.deface, setup=fresh_workdir, rounds=2, iterations=1)
    import nibabel as nib

    removed = np.asarray(nib.load(str(result.mask_path)).dataobj) > 0
    assert removed.any(), f"{defacer.name} removed nothing from the sample head"
    stats = getattr(bench, "stats", None)
    if stats is not None:
        bench.extra_info["seconds_per_subject"] = stats.stats.mean
