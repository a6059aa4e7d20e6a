"""Distance matrices: gallery ids x probe ids, smaller = more similar, +inf = no possible match.

A :class:`DistanceMatrix` is what every configuration produces and what every metric consumes.
Rows are the gallery (original renders), columns the probe (defaced renders); a genuine pair is a
row and a column with the same subject id. A probe without a face (or whose defacing failed) keeps
its column, filled with +inf: it is a non-match at every threshold, never a dropped row.

Two CSV layouts are read and written (the layout is detected when reading):

* ``ours``: the corner cell is ``metric=<name>``, the first row holds the probe ids, the first
  column the gallery ids; values are written with ``repr`` so they round-trip exactly, ``inf``
  for missing.
* ``seed``: the seed study's layout, corner cell empty, columns ``<id>_d`` (defaced), rows
  ``<id>_n`` (original). The study's files carry no metric name, so one is passed in (or
  ``cosine`` is assumed, the metric of the study's first two recognizers).

Empty cells and ``nan`` read as +inf (no comparison was possible = a non-match); NaN cells are
counted and announced with a :class:`NonMatchWarning` naming the file, because a NaN may also be a
bug upstream. Negative distances are refused (cosine tolerates rounding down to -1e-6).
"""

from __future__ import annotations

import csv
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from defacebench.util.fsutil import atomic_write_text

from defacebench.contracts import METRICS
from defacebench.errors import EvaluationError

LAYOUTS = ("ours", "seed")
MATRIX_METRICS = (*METRICS, "svm")
"""What a matrix's values may be: a recognizer's distance, or ``svm`` = 1 / (1 + exp(decision value)) of
a per-subject SVM (in (0, 1), smaller = more similar; see defacebench.run.scenarios)."""
_CORNER_PREFIX = "metric="
COSINE_ROUNDING = 1e-6
"""How far below 0 a cosine distance may be (floating-point rounding of 1 - cos) before it is refused."""


class NonMatchWarning(UserWarning):
    """Cells of a distance matrix file that were read as non-matches (+inf) although they held NaN."""


def negative_cell(values: np.ndarray, metric: str) -> tuple[int, int] | None:
    """(row, column) of the first distance below 0 (below -COSINE_ROUNDING for cosine), or None."""
    floor = -COSINE_ROUNDING if metric == "cosine" else 0.0
    bad = np.argwhere(np.asarray(values) < floor)
    return (int(bad[0][0]), int(bad[0][1])) if len(bad) else None


def _negative_message(value: float, metric: str, cell: str) -> str:
    return (f"distance {value:g} at {cell} is negative; {metric} distances are >= 0"
            f"{f' (cosine tolerates > -{COSINE_ROUNDING:g} from rounding)' if metric == 'cosine' else ''}. "
            "Fix: write distances (smaller = more similar), not similarities or log-scores")


@dataclass(frozen=True, eq=False)
class DistanceMatrix:
    """Distances between gallery entries (rows) and probe entries (columns) under ``metric``."""

    gallery_ids: tuple[str, ...]
    probe_ids: tuple[str, ...]
    values: np.ndarray
    metric: str

    def __post_init__(self) -> None:
        """Validate shape, id uniqueness, metric and values (no NaN, no -inf); freeze values."""
        values = np.array(self.values, dtype=np.float64, copy=True)
        object.__setattr__(self, "gallery_ids", tuple(str(i) for i in self.gallery_ids))
        object.__setattr__(self, "probe_ids", tuple(str(i) for i in self.probe_ids))
        if self.metric not in MATRIX_METRICS:
            raise EvaluationError(f"distance metric {self.metric!r} is unknown: use one of {MATRIX_METRICS}")
        shape = (len(self.gallery_ids), len(self.probe_ids))
        if values.shape != shape:
            raise EvaluationError(
                f"distance matrix has shape {values.shape} but {shape[0]} gallery and {shape[1]} "
                "probe ids: give one row per gallery id and one column per probe id"
            )
        for side, ids in (("gallery", self.gallery_ids), ("probe", self.probe_ids)):
            if len(set(ids)) != len(ids):
                raise EvaluationError(f"{side} ids are not unique: each subject may appear once per side")
        if np.isnan(values).any() or np.isneginf(values).any():
            raise EvaluationError("distance matrix holds NaN or -inf: use +inf for 'no comparison possible'")
        bad = negative_cell(values, self.metric)
        if bad is not None:
            cell = f"gallery {self.gallery_ids[bad[0]]!r}, probe {self.probe_ids[bad[1]]!r}"
            raise EvaluationError(_negative_message(float(values[bad]), self.metric, cell))
        values.setflags(write=False)
        object.__setattr__(self, "values", values)

    def __eq__(self, other: object) -> bool:
        """Equal when ids, metric and every value (including +inf) are equal."""
        if not isinstance(other, DistanceMatrix):
            return NotImplemented
        return (
            self.gallery_ids == other.gallery_ids
            and self.probe_ids == other.probe_ids
            and self.metric == other.metric
            and np.array_equal(self.values, other.values)
        )

    __hash__ = None  # type: ignore[assignment]  # arrays are not hashable

    @property
    def shape(self) -> tuple[int, int]:
        """(number of gallery ids, number of probe ids)."""
        return self.values.shape  # type: ignore[return-value]

    def subset(self, ids: Sequence[str]) -> "DistanceMatrix":
        """The sub-matrix of the rows and columns whose id is in ``ids`` (order kept)."""
        keep = set(ids)
        rows = [i for i, g in enumerate(self.gallery_ids) if g in keep]
        cols = [j for j, p in enumerate(self.probe_ids) if p in keep]
        return DistanceMatrix(
            tuple(self.gallery_ids[i] for i in rows),
            tuple(self.probe_ids[j] for j in cols),
            self.values[np.ix_(rows, cols)],
            self.metric,
        )

    def subject_ids(self) -> tuple[str, ...]:
        """Every subject id, gallery order first, then probe-only ids (file order)."""
        seen = dict.fromkeys(self.gallery_ids)
        seen.update(dict.fromkeys(self.probe_ids))
        return tuple(seen)

    @classmethod
    def from_embeddings(
        cls,
        gallery_ids: Sequence[str],
        gallery: np.ndarray,
        probe_ids: Sequence[str],
        probe: np.ndarray,
        *,
        metric: str,
    ) -> "DistanceMatrix":
        """Distances between every gallery and probe embedding (rows with NaN = missing -> +inf).

        Definitions follow deepface: cosine = 1 - cos angle, euclidean = L2 distance, euclidean_l2
        = L2 distance of the unit-normalised vectors. A zero vector has no direction, so under
        cosine / euclidean_l2 it is treated as missing too.
        """
        from scipy.spatial.distance import cdist

        g = np.asarray(gallery, dtype=np.float64)
        p = np.asarray(probe, dtype=np.float64)
        if g.ndim != 2 or p.ndim != 2 or g.shape[1] != p.shape[1]:
            raise EvaluationError(
                f"embeddings must be 2-D with the same width, got gallery {g.shape} and probe {p.shape}"
            )
        if metric not in METRICS:
            raise EvaluationError(f"distance metric {metric!r} is unknown: use one of {METRICS}")
        g_ok, p_ok = _usable_rows(g, metric), _usable_rows(p, metric)
        values = np.full((g.shape[0], p.shape[0]), np.inf)
        if g_ok.any() and p_ok.any():
            gv, pv = g[g_ok], p[p_ok]
            if metric == "euclidean_l2":
                gv = gv / np.linalg.norm(gv, axis=1, keepdims=True)
                pv = pv / np.linalg.norm(pv, axis=1, keepdims=True)
            kind = "cosine" if metric == "cosine" else "euclidean"
            values[np.ix_(g_ok, p_ok)] = cdist(gv, pv, metric=kind)
        return cls(tuple(gallery_ids), tuple(probe_ids), values, metric)

    def to_csv(self, path: Path, *, layout: str = "ours") -> None:
        """Write the matrix as CSV in ``layout`` (``ours`` or ``seed``), atomically."""
        if layout not in LAYOUTS:
            raise EvaluationError(f"CSV layout {layout!r} is unknown: use one of {LAYOUTS}")
        if layout == "seed":
            header = [""] + [f"{p}_d" for p in self.probe_ids]
            labels = [f"{g}_n" for g in self.gallery_ids]
        else:
            header = [f"{_CORNER_PREFIX}{self.metric}", *self.probe_ids]
            labels = list(self.gallery_ids)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(header)
        for label, row in zip(labels, self.values):
            writer.writerow([label, *(repr(float(v)) for v in row)])
        atomic_write_text(Path(path), buf.getvalue())

    @classmethod
    def read_csv(cls, path: Path, *, metric: str | None = None) -> "DistanceMatrix":
        """Read a CSV in either layout (auto-detected); ``metric`` overrides / supplies the metric."""
        path = Path(path)
        try:
            with open(path, newline="", encoding="utf-8-sig") as fh:
                rows = [r for r in csv.reader(fh) if any(cell.strip() for cell in r)]
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise EvaluationError(f"{path}: cannot read the distance matrix CSV ({exc})") from exc
        if len(rows) < 2 or len(rows[0]) < 2:
            raise EvaluationError(f"{path}: needs a header row of probe ids and at least one gallery row")
        layout = detect_layout(rows)
        header, body = rows[0], rows[1:]
        if layout == "seed":
            probe_ids = [c.strip()[: -len("_d")] for c in header[1:]]
            gallery_ids = [r[0].strip()[: -len("_n")] for r in body]
            file_metric = None
        else:
            corner = header[0].strip()
            file_metric = corner[len(_CORNER_PREFIX):] if corner.startswith(_CORNER_PREFIX) else None
            probe_ids = [c.strip() for c in header[1:]]
            gallery_ids = [r[0].strip() for r in body]
        if metric is not None and file_metric is not None and metric != file_metric:
            raise EvaluationError(f"{path}: file says metric {file_metric!r} but {metric!r} was asked for")
        chosen = metric or file_metric or "cosine"
        values, n_nan = _parse_values(path, body, len(probe_ids))
        bad = negative_cell(values, chosen)
        if bad is not None:
            cell = f"row {bad[0] + 2}, column {bad[1] + 2} ({gallery_ids[bad[0]]} x {probe_ids[bad[1]]})"
            raise EvaluationError(f"{path}: {_negative_message(float(values[bad]), chosen, cell)}")
        if n_nan:
            warnings.warn(f"{path}: {n_nan} NaN cell(s) read as non-matches (+inf, no comparison possible); "
                          "if NaN means an error upstream, fix the file", NonMatchWarning, stacklevel=2)
        try:
            return cls(tuple(gallery_ids), tuple(probe_ids), values, chosen)
        except EvaluationError as exc:
            raise EvaluationError(f"{path}: {exc}") from exc


def detect_layout(rows: list[list[str]]) -> str:
    """``seed`` when the corner is empty, columns end in ``_d`` and rows in ``_n``, else ``ours``."""
    header = rows[0]
    if (
        header[0].strip() == ""
        and all(c.strip().endswith("_d") for c in header[1:])
        and all(r[0].strip().endswith("_n") for r in rows[1:])
    ):
        return "seed"
    return "ours"


def _parse_values(path: Path, body: list[list[str]], width: int) -> tuple[np.ndarray, int]:
    """Parse the numeric body; empty / nan cells become +inf (no comparison = non-match).
    Returns the values and how many cells were NaN."""
    out = np.empty((len(body), width))
    n_nan = 0
    for i, row in enumerate(body):
        cells = row[1:]
        if len(cells) != width:
            raise EvaluationError(
                f"{path}: row {i + 2} has {len(cells)} values but the header has {width} probe ids"
            )
        for j, cell in enumerate(cells):
            text = cell.strip()
            try:
                v = float(text) if text else np.inf
            except ValueError as exc:
                raise EvaluationError(f"{path}: row {i + 2}, column {j + 2}: {text!r} is not a number") from exc
            n_nan += bool(np.isnan(v))
            out[i, j] = np.inf if np.isnan(v) else v
    return out, n_nan


def _usable_rows(x: np.ndarray, metric: str) -> np.ndarray:
    """Rows that are finite (and, for direction-based metrics, non-zero)."""
    ok = np.isfinite(x).all(axis=1)
    if metric in ("cosine", "euclidean_l2"):
        ok &= np.linalg.norm(np.where(np.isfinite(x), x, 0.0), axis=1) > 0
    return ok


