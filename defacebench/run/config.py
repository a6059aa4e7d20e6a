"""Configuration identity and run settings.

A configuration is one ``(defacer, renderer, detector, recognizer)`` tuple; its id is the four names
joined by ``-`` (names themselves never contain ``-``), which is exactly the pytest id, so
``-k fsl`` or ``-k "pydeface and not ants"`` select naturally. :class:`RunConfig` holds every
run-level setting; it is built from the one option table (:mod:`defacebench.run.options`) and
recorded whole in the run's manifest.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, fields
from pathlib import Path

from defacebench.contracts import KINDS
from defacebench.errors import DefacebenchError


class ConfigError(DefacebenchError, ValueError):
    """A run setting is invalid (the message names the option and the fix)."""


@dataclass(frozen=True, order=True)
class ConfigId:
    """One configuration of the product of the four plugin kinds."""

    defacer: str
    renderer: str
    detector: str
    recognizer: str

    def __str__(self) -> str:
        return "-".join(self.parts)

    @property
    def parts(self) -> tuple[str, str, str, str]:
        return (self.defacer, self.renderer, self.detector, self.recognizer)

    @property
    def attacker(self) -> tuple[str, str, str]:
        """(renderer, detector, recognizer): the attacker this configuration's defacer faces."""
        return (self.renderer, self.detector, self.recognizer)

    @classmethod
    def parse(cls, text: str) -> "ConfigId":
        parts = text.split("-")
        if len(parts) != 4 or not all(parts):
            raise DefacebenchError(f"configuration id {text!r} must be defacer-renderer-detector-recognizer")
        return cls(*parts)


CLEANUPS = ("mask", "seed_range", "none")
EXECUTORS = ("local", "serial", "dask")
CONVERTERS = ("pydicom", "dicom2nifti", "dcm2niix", "simpleitk")
MODALITY_CHOICES = ("auto", "ct", "mri")
FAILED_DEFACING = ("exposed", "excluded", "nonmatch")
PLUGIN_SETS = ("default", "all")
QC_LABELS = ("ok", "face_intact", "brain_damaged", "head_removed", "failed")
"""The QC labels ``--qc-filter`` accepts: those of :data:`defacebench.anatomy.qc.LABELS` (kept here so
parsing the options does not import the QC's image code; a test checks they agree)."""
COMPARE_RULES = ("noise", "delta")
DEFAULT_SCENARIOS = ("rescan", "multiview@surface-dlib_hog-dlib_resnet", "svm@surface-dlib_hog-dlib_resnet",
                     "aware@*-dlib_hog-dlib_resnet", "refill_template@surface-dlib_hog-dlib_resnet")
"""Scenario specs run when ``--scenarios`` is not given (see defacebench.run.scenarios.ScenarioSpec).

Why these: a verdict must include the strongest attacks (a defacer looks safe against one frontal
view far more often than against many views, an SVM or an attacker who knows the tool). The
many-view attacks multiply rendering, detection and embedding by the views (15), so by default they
run with one attacker, the surface renderer with dlib's HOG detector and ResNet recognizer (the
cheapest valid one: control rank-1 1.0 on the sample); ``aware`` costs one more defacing and one
render per gallery scan, so it runs with both renderers. ``refill_template`` (the attacker
reconstructs the removed face from the other subjects' mean head, then recognizes it; issue 21)
adds a depth map per probe, a reconstruction and one render per refilled probe (about a CPU second
per tested probe), so it runs with the surface attacker; it is the stronger of the two
reconstructors on the CT sample (docs/refill.md); ``refill_learned`` (PCA + ridge) is opt-in.
``--scenarios`` widens or narrows this."""


@dataclass(frozen=True)
class RunConfig:
    """Every run-level setting of a benchmark run (recorded in ``manifest.json``).

    ``dataset`` None means the embedded sample (generated or found in the cache on first use), with
    ``sample_subjects`` subjects (None: its default 16; CI runs a smaller one to stay in its budget).
    ``scenarios`` name what feeds the gallery and probe (:mod:`defacebench.run.scenarios`).
    ``failed_defacing`` says how a subject whose defacing failed is scored: ``exposed`` (default:
    with its undefaced probe, what a user would otherwise share), ``excluded`` or ``nonmatch``.
    ``plugin_set`` ``default`` leaves out plugins that declare themselves opt-in unless a
    restriction (``detectors`` etc.) names them; ``all`` runs every available plugin.
    """

    dataset: Path | None = None
    sample_subjects: int | None = None  # None: the sample's default (16); only without ``dataset``
    results: Path = Path("results/runs")
    cache_dir: Path | None = None
    plugins_file: Path | None = None
    defacers: tuple[str, ...] = ()
    renderers: tuple[str, ...] = ()
    detectors: tuple[str, ...] = ()
    recognizers: tuple[str, ...] = ()
    executor: str = "local"
    scheduler: str | None = None
    workers: int | None = None
    run_ahead: bool = False  # opt-in: measured slower on 2 idle cores (docs/benchmarks.md, "run-ahead")
    scenarios: tuple[str, ...] = DEFAULT_SCENARIOS
    plugin_set: str = "default"
    protocol: str = "default"
    calibration: float = 0.7
    seed: int = 0
    n_bootstrap: int = 1000
    policy: str = "f1"
    cleanup: str = "mask"
    converter: str = "pydicom"
    modality: str = "auto"
    qc_filter: str | None = None
    failed_defacing: str = "exposed"
    defacer_fail_share: float = 0.2
    attacker_floor: float = 0.5
    view_grid: tuple[float, float, float, float, int] = (30.0, 15.0, 15.0, 15.0, 1)
    max_views: int = 400
    images: bool = True
    run_id: str = ""
    compare: Path | None = None
    compare_fail: tuple[tuple[str, float | None], ...] = (("rank1", 0.05), ("roc_auc", 0.05))
    save_baseline: Path | None = None
    # --- the verdict's statistics and the gate's noise rule (report/verdict.py, report/compare.py) ---
    alpha: float = 0.05
    permutations: int = 2000
    permutation_seed: int = 0
    cross_fit_repeats: int = 200
    anatomy_fail_share: float | None = None  # None: the same as defacer_fail_share
    compare_rule: str = "noise"

    def __post_init__(self) -> None:
        checks = {"cleanup": CLEANUPS, "executor": EXECUTORS, "converter": CONVERTERS,
                  "failed_defacing": FAILED_DEFACING, "modality": MODALITY_CHOICES,
                  "plugin_set": PLUGIN_SETS}
        for name, allowed in checks.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name}={getattr(self, name)!r} is not one of {', '.join(allowed)}")
        if self.compare_rule not in COMPARE_RULES:
            raise ConfigError(f"compare_rule={self.compare_rule!r} is not one of {', '.join(COMPARE_RULES)}")
        if not 0.0 < self.alpha < 1.0:
            raise ConfigError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.permutations < 1 or self.cross_fit_repeats < 1:
            raise ConfigError(f"permutations and cross_fit_repeats must be >= 1, got {self.permutations} and "
                              f"{self.cross_fit_repeats}")
        if self.anatomy_fail_share is not None and not 0.0 <= self.anatomy_fail_share <= 1.0:
            raise ConfigError(f"anatomy_fail_share must be a fraction in [0, 1], got {self.anatomy_fail_share}")
        for name in ("calibration", "defacer_fail_share", "attacker_floor"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0 or (name == "calibration" and value == 0.0):
                raise ConfigError(f"{name} must be a fraction in {'(0, 1]' if name == 'calibration' else '[0, 1]'}, "
                                  f"got {value}")
        if self.sample_subjects is not None:
            if self.dataset is not None:
                raise ConfigError("--sample-subjects sizes the embedded sample, but --dataset names another dataset: "
                                  "drop one of them")
            if self.sample_subjects < 4:
                raise ConfigError(f"--sample-subjects must be >= 4 (a calibration/held-out split keeps >= 2 subjects "
                                  f"on each side), got {self.sample_subjects}")
        if not self.scenarios:
            raise ConfigError("scenarios is empty: name at least one, e.g. rescan")
        if self.qc_filter is not None and self.qc_filter not in QC_LABELS:
            raise ConfigError(f"--qc-filter {self.qc_filter!r} is not a QC label: use one of {', '.join(QC_LABELS)}")
        self._check_together()

    def _check_together(self) -> None:
        """Options that are valid alone but not together, refused before any work: a protocol that
        fixes its threshold policy, and a view grid over the views budget."""
        from defacebench.metrics.protocols import get_protocol
        from defacebench.run.viewgrid import check_budget

        protocol = get_protocol(self.protocol)
        if protocol.policies and self.policy not in protocol.policies:
            raise ConfigError(f"--protocol {self.protocol} --policy {self.policy}: the {self.protocol} protocol fixes "
                              f"the policy to {', '.join(protocol.policies)} (its Youden threshold is reported too); "
                              "drop --policy or use --protocol default")
        problem = check_budget(self.view_grid, self.max_views)
        if problem:
            raise ConfigError(problem)

    @property
    def restrict(self) -> dict[str, tuple[str, ...]]:
        """kind -> the plugin names the run is restricted to (absent: every installed plugin)."""
        return {kind: getattr(self, kind) for kind in KINDS if getattr(self, kind)}

    def to_dict(self) -> dict:
        """JSON-able view for the manifest (paths as strings, tuples as lists)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Path):
                value = os.fspath(value)
            elif isinstance(value, tuple):
                value = [list(v) if isinstance(v, tuple) else v for v in value]
            out[f.name] = value
        return out


def product(names: dict[str, list[str]], restrict: dict[str, tuple[str, ...]] | None = None) -> list[ConfigId]:
    """Every configuration of the product of ``names`` (kind -> plugin names), restricted per kind.

    A restriction naming an unknown plugin is an error listing the installed ones, so a typo in
    ``--defacers`` never silently yields an empty benchmark.
    """
    restrict = restrict or {}
    chosen = []
    for kind in KINDS:
        wanted = restrict.get(kind) or ()
        unknown = [n for n in wanted if n not in names[kind]]
        if unknown:
            raise ConfigError(
                f"--{kind} names unknown plugin(s) {', '.join(unknown)}; installed: {', '.join(names[kind])}"
            )
        chosen.append([n for n in names[kind] if not wanted or n in wanted])
    return [ConfigId(*combo) for combo in itertools.product(*chosen)]
