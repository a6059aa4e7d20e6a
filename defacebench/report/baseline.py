"""The regression gate's baseline: store what a run measured, read it back, parse tolerances.

A baseline records, per result id, the gated figures (``rank1``, ``roc_auc``) with their 95 %
intervals, and (format 3) the per-probe rank-1 hits (``probes``, ``identified``) that the gate's
paired test needs, with what it was measured on (dataset fingerprint, split settings, plugin
versions). :mod:`defacebench.report.compare` compares a run against it. Format 2 baselines (no
per-probe hits) are still read: their figures are compared by intervals.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from defacebench.errors import RegressionError
from defacebench.report.artifacts import write_json
from defacebench.report.rows import LeaderboardRow

GATED = ("rank1", "roc_auc")
DEFAULT_TOLERANCES: Mapping[str, float] = {"rank1": 0.05, "roc_auc": 0.05}
OFF = "off"


class ToleranceError(RegressionError, ValueError):
    """A ``--compare-fail`` tolerance string is malformed."""


class BaselineError(RegressionError):
    """A baseline file is missing or malformed."""


def parse_tolerances(text: str) -> dict[str, float | None]:
    """Parse ``"rank1:0.05,roc_auc:0.05"``: every gated metric with its tolerance.

    A metric the text does not name keeps its default tolerance (naming one never ungates the
    others); ``metric:off`` ungates it explicitly (None). Values are finite and >= 0; a metric named
    twice, an unknown metric or a malformed pair is a ToleranceError."""
    given: dict[str, float | None] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = (x.strip() for x in item.partition(":"))
        if name in given:
            raise ToleranceError(f"tolerance {item!r}: {name} is given twice; name each metric once, e.g. "
                                 "'rank1:0.05,roc_auc:0.05'")
        tol = _tolerance(value) if sep else -1.0
        if name not in GATED or tol == -1.0:
            raise ToleranceError(
                f"tolerance {item!r} is malformed: write metric:value pairs such as "
                f"'rank1:0.05,roc_auc:0.05' with metric in {GATED} and value a finite number >= 0 "
                f"(or '{OFF}' to stop gating that metric)"
            )
        given[name] = tol
    if not given:
        raise ToleranceError(f"no tolerance given in {text!r}: e.g. 'rank1:0.05,roc_auc:0.05'")
    return {**DEFAULT_TOLERANCES, **given}


def _tolerance(value: str) -> float | None:
    """The tolerance of one pair: None for ``off``, -1.0 for anything invalid."""
    if value.lower() == OFF:
        return None
    try:
        tol = float(value)
    except ValueError:
        return -1.0
    return tol if math.isfinite(tol) and tol >= 0 else -1.0


BASELINE_VERSION = 3
READABLE_VERSIONS = (2, 3)


@dataclass(frozen=True)
class Baseline:
    """A stored baseline: what it was measured on (dataset fingerprint, subject count, split settings,
    plugin versions) and the gated metrics with CIs per result id."""

    path: Path
    configs: Mapping[str, Mapping[str, Any]]
    dataset: Mapping[str, Any]
    split: Mapping[str, Any]
    plugins: Mapping[str, Mapping[str, str]]


def save_baseline(path: Path, rows: list[LeaderboardRow], *, dataset: Mapping[str, Any], split: Mapping[str, Any],
                  plugins: Mapping[str, Mapping[str, str]]) -> None:
    """Write the gated figures, their intervals and the per-probe rank-1 hits of every row, with
    what they were measured on."""
    configs = {}
    for row in rows:
        hits = row.hits
        configs[row.key] = {
            "rank1": row.rank1, "rank1_ci": list(row.rank1_ci) if row.rank1_ci else None,
            "roc_auc": row.roc_auc, "roc_auc_ci": list(row.roc_auc_ci) if row.roc_auc_ci else None,
            "n": row.n, "status": row.status,
            "probes": sorted(hits), "identified": sorted(p for p, hit in hits.items() if hit),
        }
    write_json(Path(path), {"version": BASELINE_VERSION,
                            "rule": "a figure fails when it moved beyond its tolerance and the move is significant "
                                    "(paired exact McNemar test on the per-probe hits, else outside the interval)",
                            "dataset": dict(dataset), "split": dict(split), "plugins": dict(plugins),
                            "configs": configs})


def load_baseline(path: Path) -> Baseline:
    """Read and validate a baseline; anything it cannot judge with is a BaselineError naming the file,
    the entry and the fix."""
    path = Path(path)
    fix = "re-create it with --save-baseline PATH"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"{path}: cannot read the baseline ({exc}); {fix}") from exc
    except ValueError as exc:
        raise BaselineError(f"{path}: not JSON ({exc}); {fix}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("configs"), dict):
        raise BaselineError(f"{path}: not a defacebench baseline (no `configs` object); {fix}")
    if data.get("version") not in READABLE_VERSIONS or not isinstance(data.get("dataset"), dict):
        raise BaselineError(f"{path}: baseline format {data.get('version')!r} records no dataset fingerprint "
                            f"(this defacebench writes version {BASELINE_VERSION}); {fix}")
    if not data["configs"]:
        raise BaselineError(f"{path}: the baseline holds no configuration; {fix}")
    for key, entry in data["configs"].items():
        _check_entry(path, key, entry)
    return Baseline(path, data["configs"], data["dataset"], data.get("split") or {}, data.get("plugins") or {})


def _check_entry(path: Path, key: str, entry: Any) -> None:
    fix = "re-create the baseline with --save-baseline PATH"
    if not isinstance(entry, dict):
        raise BaselineError(f"{path}: configs.{key} is not an object; {fix}")
    for metric in GATED:
        if metric not in entry:  # a renamed or dropped key would otherwise gate nothing
            raise BaselineError(f"{path}: configs.{key} has no {metric!r} (it has {', '.join(sorted(entry)) or 'nothing'}); "
                                f"the gate compares {', '.join(GATED)}; {fix}")
        value, ci = entry.get(metric), entry.get(f"{metric}_ci")
        if value is None and ci is None:
            continue
        if not _finite_fraction(value):
            raise BaselineError(f"{path}: configs.{key}.{metric} = {value!r} is not a number in [0, 1]; {fix}")
        if not (isinstance(ci, list) and len(ci) == 2 and all(_finite_fraction(v) for v in ci) and ci[0] <= ci[1]):
            raise BaselineError(f"{path}: configs.{key}.{metric}_ci = {ci!r} is not an interval [lo, hi] in [0, 1]; "
                                f"{fix}")
    probes, identified = entry.get("probes"), entry.get("identified")
    if probes is None and identified is None:
        return
    if not (isinstance(probes, list) and isinstance(identified, list) and set(identified) <= set(probes)
            and all(isinstance(p, str) for p in probes)):
        raise BaselineError(f"{path}: configs.{key}: 'identified' must be a list of the ids in 'probes'; {fix}")


def _finite_fraction(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0 <= value <= 1
