"""``defacebench convert``: convert every acquisition of a dataset to canonical-RAS float32 NIfTI (HU for CT).

Writes ``<out>/<acq_id>.nii.gz`` per acquisition and ``<out>/conversion_report.json`` (one record
per converted acquisition, every discovery and conversion failure with its reason). Exit code 0
when at least one acquisition converted, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from defacebench.run.config import CONVERTERS, MODALITY_CHOICES, RunConfig
from defacebench.util.fsutil import atomic_write_text, ensure_writable_dir

REPORT_NAME = "conversion_report.json"


def register(subparsers) -> None:
    """Add the ``convert`` subcommand."""
    parser = subparsers.add_parser("convert", help="convert a dataset's DICOM/NIfTI to canonical HU NIfTI")
    parser.add_argument("dataset", type=Path, help="dataset folder or CSV manifest")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--converter", default=RunConfig.converter, choices=CONVERTERS)
    parser.add_argument("--modality", default=RunConfig.modality, choices=MODALITY_CHOICES,
                        help="auto: from DICOM Modality / BIDS suffix, checked against the intensities")
    parser.add_argument("--series", default=None, metavar="UID",
                        help="SeriesInstanceUID to convert (overrides the selection rule)")
    parser.add_argument("--several-series", default="pick", choices=("pick", "fail"),
                        help="a folder with several DICOM series: pick one by the documented rule "
                             "(printed and recorded; default) or fail that acquisition")
    parser.add_argument("--executor", default="local", choices=("local", "serial"),
                        help="run conversions in a process pool (local) or one by one (serial)")
    parser.set_defaults(func=run)


def convert_one(task: tuple) -> dict:
    """Convert one acquisition (top-level so a process pool can pickle it); returns the record dict."""
    from defacebench.data.convert import convert_acquisition

    acq, out_path, params = task
    return convert_acquisition(acq, out_path, params).to_dict()


def _map(tasks: list, kind: str) -> list[tuple[bool, object]]:
    """Run :func:`convert_one` over ``tasks``; (ok, record or error text) per task, in order."""
    try:
        from defacebench.run.executors import make_executor
    except ImportError:  # the scale part is optional for this command
        make_executor = None
    if make_executor is None:
        out = []
        for t in tasks:
            try:
                out.append((True, convert_one(t)))
            except Exception as exc:  # one bad acquisition never stops the others
                out.append((False, f"{type(exc).__name__}: {exc}"))
        return out
    with make_executor(kind) as ex:
        return [(o.ok, o.value if o.ok else o.error) for o in ex.map(convert_one, tasks, desc="convert")]


def write_report(path: Path, report: dict) -> None:
    """Write the JSON report atomically."""
    atomic_write_text(path, json.dumps(report, indent=2))


def run(args: argparse.Namespace) -> int:
    """Discover, convert, write the report and print a summary."""
    from defacebench.data.convert import ConversionParams, series_notice
    from defacebench.data.dataset import discover

    dataset = discover(args.dataset)
    params = ConversionParams(converter=args.converter, series_uid=args.series, modality=args.modality,
                              several_series=getattr(args, "several_series", "pick"))
    ensure_writable_dir(args.out, "the converted volumes")  # before any work: a read-only --out fails now
    acqs = list(dataset.acquisitions)
    results = _map([(a, args.out / f"{a.acq_id}.nii.gz", params) for a in acqs], args.executor)
    converted, failures = [], [
        {"subject_id": f.subject_id, "session": None, "path": str(f.path), "stage": "discover", "reason": f.reason}
        for f in dataset.failures]
    for acq, (ok, value) in zip(acqs, results):
        if ok:
            converted.append({"subject_id": acq.subject_id, "session": acq.session, "acq_id": acq.acq_id, **value})
        else:
            failures.append({"subject_id": acq.subject_id, "session": acq.session, "path": str(acq.path),
                             "stage": "convert", "reason": value})
    report = {"dataset": str(args.dataset), "converter": params.converter, "series_uid": params.series_uid,
              "converted": converted, "failures": failures}
    write_report(args.out / REPORT_NAME, report)
    print(f"converted {len(converted)} of {len(acqs)} acquisitions ({len(dataset.subjects)} subjects) "
          f"with {params.converter}; {len(failures)} failure(s); report: {args.out / REPORT_NAME}")
    for record in converted:
        notice = series_notice(record)
        if notice:
            print(f"  SERIES {record['acq_id']}: {notice}")
    for f in failures:
        print(f"  FAILED {f['subject_id'] or '?'} [{f['stage']}]: {f['reason']}")
    return 0 if converted else 1
