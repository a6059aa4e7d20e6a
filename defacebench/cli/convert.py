"""``defacebench convert``: convert every acquisition of a dataset to canonical-RAS float32 NIfTI (HU for CT).

Writes ``<out>/<acq_id>.nii.gz`` per acquisition and ``<out>/conversion_report.json`` (one record
per converted acquisition, every discovery and conversion failure with its reason). Acquisition ids
are plain names (discovery refuses ids that are paths), and ``--out`` is marked as the harness's
output so a later discovery of a dataset holding it never reads it as a subject. ``--series``
applies to the acquisition whose folder holds that series (the others convert by the usual rule).
Exit code 0 when at least one acquisition converted (and a ``--series`` choice was found), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from defacebench.data.series_choice import uid_digest

from defacebench.run.config import CONVERTERS, MODALITY_CHOICES, RunConfig
from defacebench.util.fsutil import atomic_write_text, ensure_writable_dir
from defacebench.util.outputs import mark_output

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
                        help="series to convert in the folder that holds it: its SeriesInstanceUID or the "
                             "series-... name records and notices give (overrides the selection rule there)")
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
    from defacebench.data.convert import ConversionParams, conversion_notices, series_notice
    from defacebench.data.dataset import discover

    dataset = discover(args.dataset)
    params = ConversionParams(converter=args.converter, series_uid=args.series, modality=args.modality,
                              several_series=getattr(args, "several_series", "pick"))
    ensure_writable_dir(args.out, "the converted volumes")  # before any work: a read-only --out fails now
    mark_output(args.out, "converted volumes")
    failures = [{"subject_id": f.subject_id, "session": None, "path": str(f.path), "stage": "discover",
                 "reason": f.reason} for f in dataset.failures]
    acqs = []
    for acq in dataset.acquisitions:
        problem = _output_problem(args.out, acq)
        if problem:
            failures.append({"subject_id": acq.subject_id, "session": acq.session, "path": str(acq.path),
                             "stage": "discover", "reason": problem})
        else:
            acqs.append(acq)
    results = _map([(a, args.out / f"{a.acq_id}.nii.gz", params) for a in acqs], args.executor)
    converted = []
    for acq, (ok, value) in zip(acqs, results):
        if ok:
            converted.append({"subject_id": acq.subject_id, "session": acq.session, "acq_id": acq.acq_id, **value})
        else:
            failures.append({"subject_id": acq.subject_id, "session": acq.session, "path": str(acq.path),
                             "stage": "convert", "reason": value})
    series = uid_digest(params.series_uid) if params.series_uid else None  # never a UID in outputs
    report = {"dataset": str(args.dataset), "converter": params.converter, "series_uid": series,
              "converted": converted, "failures": failures}
    write_report(args.out / REPORT_NAME, report)
    print(f"converted {len(converted)} of {len(dataset.acquisitions)} acquisitions ({len(dataset.subjects)} subjects) "
          f"with {params.converter}; {len(failures)} failure(s); report: {args.out / REPORT_NAME}")
    for folder in dataset.ignored:
        print(f"  IGNORED {folder}: the harness's own output folder, not a subject")
    for record in converted:
        notice = series_notice(record)
        for line in conversion_notices(record):
            print(f"  {'SERIES' if line == notice else 'WARNING'} {record['acq_id']}: {line}")
    for f in failures:
        print(f"  FAILED {f['subject_id'] or '?'} [{f['stage']}]: {f['reason']}")
    if series and not any(r.get("series_requested") for r in converted):
        print(f"defacebench convert: error: --series {series}: no acquisition holds this series (converted "
              f"{len(converted)} acquisition(s) by the usual rule). Fix: pass a series named in the report, "
              "or drop --series", file=sys.stderr)
        return 1
    return 0 if converted else 1


def _output_problem(out: Path, acq) -> str | None:
    """Why ``<out>/<acq_id>.nii.gz`` would not be a file directly in ``out``, or None. Discovery
    already refuses such ids; this keeps any other source of acquisitions from writing elsewhere."""
    path = out / f"{acq.acq_id}.nii.gz"
    if path.parent == out and "\x00" not in acq.acq_id:
        return None
    return (f"{acq.path}: acquisition id {acq.acq_id!r} is not a plain file name; it would be written outside "
            f"{out}. Fix: give the subject a plain id (letters, digits, '-', '_')")
