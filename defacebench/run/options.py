"""The run options, declared once: one table feeds ``defacebench run``'s argparse, pytest's
``addoption`` and :class:`~defacebench.run.config.RunConfig`, with the same names on both surfaces.

Each :class:`Option` names its flag, the RunConfig field it sets, its default, help and a parser
that validates the text before any work starts (a ``--compare`` file that does not parse, an unknown
policy or a bad ``--compare-fail`` fail with the option named). Names that other pytest plugins use
are prefixed (``--bench-workers``, not ``--workers``, which pytest-parallel owns).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from defacebench.contracts import KINDS, check_name
from defacebench.errors import DefacebenchError
from defacebench.run.config import (CLEANUPS, COMPARE_RULES, CONVERTERS, DEFAULT_SCENARIOS, EXECUTORS,
                                    FAILED_DEFACING, MODALITY_CHOICES, PLUGIN_SETS, QC_LABELS, RunConfig)


@dataclass(frozen=True)
class Option:
    """One run option: ``flag`` on both surfaces, the RunConfig ``field`` it sets (also the dest)."""

    flag: str
    field: str
    help: str
    parse: Callable[[str], Any] | None = None
    choices: tuple[str, ...] | None = None
    switch: bool = False  # a flag without a value: sets the field to False (``--no-images``)
    metavar: str | None = None

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``add_argument`` / ``addoption`` (both are argparse underneath)."""
        if self.switch:
            return {"dest": self.field, "action": "store_false", "default": True, "help": self.help}
        kw: dict[str, Any] = {"dest": self.field, "default": None, "help": self.help}
        if self.parse is not None:
            kw["type"] = self.parse
        if self.choices is not None:
            kw["choices"] = self.choices
        if self.metavar:
            kw["metavar"] = self.metavar
        return kw


def _checked(fn: Callable[[str], Any]) -> Callable[[str], Any]:
    """Turn a parser's DefacebenchError/ValueError into argparse's error, which names the option."""
    def parse(text: str) -> Any:
        try:
            return fn(text)
        except (DefacebenchError, ValueError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc
    parse.__name__ = fn.__name__.lstrip("_")
    return parse


@_checked
def _names(text: str) -> tuple[str, ...]:
    """``"a,b , c"`` -> ``("a", "b", "c")``, each a valid plugin or scenario name."""
    return tuple(check_name(part.strip()) for part in text.split(",") if part.strip())


@_checked
def _scenarios(text: str) -> tuple[str, ...]:
    """``rescan,multiview@surface-dlib_hog-*``: scenario names, each optionally restricted to the
    attackers matching a renderer-detector-recognizer glob."""
    from defacebench.run.scenarios import ScenarioSpec

    specs = tuple(part.strip() for part in text.split(",") if part.strip())
    for spec in specs:
        ScenarioSpec.parse(spec)
    if not specs:
        raise ValueError("name at least one scenario, e.g. rescan")
    return specs


@_checked
def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{text} is not a fraction in [0, 1]")
    return value


@_checked
def _calibration(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{text} is not a fraction in (0, 1]: e.g. 0.7, or 1.0 to fit and report on all subjects")
    return value


@_checked
def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an integer; give a seed in [0, 2**32)") from None
    if not 0 <= value < 2**32:
        raise ValueError(f"{text} must be an integer in [0, 2**32) (numpy and scikit-learn seeds)")
    return value


@_checked
def _on_off(text: str) -> bool:
    if text not in ("on", "off"):
        raise ValueError(f"{text} is not on or off")
    return text == "on"


@_checked
def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"{text} must be >= 1")
    return value


@_checked
def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"{text} must be >= 0")
    return value


@_checked
def _policy(text: str) -> str:
    from defacebench.metrics.thresholds import parse_policy

    parse_policy(text)
    return text


@_checked
def _protocol(text: str) -> str:
    from defacebench.metrics.protocols import get_protocol

    return get_protocol(text).name


@_checked
def _tolerances(text: str) -> tuple[tuple[str, float], ...]:
    from defacebench.report.baseline import parse_tolerances

    return tuple(parse_tolerances(text).items())


@_checked
def _baseline(text: str) -> Path:
    from defacebench.report.baseline import load_baseline

    load_baseline(Path(text))
    return Path(text)


@_checked
def _view_grid(text: str) -> tuple[float, float, float, float, int]:
    from defacebench.run.viewgrid import parse_grid

    return parse_grid(text)


@_checked
def _run_id(text: str) -> str:
    from defacebench.run.rundir import check_run_id

    return check_run_id(text)


def _path(text: str) -> Path:
    return Path(text)


@_checked
def _output_file(text: str) -> Path:
    """A file the run writes at its end (``--save-baseline``): refused now when it could not be
    written then (a folder, or a parent that is a file or does not exist)."""
    path = Path(text)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a file name, e.g. {path / 'baseline.json'}")
    if not path.parent.is_dir():
        raise ValueError(f"{path.parent} is not an existing folder; create it or choose another path")
    if not os.access(path.parent, os.W_OK):
        raise ValueError(f"{path.parent} is not writable; choose another path")
    return path


OPTIONS: tuple[Option, ...] = (
    Option("--dataset", "dataset", "dataset folder or CSV manifest (default: the embedded sample)", _path),
    Option("--sample-subjects", "sample_subjects", "subjects of the embedded sample when --dataset is not given "
           "(default 16; the README's test command uses 8 to keep CI short)", _count, metavar="N"),
    Option("--results", "results", "folder of run outputs (default results/runs)", _path),
    *(Option(f"--{kind}", kind, f"comma list restricting the {kind}", _names, metavar="A,B") for kind in KINDS),
    Option("--plugin-set", "plugin_set", "default: every available plugin except those that declare "
           "themselves opt-in (wrappers of a backend another plugin runs, or too slow to run unasked; "
           "`defacebench list` shows them) unless --detectors etc. name them; all: every available plugin",
           choices=PLUGIN_SETS),
    Option("--plugins-file", "plugins_file", "TOML plugins file: command defacers, plugin parameters and variants "
           "(default ./defacebench.toml or $DEFACEBENCH_PLUGINS_FILE)", _path),
    Option("--scenarios", "scenarios", "comma list of attack scenarios (rescan, seed, multiview, svm, aware, refill_template, "
           "refill_learned), each "
           "optionally @renderer-detector-recognizer glob restricting its attackers (default: "
           f"{','.join(DEFAULT_SCENARIOS)})", _scenarios, metavar="A,B@GLOB"),
    Option("--view-grid", "view_grid", "views of the multiview/svm scenarios: YAWMAX:YAWSTEP,PITCHMAX:PITCHSTEP,"
           "LIGHTS (default 30:15,15:15,1 = 15 views; 30:30,15:15,9 = 81: 9 cameras under the renderer's light "
           "and 8 more)", _view_grid, metavar="GRID"),
    Option("--max-views", "max_views", "most views per scan a --view-grid may ask for (default 400; each view "
           "costs about 0.25 CPU s per scan and attacker)", _positive_int),
    Option("--protocol", "protocol", "evaluation protocol: default or seed (the original study's)", _protocol),
    Option("--policy", "policy", "threshold policy: f1, youden or far=<x>", _policy),
    Option("--calibration", "calibration", "calibration fraction of subjects in (0, 1] (1.0: fit and report on "
           "all; each side keeps >= 2 subjects, the fraction used is printed and recorded)", _calibration),
    Option("--split-seed", "seed", "seed of the calibration/held-out split and the bootstrap, in [0, 2**32)", _seed),
    Option("--n-bootstrap", "n_bootstrap", "bootstrap resamples for the CIs", _count),
    Option("--cleanup", "cleanup", "post-defacing cleanup of removed voxels", choices=CLEANUPS),
    Option("--converter", "converter", "DICOM converter", choices=CONVERTERS),
    Option("--modality", "modality", "modality of the scans: auto (DICOM Modality tag, BIDS suffix, checked "
           "against the intensities), ct or mri", choices=MODALITY_CHOICES),
    Option("--qc-filter", "qc_filter", "score a tested defacer only on the subjects whose defacing has this QC label "
           "(e.g. ok), as the study did by hand; the others are recorded as filtered; the control keeps every "
           "subject", choices=QC_LABELS),
    Option("--failed-defacing", "failed_defacing", "how a failed defacing is scored: exposed (its undefaced "
           "probe; default), excluded or nonmatch", choices=FAILED_DEFACING),
    Option("--defacer-fail-share", "defacer_fail_share", "share of subjects above which a defacer's "
           "configurations are defacer_failed (default 0.2)", _fraction),
    Option("--attacker-floor", "attacker_floor", "control rank-1 below which an attacker is attacker_invalid "
           "(default 0.5)", _fraction),
    Option("--executor", "executor", "where stages run", choices=EXECUTORS),
    Option("--scheduler", "scheduler", "Dask scheduler address tcp://HOST:PORT (implies --executor dask)"),
    Option("--bench-workers", "workers", "worker processes (default: the machine's cores)", _positive_int),
    Option("--run-ahead", "run_ahead", "on: threads compute later configurations' stages while the run evaluates "
           "(local executor, >= 2 workers; same results; default off: on 2 idle cores it cost about a tenth more CPU and "
           "wall, docs/benchmarks.md)", _on_off, metavar="on|off"),
    Option("--cache-dir", "cache_dir", "stage cache folder (default $DEFACEBENCH_CACHE or ~/.cache/defacebench)",
           _path),
    Option("--no-images", "images", "write no pictures (renders show faces)", switch=True),
    Option("--run-id", "run_id", "name of the run folder under --results (default: a unique timestamped id)",
           _run_id),
    Option("--compare", "compare", "baseline JSON: fail on regressed configurations", _baseline),
    Option("--compare-fail", "compare_fail", "tolerance per gated metric, e.g. rank1:0.05,roc_auc:0.05 (a metric "
           "not named keeps 0.05; metric:off stops gating it)", _tolerances),
    Option("--save-baseline", "save_baseline", "write this run's rows as a baseline JSON file", _output_file),
)

# --- the verdict's statistics and the gate's noise rule (owned with report/verdict.py) --------------

@_checked
def _alpha(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{text} is not a significance level in (0, 1), e.g. 0.05")
    return value


VERDICT_OPTIONS = (
    Option("--alpha", "alpha", "significance level of the verdict (exposed when the max-T p < alpha), of the "
           "ties between defacers and of the gate's paired tests (default 0.05)", _alpha),
    Option("--permutations", "permutations", "identity permutations of the verdict's max-T test (default 2000)",
           _positive_int),
    Option("--permutation-seed", "permutation_seed", "seed of the verdict's permutations and cross-fitting halves "
           "(default 0)", _count),
    Option("--cross-fit-repeats", "cross_fit_repeats", "random halves of the probes the cross-fitted worst case "
           "averages over (default 200)", _positive_int),
    Option("--anatomy-fail-share", "anatomy_fail_share", "share of subjects with QC head_removed or brain_damaged "
           "above which a defacer is anatomy_destroyed, not ranked (default: the defacer fail share)", _fraction),
    Option("--compare-rule", "compare_rule", "noise (default): a figure fails when it moved beyond its tolerance "
           "and the move is significant; delta: outside the baseline interval by more than the tolerance",
           choices=COMPARE_RULES),
)
OPTIONS = OPTIONS + VERDICT_OPTIONS


def add_to_argparse(parser: argparse.ArgumentParser) -> None:
    """Add every run option to ``parser`` (``defacebench run``)."""
    group = parser.add_argument_group("run options (the same for pytest bench/)")
    for option in OPTIONS:
        group.add_argument(option.flag, **option.kwargs())


def add_to_pytest(parser: Any) -> None:
    """Add every run option to pytest's parser, in the ``defacebench`` group."""
    group = parser.getgroup("defacebench", "defacebench benchmark (the same options as `defacebench run`)")
    for option in OPTIONS:
        group.addoption(option.flag, **option.kwargs())


def run_config(values: Mapping[str, Any] | Callable[[str], Any]) -> RunConfig:
    """The RunConfig from option values (a mapping by field, or a getter such as pytest's
    ``config.getoption``); an option left unset keeps the RunConfig default."""
    get = values if callable(values) else values.get
    given = {o.field: get(o.field) for o in OPTIONS}
    chosen = {k: v for k, v in given.items() if v is not None and not (k == "images" and v is True)}
    if chosen.get("scheduler"):
        chosen["executor"] = "dask"
    return RunConfig(**chosen)
