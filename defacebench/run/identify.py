"""Re-identification from images a user already has (no volumes): ``defacebench identify``.

Gallery and probe folders hold one image per subject, paired by the subject id parsed from the
file name: the seed study's ``person_{id}_view_frontal.png`` and plain ``{id}.png`` both work.
Every image is detected once and each kept face embedded once (2N recognizer passes). An image
that cannot be read or has no face stays in the matrix as a non-match (+inf distances) and is
counted in the detection rate, never dropped; a side where no image at all can be read is an error
(nothing was compared). Outputs in the out folder: ``distances.csv``,
``metrics.json`` (the evaluation part's keys, plus ``detection_rate_gallery`` /
``detection_rate_probe`` and the attacker's identity) and ``faces.csv`` (one row per image).
"""

from __future__ import annotations

import csv
import json
import re
import tempfile
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from defacebench.contracts import Face
from defacebench.util.fsutil import atomic_write_text, ensure_writable_dir
from defacebench.errors import DatasetError, ImageError
from defacebench.data.images import IMAGE_SUFFIXES, ImageLimits, read_image
from defacebench.run.faces import best_face

_SEED_NAME = re.compile(r"^person_(?P<id>.+?)_view_(?P<view>[A-Za-z0-9+\-_]+)$")


def subject_id_from_name(path: Path | str) -> str:
    """Subject id of an image file: ``person_{id}_view_{view}.png`` -> id, else the file stem."""
    stem = Path(path).stem
    match = _SEED_NAME.match(stem)
    return match.group("id") if match else stem


def scan_images(folder: Path) -> dict[str, Path]:
    """subject id -> image file for every image in ``folder`` (sorted by id; non-images ignored).

    Raises DatasetError when the folder is missing, holds no image, or two files give one id.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: image folder not found; pass an existing folder of renders")
    found: dict[str, Path] = {}
    for path in sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
        sid = subject_id_from_name(path)
        if sid in found:
            raise DatasetError(f"{folder}: {found[sid].name} and {path.name} both give subject id {sid!r}; "
                               "keep one image per subject (e.g. only the frontal view)")
        found[sid] = path
    if not found:
        raise DatasetError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)}); "
                           "expected person_{id}_view_frontal.png or {id}.png")
    return dict(sorted(found.items()))


@dataclass(frozen=True)
class ImageOutcome:
    """What happened to one image: ``outcome`` is "face", "no_face" or "unreadable"."""

    role: str
    subject_id: str
    file: str
    outcome: str
    face: Face | None
    error: str = ""


@dataclass(frozen=True)
class IdentifyResult:
    """Everything ``identify`` computed and wrote."""

    matrix: Any  # defacebench.metrics.DistanceMatrix
    evaluation: Any  # defacebench.metrics.Evaluation
    outcomes: tuple[ImageOutcome, ...]
    detection_rate_gallery: float
    detection_rate_probe: float
    n_embedded: int
    out_dir: Path


def detect_folder(role: str, images: dict[str, Path], detector,
                  limits: ImageLimits | None = None) -> list[tuple[ImageOutcome, np.ndarray | None]]:
    """Read and detect every image of one side; keeps the best face (montage.best_face rule).

    An image that cannot be read (corrupt, over ``limits``) is an "unreadable" outcome with its
    one-line error: it stays a non-match and the other images go on."""
    results = []
    for sid, path in images.items():
        try:
            image = read_image(path, limits)
        except ImageError as err:
            results.append((ImageOutcome(role, sid, path.name, "unreadable", None, str(err)), None))
            continue
        face = best_face(detector.detect(image))
        outcome = "face" if face is not None else "no_face"
        results.append((ImageOutcome(role, sid, path.name, outcome, face), image))
    return results


def check_readable(results: list[tuple[ImageOutcome, np.ndarray | None]], folder: Path) -> None:
    """Raise ImageError when no image of one side could be read: every score would then be a
    non-match, which reads as perfect protection, while nothing was compared at all."""
    if results and all(o.outcome == "unreadable" for o, _ in results):
        first = results[0][0]
        raise ImageError(f"{folder}: every {first.role} image is unreadable ({len(results)} of {len(results)}; "
                         f"first: {first.error}); there is nothing to score. Fix: replace the files with readable "
                         "PNG/JPEG images, or point to the right folder")


def embed_side(results: list[tuple[ImageOutcome, np.ndarray | None]], recognizer) -> np.ndarray:
    """One batched embed call for every image of a side with a face; NaN rows for the others."""
    present = [i for i, (o, _) in enumerate(results) if o.face is not None]
    vectors = recognizer.embed([(results[i][1], results[i][0].face) for i in present]) if present else None
    dim = vectors.shape[1] if vectors is not None else int(getattr(recognizer, "dim", 1) or 1)
    out = np.full((len(results), dim), np.nan)
    if vectors is not None:
        out[present] = vectors
    return out


def _rate(results: Sequence[tuple[ImageOutcome, Any]]) -> float:
    """Fraction of images with a kept face."""
    return float(np.mean([o.face is not None for o, _ in results])) if results else 0.0


def identify(gallery_dir: Path, probe_dir: Path, detector, recognizer, out_dir: Path, *,
             calibration: float = 0.7, seed: int = 0, n_bootstrap: int = 1000,
             policy: str = "f1", limits: ImageLimits | None = None) -> IdentifyResult:
    """Detect, embed once, build the gallery x probe distance matrix, evaluate and write outputs."""
    from defacebench.metrics import DistanceMatrix, evaluate_matrix

    ensure_writable_dir(Path(out_dir), "the identify outputs")  # a read-only --out fails before any work
    gallery = detect_folder("gallery", scan_images(gallery_dir), detector, limits)
    probe = detect_folder("probe", scan_images(probe_dir), detector, limits)
    for side, folder in ((gallery, gallery_dir), (probe, probe_dir)):
        check_readable(side, Path(folder))
    g_vec, p_vec = embed_side(gallery, recognizer), embed_side(probe, recognizer)
    matrix = DistanceMatrix.from_embeddings([o.subject_id for o, _ in gallery], g_vec,
                                            [o.subject_id for o, _ in probe], p_vec, metric=recognizer.metric)
    rates = {"gallery": _rate(gallery), "probe": _rate(probe)}
    evaluation = evaluate_matrix(matrix, calibration=calibration, seed=seed, n_bootstrap=n_bootstrap,
                                 policy=policy, detection=rates)
    outcomes = tuple(o for o, _ in gallery + probe)
    embedded = sum(o.face is not None for o in outcomes)  # each kept face is embedded once
    result = IdentifyResult(matrix, evaluation, outcomes, rates["gallery"], rates["probe"], embedded, Path(out_dir))
    write_outputs(result, detector, recognizer)
    return result


def _plugin_record(plugin) -> dict:
    """Name, version and params of a plugin, for metrics.json."""
    params = getattr(plugin, "params", None)
    return {"name": plugin.name, "version": getattr(plugin, "version", ""),
            "params": asdict(params) if is_dataclass(params) else {}}


def write_outputs(result: IdentifyResult, detector, recognizer) -> None:
    """Write distances.csv, metrics.json and faces.csv into ``result.out_dir``."""
    out = ensure_writable_dir(result.out_dir, "the identify outputs")
    result.matrix.to_csv(out / "distances.csv")
    metrics = result.evaluation.to_dict()
    metrics.update({"detection_rate_gallery": result.detection_rate_gallery,
                    "detection_rate_probe": result.detection_rate_probe,
                    "n_embedded": result.n_embedded,
                    "attacker": {"detector": _plugin_record(detector), "recognizer": _plugin_record(recognizer)}})
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    rows = [["role", "subject_id", "file", "outcome", "score", "x0", "y0", "x1", "y1", "error"]]
    for o in result.outcomes:
        box = list(o.face.box) if o.face else ["", "", "", ""]
        rows.append([o.role, o.subject_id, o.file, o.outcome, o.face.score if o.face else "", *box, o.error])
    with tempfile.TemporaryFile("w+", newline="") as buf:
        csv.writer(buf).writerows(rows)
        buf.seek(0)
        atomic_write_text(out / "faces.csv", buf.read())
