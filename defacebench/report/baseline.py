"""Regression gate: store a baseline of the leaderboard and compare a new run against it.

A configuration regresses on a metric (``rank1`` or ``roc_auc``, higher = the attacker pipeline
works better) when its new value is **below the baseline's 95 % bootstrap CI lower bound minus the
tolerance**: ``new < ci_lo - tolerance``. The CI absorbs sampling noise, the tolerance absorbs
small numeric drift. A configuration whose metric became undefined (failed) while the baseline has
a value also regresses. Configurations absent from either side are not compared (adding a plugin
never fails the gate).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from defacebench.errors import RegressionError
from defacebench.report.artifacts import write_json
from defacebench.report.rows import LeaderboardRow

GATED = ("rank1", "roc_auc")
DEFAULT_TOLERANCES: Mapping[str, float] = {"rank1": 0.05, "roc_auc": 0.05}


class ToleranceError(RegressionError, ValueError):
    """A ``--compare-fail`` tolerance string is malformed."""


class BaselineError(RegressionError):
    """A baseline file is missing or malformed."""


@dataclass(frozen=True)
class Regression:
    """One configuration's metric that fell beyond its baseline CI minus tolerance."""

    config_id: str
    metric: str
    old: float
    new: float  # NaN when the configuration no longer produces the metric (it failed)
    ci: tuple[float, float]
    tolerance: float = 0.0

    def __str__(self) -> str:
        new = "missing" if math.isnan(self.new) else f"{self.new:.4f}"
        old = f"{self.old:.4f}"
        return (f"{self.config_id}: {self.metric} {old} -> {new} (baseline CI [{self.ci[0]:.4f}, "
                f"{self.ci[1]:.4f}], tolerance {self.tolerance})")


def parse_tolerances(text: str) -> dict[str, float]:
    """Parse ``"rank1:0.05,roc_auc:0.05"`` into a dict; only gated metrics, non-negative values."""
    out: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition(":")
        try:
            tol = float(value)
        except ValueError:
            tol = -1.0
        if not sep or name.strip() not in GATED or tol < 0:
            raise ToleranceError(
                f"tolerance {item!r} is malformed: write metric:value pairs such as "
                f"'rank1:0.05,roc_auc:0.05' with metric in {GATED} and value >= 0"
            )
        out[name.strip()] = tol
    if not out:
        raise ToleranceError(f"no tolerance given in {text!r}: e.g. 'rank1:0.05,roc_auc:0.05'")
    return out


def save_baseline(path: Path, rows: list[LeaderboardRow]) -> None:
    """Write the gated metrics and their CIs of every configuration to a JSON baseline."""
    configs = {}
    for row in rows:
        configs[row.config_id] = {
            "rank1": row.rank1, "rank1_ci": list(row.rank1_ci) if row.rank1_ci else None,
            "roc_auc": row.roc_auc, "roc_auc_ci": list(row.roc_auc_ci) if row.roc_auc_ci else None,
            "n": row.n, "status": row.status,
        }
    write_json(Path(path), {"version": 1, "rule": "regression when new < ci_lo - tolerance", "configs": configs})


def load_baseline(path: Path) -> dict[str, dict]:
    """The ``configs`` mapping of a baseline file; raises BaselineError naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        configs = data["configs"]
        if not isinstance(configs, dict):
            raise TypeError("configs is not an object")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BaselineError(
            f"{path}: not a defacebench baseline ({exc}); write one with --save-baseline PATH"
        ) from exc
    return configs


def compare_baseline(
    rows: list[LeaderboardRow],
    baseline_path: Path,
    *,
    tolerances: Mapping[str, float] = DEFAULT_TOLERANCES,
) -> list[Regression]:
    """Every (configuration, metric) whose new value < baseline CI lower bound - tolerance."""
    baseline = load_baseline(baseline_path)
    out = []
    for row in rows:
        stored = baseline.get(row.config_id)
        if stored is None:
            continue
        for metric, tol in tolerances.items():
            old, ci = stored.get(metric), stored.get(f"{metric}_ci")
            if old is None or not ci:
                continue
            new = getattr(row, metric)
            new = math.nan if new is None else float(new)
            if math.isnan(new) or new < ci[0] - tol:
                out.append(Regression(row.config_id, metric, float(old), new, (float(ci[0]), float(ci[1])), tol))
    return out


def format_regressions(regressions: list[Regression]) -> str:
    """A readable multi-line report, one regression per line."""
    if not regressions:
        return "no regression against the baseline"
    lines = [f"{len(regressions)} regression(s) against the baseline:"]
    lines += [f"  {r}" for r in regressions]
    return "\n".join(lines)
