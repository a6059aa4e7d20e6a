"""The README's picture: the rank-1 heatmap of the committed sample run (results/baseline.json).

Why from the baseline: it is the default run on the synthetic sample (16 generated heads, no real
person), so the picture shows what a user's first command answers without showing any face. The
defacer rows are in the order of their worst rank-1, the control last. Writes docs/img/heatmap.png:
    .venv/bin/python scripts/readme_picture.py [--baseline results/baseline.json] [--out docs/img/heatmap.png]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace

from defacebench.report.heatmap import write_heatmap
from defacebench.report.rows import LeaderboardRow
from defacebench.report.verdict import attacker_validity
from defacebench.run.scenarios import SCENARIOS



def rows_from_baseline(baseline: dict) -> list[LeaderboardRow]:
    """One row per configuration and scenario with its rank-1 and the chance level 1/n."""
    rows = []
    for key, figures in baseline["configs"].items():
        parts = key.split("-")
        scenario = parts[4] if len(parts) > 4 and parts[4] in SCENARIOS else "rescan"
        n = figures.get("n") or 0
        rows.append(LeaderboardRow("-".join(parts[:4]), *parts[:4], n=n, rank1=figures.get("rank1"),
                                   rank1_ci=None, rank5=None, roc_auc=figures.get("roc_auc"), roc_auc_ci=None,
                                   eer=None, detection_rate=None, scenario=scenario,
                                   rank1_chance=1 / n if n else None))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, default=Path("results/baseline.json"))
    parser.add_argument("--out", type=Path, default=Path("docs/img/heatmap.png"))
    args = parser.parse_args()
    rows = rows_from_baseline(json.loads(args.baseline.read_text()))
    validity = attacker_validity(rows, 0.5)
    worst = {}
    for r in rows:
        if validity[r.attacker].valid and r.rank1 is not None:
            worst[r.defacer] = max(worst.get(r.defacer, 0.0), r.rank1)
    order = sorted(worst, key=lambda d: (d == "none", worst[d], d))
    write_heatmap(args.out, rows, [SimpleNamespace(defacer=d) for d in order], validity)
    print(args.out)


if __name__ == "__main__":
    main()
