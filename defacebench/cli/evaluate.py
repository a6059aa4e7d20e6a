"""``defacebench evaluate MATRIX.csv``: score an existing distance matrix (either CSV layout).

Reads our layout or the seed study's (detected automatically), evaluates it under ``--protocol
default`` (seeded random split, exact thresholds) or ``--protocol seed`` (the study's grid and
id-order split), and prints a readable table, or with ``--json`` exactly one JSON object on stdout
(the keys of every metrics.json). ``--split 1.0`` fits and reports on all subjects. A matrix whose
sides do not pair up (a probe without a gallery row, a gallery row without a probe) is scored as
the metrics define it (unpaired probes cannot be identified and are left out of rank-k, but are
impostor pairs for the curves), and the command names those ids on stderr rather than say nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import warnings
from pathlib import Path

from defacebench.contracts import METRICS
from defacebench.errors import DefacebenchError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` subcommand."""
    p = subparsers.add_parser(
        "evaluate",
        help="score a distance matrix CSV (ours or the seed study's layout)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument("matrix", type=Path, help="distance matrix CSV: rows = gallery (originals), columns = probe")
    p.add_argument("--protocol", choices=("default", "seed"), default="default",
                   help="default: random split, exact thresholds; seed: the study's grid and id-order split")
    p.add_argument("--metric", choices=METRICS, default=None,
                   help="distance metric (our CSVs record it; the study's layout does not: default cosine)")
    p.add_argument("--split", type=float, default=0.7, metavar="FRACTION",
                   help="calibration fraction (default 0.7); 1.0 fits and reports on all subjects")
    p.add_argument("--seed", type=int, default=0, help="seed of the split and the bootstrap (default 0)")
    p.add_argument("--policy", default="f1", help="threshold policy: f1 (default), youden, far=<x>")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N", help="bootstrap resamples (0 = no CIs)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate the matrix and print the result; returns 0, or 2 on a user error (message on stderr)."""
    from defacebench.metrics import DistanceMatrix, evaluate_matrix

    from defacebench.metrics.distance import NonMatchWarning

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", NonMatchWarning)
            matrix = DistanceMatrix.read_csv(args.matrix, metric=args.metric)
        for w in caught:
            if issubclass(w.category, NonMatchWarning):
                print(f"defacebench evaluate: warning: {w.message}", file=sys.stderr)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        for line in unpaired_warnings(matrix, args.matrix):
            print(f"defacebench evaluate: warning: {line}", file=sys.stderr)
        if args.metric is None and _corner_is_empty(args.matrix):
            print("defacebench evaluate: the study's CSV layout records no metric; assuming cosine "
                  "(pass --metric euclidean_l2 for a Dlib matrix)", file=sys.stderr)
        evaluation = evaluate_matrix(
            matrix, protocol=args.protocol, calibration=args.split, seed=args.seed,
            policy=args.policy, n_bootstrap=args.bootstrap,
        )
    except DefacebenchError as exc:
        print(f"defacebench evaluate: {exc}", file=sys.stderr)
        return 2
    data = evaluation.to_dict()
    if args.json:
        sys.stdout.write(json.dumps(data, allow_nan=False) + "\n")
    else:
        print(readable(data, args.matrix, mated=len(set(matrix.probe_ids) & set(matrix.gallery_ids))))
    return 0


def _ids(ids: list[str], shown: int = 5) -> str:
    """The first ``shown`` ids, and how many more."""
    return ", ".join(ids[:shown]) + (f", and {len(ids) - shown} more" if len(ids) > shown else "")


def unpaired_warnings(matrix, path: Path) -> list[str]:
    """One line per side that has ids the other side lacks (empty for a paired matrix)."""
    gallery, probe = set(matrix.gallery_ids), set(matrix.probe_ids)
    lonely_probes = [p for p in matrix.probe_ids if p not in gallery]
    lonely_rows = [g for g in matrix.gallery_ids if g not in probe]
    lines = []
    if lonely_probes:
        lines.append(f"{path}: {len(lonely_probes)} probe column(s) without a gallery row ({_ids(lonely_probes)}): "
                     f"they cannot be identified, so they are left out of rank-1, rank-5 and the CMC (identified "
                     f"among {len(probe) - len(lonely_probes)} of {len(probe)} probes) but count as impostor pairs "
                     "for ROC AUC, AP and EER. Fix: add their gallery rows, or remove the columns")
    if lonely_rows:
        lines.append(f"{path}: {len(lonely_rows)} gallery row(s) without a probe column ({_ids(lonely_rows)}): "
                     "they are impostor candidates for every probe (as intended for a gallery larger than the "
                     "probe set); if they should have a probe, add its column")
    return lines


def _corner_is_empty(path: Path) -> bool:
    """True when the CSV's first cell is empty (the seed study's layout carries no metric name)."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        first = next(csv.reader(fh), [""])
    return not first or not first[0].strip()


def readable(data: dict, path: Path, mated: int | None = None) -> str:
    """A short human-readable summary of a metrics dict (``mated``: probes with a gallery row)."""
    from tabulate import tabulate

    def fmt(key: str) -> str:
        value, ci = data.get(key), (data.get("ci") or {}).get(key)
        if value is None:
            return "-"
        return f"{value:.4f}" + (f"  [{ci[0]:.4f}, {ci[1]:.4f}]" if ci and ci[0] is not None else "")

    rows = [
        ("subjects (gallery x probe)", f"{data['n']} ({data['n_gallery']} x {data['n_probe']})"),
        ("metric / protocol", f"{data['metric']} / {data['protocol']}"),
        *([("identification", f"identified among {mated} of {data['n_probe']} probes")]
          if mated is not None and mated != data["n_probe"] else []),
        ("rank-1 [95% CI]", fmt("rank1")), ("rank-5", fmt("rank5")),
        ("chance rank-1", f"{data['chance']['rank1']:.4f}"),
        ("ROC AUC", fmt("roc_auc")), ("average precision", fmt("average_precision")), ("EER", fmt("eer")),
    ]
    rows += [(f"TAR @ FAR {k}", f"{v:.4f}") for k, v in data["tar_at_far"].items()]
    if "auprc_grid" in data:
        rows.append(("AUPRC (grid)", f"{data['auprc_grid']:.4f}"))
    thr = data["threshold"]
    rows += [
        (f"threshold ({data['policy']}, fitted on {data['n_calibration']})", "-" if thr is None else f"{thr:.4f}"),
        ("Youden threshold", "-" if data["youden_threshold"] is None else f"{data['youden_threshold']:.4f}"),
        (f"held-out ({data['n_heldout']}) TP / FP / FN / TN", f"{data['tp']} / {data['fp']} / {data['fn']} / {data['tn']}"),
        ("precision / recall / F1", f"{data['precision']:.4f} / {data['recall']:.4f} / {data['f1']:.4f}"),
    ]
    return f"{path}\n" + tabulate(rows, tablefmt="simple")
