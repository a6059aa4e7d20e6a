"""Attack scenarios as data, and the fusions that turn view-level embeddings into one subject matrix.

A :class:`Scenario` says what feeds the gallery (which acquisition, defaced by which defacer, which
views) and the probe, and how view-level scores become one subject-pair score. Built in:

* ``rescan``: gallery = the undefaced render of the subject's other acquisition, probe = the defaced
  scan, first view each (removes the same-scan confound; the default).
* ``seed``: gallery = the undefaced render of the very scan that was defaced (the original study).
* ``multiview``: K views each side; pair score = the minimum distance over view pairs, and also the
  distance of the mean embeddings; both are reported, the stronger one counts.
* ``svm``: one linear SVM per gallery subject on its K gallery views against every other subject's
  views; a probe's views are scored by the decision function and fused by their mean (the published
  open-source attack).
* ``aware``: the attacker defaces the gallery scan with the same defacer before rendering (defaced
  vs defaced across acquisitions): a refacer's template face or a tool-specific cut can give a
  subject away.
* ``refill_template`` / ``refill_learned``: as ``rescan``, but the attacker first reconstructs the
  removed face of the defaced probe from a population of the *other* subjects (a transplanted mean
  face, or a PCA + ridge model from what the tool leaves to what it removes; see
  :mod:`defacebench.attacks.refill`).

Fusions are pure functions of per-subject view embeddings, so permuting subjects permutes the
matrix (a property test checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from defacebench.errors import DefacebenchError
from defacebench.metrics.distance import DistanceMatrix


@dataclass(frozen=True)
class Side:
    """One side of a comparison: ``acquisition`` is ``probe`` (the scan that is defaced) or ``other``
    (the subject's other acquisition); ``defaced`` is ``none`` (undefaced) or ``tested`` (by the
    configuration's defacer)."""

    acquisition: str
    defaced: str


@dataclass(frozen=True)
class Scenario:
    """What the attacker compares, and how view scores become one subject-pair score.

    ``views`` is ``first`` (the renderer's first view) or ``grid`` (the run's view grid);
    ``fusions`` are evaluated in order and the one with the highest rank-1 counts for the verdict."""

    name: str
    gallery: Side
    probe: Side
    views: str = "first"
    fusions: tuple[str, ...] = ("single",)
    description: str = ""
    refill: str = ""  # the reconstructor (defacebench.attacks.refill.METHODS) applied to the probe, or none

    def probe_source(self, defacer: str) -> str:
        """The pipeline's name for the probe volumes: the defacer's output, or ``defacer+method``
        once the attacker has refilled it."""
        return f"{defacer}+{self.refill}" if self.refill else defacer

    @property
    def needs_other_acquisition(self) -> bool:
        return "other" in (self.gallery.acquisition, self.probe.acquisition)

    @property
    def defaced_gallery(self) -> bool:
        return self.gallery.defaced == "tested"


_PROBE = Side("probe", "tested")
SCENARIOS: dict[str, Scenario] = {
    "rescan": Scenario("rescan", Side("other", "none"), _PROBE,
                       description="undefaced other acquisition vs defaced scan, first view"),
    "seed": Scenario("seed", Side("probe", "none"), _PROBE,
                     description="undefaced render of the same scan vs defaced scan (the original study)"),
    "multiview": Scenario("multiview", Side("other", "none"), _PROBE, views="grid", fusions=("min", "mean"),
                          description="view grid each side; min over view pairs and mean embedding"),
    "svm": Scenario("svm", Side("other", "none"), _PROBE, views="grid", fusions=("svm",),
                    description="view grid; one linear SVM per gallery subject, probe views fused by mean"),
    "aware": Scenario("aware", Side("other", "tested"), _PROBE,
                      description="the attacker defaces the other acquisition with the same tool"),
    "refill_template": Scenario("refill_template", Side("other", "none"), _PROBE, refill="template",
                                description="the removed face refilled with the other subjects' mean face, "
                                            "then rescan"),
    "refill_learned": Scenario("refill_learned", Side("other", "none"), _PROBE, refill="learned",
                               description="the removed face refilled by a PCA + ridge model trained on the other "
                                           "subjects defaced with the same tool, then rescan"),
}


class ScenarioError(DefacebenchError, ValueError):
    """An unknown scenario or fusion name."""


def get_scenario(name: str) -> Scenario:
    """The scenario called ``name`` (a ``name@attackers`` spec names it too)."""
    name = name.split("@", 1)[0]
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ScenarioError(f"scenario {name!r} is unknown: use one of {', '.join(SCENARIOS)}") from None


@dataclass(frozen=True)
class ScenarioSpec:
    """A scenario as the run asks for it: ``name`` and the attackers it runs for, a glob over
    ``renderer-detector-recognizer`` (``*`` = every attacker). ``multiview@surface-dlib_hog-*`` runs
    the many-view attack only with the surface renderer and dlib's HOG detector: view grids multiply
    detection and embedding work by the number of views, so a run can spend it where it is cheap."""

    name: str
    attackers: str = "*"

    @classmethod
    def parse(cls, text: str) -> "ScenarioSpec":
        name, _, pattern = text.strip().partition("@")
        get_scenario(name)
        if pattern and (pattern.count("-") > 2 or not pattern.replace("-", "")):
            raise ScenarioError(f"scenario spec {text!r}: the attacker pattern is a glob over renderer-detector-"
                                "recognizer, e.g. multiview@surface-dlib_hog-* or multiview@surface-*")
        return cls(name, pattern or "*")

    def covers(self, renderer: str, detector: str, recognizer: str) -> bool:
        from fnmatch import fnmatchcase

        return fnmatchcase(f"{renderer}-{detector}-{recognizer}", self.attackers)


# ------------------------------------------------------------------------------------------------
# Fusions: per-subject view embeddings (n_views_i, d) with NaN rows for views without a face
# ------------------------------------------------------------------------------------------------


def fuse(fusion: str, gallery_ids: Sequence[str], gallery: Sequence[np.ndarray], probe_ids: Sequence[str],
         probe: Sequence[np.ndarray], *, metric: str, svm_c: float = 1.0) -> DistanceMatrix:
    """Subject x subject matrix from per-subject view embeddings under ``fusion``.

    ``gallery[i]`` is (n_views, d) for subject ``gallery_ids[i]`` (NaN rows: no face in that view);
    a subject without any embedded view is a +inf row/column (a non-match)."""
    if fusion == "single":
        return _pairwise([_first(v) for v in gallery], [_first(v) for v in probe], gallery_ids, probe_ids, metric)
    if fusion == "mean":
        return _pairwise([_mean(v, metric) for v in gallery], [_mean(v, metric) for v in probe],
                         gallery_ids, probe_ids, metric)
    if fusion == "min":
        return _min_over_views(gallery_ids, gallery, probe_ids, probe, metric)
    if fusion == "svm":
        return _svm(gallery_ids, gallery, probe_ids, probe, c=svm_c)
    raise ScenarioError(f"fusion {fusion!r} is unknown: use single, mean, min or svm")


def _width(views: Sequence[np.ndarray]) -> int:
    return next((v.shape[1] for v in views if v.ndim == 2 and v.shape[1]), 1)


def _first(v: np.ndarray) -> np.ndarray:
    return v[0] if len(v) else np.full(1, np.nan)


def _valid(v: np.ndarray) -> np.ndarray:
    return v[np.isfinite(v).all(axis=1)] if len(v) else v


def _mean(v: np.ndarray, metric: str) -> np.ndarray:
    """Mean of a subject's view embeddings; unit-normalised first under direction-based metrics, so
    each view weighs the same whatever its norm."""
    ok = _valid(v)
    if not len(ok):
        return np.full(v.shape[1] if v.ndim == 2 else 1, np.nan)
    if metric in ("cosine", "euclidean_l2"):
        ok = ok / np.maximum(np.linalg.norm(ok, axis=1, keepdims=True), 1e-12)
    return ok.mean(axis=0)


def _stack(vectors: Sequence[np.ndarray], width: int) -> np.ndarray:
    out = np.full((len(vectors), width), np.nan)
    for i, v in enumerate(vectors):
        if v.size == width:
            out[i] = v
    return out


def _pairwise(g: Sequence[np.ndarray], p: Sequence[np.ndarray], gallery_ids, probe_ids, metric) -> DistanceMatrix:
    width = max(_width([np.atleast_2d(x) for x in g]), _width([np.atleast_2d(x) for x in p]))
    return DistanceMatrix.from_embeddings(tuple(gallery_ids), _stack(g, width), tuple(probe_ids), _stack(p, width),
                                          metric=metric)


def _owners(views: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """All valid view vectors stacked, and the index of the subject each belongs to."""
    width = _width(views)
    rows = [_valid(v) if v.ndim == 2 and v.shape[1] == width else np.empty((0, width)) for v in views]
    owners = np.concatenate([np.full(len(r), i) for i, r in enumerate(rows)]) if rows else np.empty(0, int)
    stacked = np.concatenate(rows) if rows else np.empty((0, width))
    return stacked, owners.astype(int)


def _min_over_views(gallery_ids, gallery, probe_ids, probe, metric) -> DistanceMatrix:
    g, g_own = _owners(gallery)
    p, p_own = _owners(probe)
    values = np.full((len(gallery_ids), len(probe_ids)), np.inf)
    if len(g) and len(p) and g.shape[1] == p.shape[1]:
        views = DistanceMatrix.from_embeddings(tuple(map(str, range(len(g)))), g, tuple(map(str, range(len(p)))), p,
                                               metric=metric).values
        per_gallery = np.full((len(gallery_ids), len(p)), np.inf)
        np.minimum.at(per_gallery, g_own, views)
        np.minimum.at(values.T, p_own, per_gallery.T)
    return DistanceMatrix(tuple(gallery_ids), tuple(probe_ids), values, metric)


def _svm(gallery_ids, gallery, probe_ids, probe, *, c: float) -> DistanceMatrix:
    """One linear SVM per gallery subject (its views vs every other subject's); a probe's score is
    the mean decision value over its views, mapped to a distance 1 / (1 + exp(score)) in (0, 1)."""
    from sklearn.svm import LinearSVC

    g, g_own = _owners(gallery)
    p, p_own = _owners(probe)
    values = np.full((len(gallery_ids), len(probe_ids)), np.inf)
    if not (len(g) and len(p)) or g.shape[1] != p.shape[1] or len(np.unique(g_own)) < 2:
        return DistanceMatrix(tuple(gallery_ids), tuple(probe_ids), values, "svm")
    # train on samples in subject-id order, whatever the input order: liblinear's result depends on
    # sample order, and permuting subjects must permute the matrix exactly
    order = np.lexsort((np.arange(len(g_own)), np.asarray(gallery_ids, dtype=object)[g_own].astype(str)))
    g, g_own, p = _unit(g[order]), g_own[order], _unit(p)
    counts = np.bincount(p_own, minlength=len(probe_ids))
    for i in np.unique(g_own):
        model = LinearSVC(C=c, class_weight="balanced", max_iter=20000, random_state=0).fit(g, g_own == i)
        sums = np.bincount(p_own, weights=model.decision_function(p), minlength=len(probe_ids))
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            values[i] = np.where(counts > 0, 1.0 / (1.0 + np.exp(sums / np.maximum(counts, 1))), np.inf)
    return DistanceMatrix(tuple(gallery_ids), tuple(probe_ids), values, "svm")


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
