"""``defacebench identify``: re-identification from folders of already rendered images."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from defacebench.data.images import ImageLimits
from defacebench.errors import PluginUnavailableError


def register(subparsers) -> None:
    """Add the ``identify`` subcommand."""
    p = subparsers.add_parser(
        "identify", help="score gallery vs probe images (person_{id}_view_frontal.png or {id}.png)",
        description="Detect and embed every image once, write distances.csv, metrics.json and faces.csv.")
    p.add_argument("--gallery", type=Path, required=True, help="folder of gallery images (e.g. originals)")
    p.add_argument("--probe", type=Path, required=True, help="folder of probe images (e.g. defaced)")
    p.add_argument("--detector", default="dlib_hog", help="detector plugin name (default dlib_hog)")
    p.add_argument("--recognizer", default="dlib_resnet", help="recognizer plugin name (default dlib_resnet)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--calibration", type=float, default=0.7, help="calibration fraction of subjects (1.0 = all)")
    p.add_argument("--seed", type=int, default=0, help="split and bootstrap seed")
    p.add_argument("--n-bootstrap", type=int, default=1000, help="bootstrap resamples for the CIs")
    p.add_argument("--policy", default="f1", help="threshold policy: f1, youden or far=<x>")
    p.add_argument("--max-pixels", type=positive_int, default=ImageLimits().max_pixels, metavar="N",
                   help=f"refuse images with more pixels (default {ImageLimits().max_pixels:,}); "
                        "such an image stays a non-match")
    p.set_defaults(func=run)


def positive_int(text: str) -> int:
    """An argparse type: a whole number above 0 (a cap of 0 pixels would refuse every image)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; give a positive pixel count") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} would refuse every image; give a positive pixel count "
                                         f"(default {ImageLimits().max_pixels:,})")
    return value


def _plugin(kind: str, name: str, plugins_file):
    """The plugin instance, refusing one that cannot run here (with its reason)."""
    from defacebench.plugins.registry import get_plugin

    plugin = get_plugin(kind, name, plugins_file=Path(plugins_file) if plugins_file else None)
    avail = plugin.available()
    if not avail.ok:
        raise PluginUnavailableError(f"{kind[:-1]} {name} is unavailable here: {avail.reason}")
    return plugin


def run(args: argparse.Namespace) -> int:
    """Run identify and print the headline numbers."""
    from defacebench.run.identify import identify

    plugins_file = getattr(args, "global_plugins_file", None)
    detector = _plugin("detectors", args.detector, plugins_file)
    recognizer = _plugin("recognizers", args.recognizer, plugins_file)
    limits = ImageLimits(max_pixels=getattr(args, "max_pixels", ImageLimits().max_pixels))
    result = identify(args.gallery, args.probe, detector, recognizer, args.out, calibration=args.calibration,
                      seed=args.seed, n_bootstrap=args.n_bootstrap, policy=args.policy, limits=limits)
    for outcome in result.outcomes:
        if outcome.outcome == "unreadable":  # already one line naming the file; scored as a non-match
            print(f"defacebench identify: {outcome.role} image skipped: {outcome.error}", file=sys.stderr)
    m = result.evaluation.to_dict()
    summary = {k: m.get(k) for k in ("n", "rank1", "rank5", "roc_auc")}
    summary.update(detection_rate_gallery=result.detection_rate_gallery,
                   detection_rate_probe=result.detection_rate_probe, out=str(args.out))
    print(json.dumps(summary, indent=2))
    return 0
