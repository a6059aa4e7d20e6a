"""Helpers of the session-level tests: small real datasets made from the session's sample, a command
defacer that fails on marked volumes, and one in-process run through :class:`Session` (what
``defacebench run`` does, without a subprocess, so stage results stay in one test cache)."""

from __future__ import annotations

import csv
import sys
import textwrap
from pathlib import Path

import numpy as np

from defacebench.run.config import RunConfig
from defacebench.run.session import Finish, Session

MARK = 2999.25
"""Voxel value of the marker the ``flaky`` defacer refuses (exact in float32; CT tops out near 2000 HU
in the sample, so no real voxel has it)."""

ATTACKER = {"renderers": ("surface",), "detectors": ("dlib_hog",), "recognizers": ("dlib_resnet",)}

FLAKY = textwrap.dedent("""\
    #!{python}
    # a stand-in defacer: refuses a volume holding the marker voxel, else copies it unchanged
    import shutil, sys
    import nibabel as nib, numpy as np
    source, target = sys.argv[1], sys.argv[2]
    if np.any(np.asarray(nib.load(source).dataobj) == {mark}):
        sys.stderr.write("flaky: refusing a marked volume\\n")
        sys.exit(3)
    shutil.copyfile(source, target)
    """)


def sample_nifti(sample_dataset: Path, subject: str, session: str) -> Path:
    """The NIfTI copy of one acquisition of the session's sample dataset (``s4/nifti`` next to ``dicom``)."""
    return next((Path(sample_dataset).parent / "nifti" / f"sub-{subject}" / f"ses-{session}").rglob("*.nii.gz"))


def small_copy(source: Path, target: Path, *, mark: bool = False, step: int = 2) -> Path:
    """``source`` at every ``step``-th voxel in-plane (4x fewer voxels: every stage is cheaper; the
    affine keeps the millimetres), optionally with one corner voxel (air) set to :data:`MARK`."""
    import nibabel as nib

    img = nib.load(source)
    data = np.asarray(img.dataobj, dtype=np.float32)[::step, ::step, :].copy()
    if mark:
        data[0, 0, 0] = MARK
    affine = img.affine.copy()
    affine[:3, :2] *= step
    target.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, affine), target)
    return target


def csv_dataset(sample_dataset: Path, folder: Path, *, marked: set[tuple[str, str]] = frozenset(),
                sessions: tuple[str, ...] = ("scan", "rescan"), subjects=("001", "002", "003", "004")) -> Path:
    """A CSV manifest over small copies of the sample's NIfTI files (:func:`small_copy`); the
    acquisitions in ``marked`` ((subject, session) pairs) carry the marker voxel."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for subject in subjects:
        for session in sessions:
            path = small_copy(sample_nifti(sample_dataset, subject, session), folder / f"{subject}_{session}.nii.gz",
                              mark=(subject, session) in marked)
            rows.append((subject, str(path), session))
    manifest = folder / "dataset.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("subject_id", "path", "session"))
        writer.writerows(rows)
    return manifest


def flaky_plugins_file(folder: Path) -> Path:
    """A plugins file declaring the ``flaky`` command defacer (see :data:`FLAKY`)."""
    folder.mkdir(parents=True, exist_ok=True)
    tool = folder / "flaky_tool"
    tool.write_text(FLAKY.format(python=sys.executable, mark=MARK))
    tool.chmod(0o755)
    toml = folder / "defacebench.toml"
    toml.write_text(f'[defacers.flaky]\ncommand = "{tool} {{input}} {{output}}"\nversion = "1"\n')
    return toml


def run_session(config: RunConfig) -> tuple[Session, Finish]:
    """Plan, prepare, evaluate every planned item and finish, as ``defacebench run`` does."""
    session = Session(config)
    plan = session.plan()
    session.prepare()
    for item in plan:
        session.run_item(item)
    return session, session.finish()
