"""A synthetic run for the HTML report's tests: leaderboard rows of every kind of defacer, real
montage PNGs drawn by ``montage_image`` from synthetic pictures (no face of anyone), and the
configuration statuses a run records.

Defacers: the control ``none``; ``leaky`` (one attack identifies 12 of 16 subjects: exposed);
``good`` (nothing beyond chance: not_shown_exposed); ``eraser`` (QC head_removed on every subject:
anatomy_destroyed); ``broken`` (the defacing failed: defacer_failed); ``legacy`` (results written
without per-probe facts: untestable); ``ghost`` (every configuration failed: no result). The
attacker ``vtk_volume`` cannot identify undefaced faces (invalid). A subject id is ``<script>``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from defacebench.contracts import Face
from defacebench.metrics.binomial import exact_interval
from defacebench.metrics.identification import Identification
from defacebench.report import LeaderboardRow
from defacebench.report.montage import MontageRow, montage_image
from defacebench.report.rows import Failure

EVIL = "<script>alert(1)</script>"
IDS = [EVIL, *(f"s{i:02d}" for i in range(1, 16))]
LONG_REASON = "RenderFailedError: " + "the surface renderer could not find the skin threshold; " * 12


def _ident(hits: int, shift: int = 1) -> Identification:
    """16 probes, the first ``hits`` identified, the others nearest to another subject."""
    return Identification(tuple(IDS), {p: (p if i < hits else IDS[(i + shift) % 16]) for i, p in enumerate(IDS)})


def picture(seed: int, defaced: bool) -> np.ndarray:
    """A 192 x 160 synthetic 'render': an ellipse on black, a band cut out when defaced."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:192, 0:160]
    head = ((yy - 96) / 80.0) ** 2 + ((xx - 80) / 60.0) ** 2 < 1
    img = np.zeros((192, 160, 3), np.uint8)
    img[head] = (rng.integers(150, 230), 170, 140)
    if defaced:
        img[110:160, 30:130] = 0
    return img


def write_montage(path: Path, seed: int, n: int = 16) -> Path:
    """A real montage PNG (the layout the pipeline writes) of synthetic pictures."""
    from PIL import Image

    rows = [MontageRow(IDS[i], picture(seed + i, False), Face((40, 40, 120, 150), 0.9), picture(seed + i, True),
                       None if i % 3 else Face((40, 40, 120, 150), 0.5)) for i in range(n)]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(montage_image(rows)).save(path)
    return path


def row(defacer: str, renderer: str, hits: int, *, scenario: str = "rescan", fusion: str = "single",
        qc: dict | None = None, status: str = "ok", dice: float | None = 0.99, montage: Path | None = None,
        failures: tuple[Failure, ...] = (), per_probe: bool = True, fail: float = 0.0) -> LeaderboardRow:
    cid = f"{defacer}-{renderer}-dlib_hog-dlib_resnet"
    rank1 = hits / 16
    return LeaderboardRow(cid, defacer, renderer, "dlib_hog", "dlib_resnet", n=16, rank1=rank1,
                          rank1_ci=exact_interval(hits, 16), rank5=min(1.0, rank1 + 0.25), roc_auc=0.9,
                          roc_auc_ci=(0.8, 1.0), eer=0.1, detection_rate=0.9, scenario=scenario, fusion=fusion,
                          qc=qc or ({"control": 16} if defacer == "none" else {"ok": 16}), status=status,
                          brain_dice=None if defacer == "none" else dice, rank1_chance=1 / 16, rank5_chance=5 / 16,
                          identification={fusion: _ident(hits)} if per_probe else {}, montage=montage,
                          failures=failures, face_removed=None if defacer == "none" else 0.8,
                          defacing_failure_rate=fail, seconds_per_subject=3.5, tar_far_1e2=rank1 / 2,
                          identified_ids=tuple(IDS[:hits]))


ATTACKS = [("surface", "rescan", "single"), ("surface", "multiview", "min"), ("vtk_volume", "rescan", "single")]
# rank-1 hits per defacer and attack (surface rescan, surface multiview, vtk_volume rescan: blind)
HITS = {"none": (16, 15, 1), "leaky": (12, 5, 1), "good": (1, 0, 0), "eraser": (0, 0, 0), "broken": (16, 16, 1),
        "legacy": (2, 1, 0)}


def synthetic_run(run: Path) -> tuple[list[LeaderboardRow], dict[str, dict]]:
    """The rows and the statuses (as ``manifest.json`` stores them) of the synthetic run."""
    rows, statuses = [], {}
    for k, (defacer, hits) in enumerate(HITS.items()):
        for j, ((renderer, scenario, fusion), h) in enumerate(zip(ATTACKS, hits)):
            key = f"{defacer}-{renderer}-dlib_hog-dlib_resnet" + ("" if scenario == "rescan" else f"-{scenario}")
            montage = run / key / "montage.png"
            if j == 0:
                first = write_montage(montage, 100 * k)
            else:  # drawing costs; the defacer's other results show the same pictures
                montage.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(first, montage)
            montage = montage.relative_to(run)
            extra: dict = {}
            if defacer == "eraser":
                extra = dict(qc={"head_removed": 16}, dice=0.0)
            if defacer == "broken":
                extra = dict(status="defacer_failed", fail=0.75,
                             failures=tuple(Failure(s, "deface", "probe", "exit code 1: no brain found")
                                            for s in IDS[:12]))
            if defacer == "legacy":
                extra = dict(per_probe=False)
            if defacer == "leaky" and renderer == "surface":
                extra = dict(failures=(Failure(EVIL, "detect", "probe", "no face detected"),
                                       Failure("s03", "render", "probe", "empty mesh <b>")))
            rows.append(row(defacer, renderer, h, scenario=scenario, fusion=fusion, montage=montage, **extra))
            statuses[key] = {"status": "defacer_failed" if defacer == "broken" else "passed",
                             **({"reason": "deface failed on 75% of subjects"} if defacer == "broken" else {})}
    statuses["leaky-vtk_volume-dlib_hog-dlib_resnet-multiview"] = {"status": "failed", "reason": LONG_REASON}
    statuses["ghost-surface-dlib_hog-dlib_resnet"] = {"status": "failed", "reason": "DefacerError: ghost crashed"}
    statuses["ghost-vtk_volume-dlib_hog-dlib_resnet"] = {"status": "skipped", "reason": "ghost not available"}
    return rows, statuses
