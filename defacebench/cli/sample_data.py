"""``defacebench sample-data``: generate (or find in the cache) the embedded sample head-CT dataset."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def register(subparsers) -> None:
    """Add the ``sample-data`` subcommand."""
    parser = subparsers.add_parser(
        "sample-data", help="generate the synthetic sample head-CT dataset (DICOM + NIfTI copy), cached")
    parser.add_argument("--subjects", type=int, default=16, help="number of subjects (default 16)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: $DEFACEBENCH_DATA or ~/.cache/defacebench/sample-...)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the identities (default 0)")
    parser.add_argument("--head-holder", action="store_true", help="add a head holder behind the head")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the dataset and print where its DICOM root and NIfTI copy are."""
    from defacebench.data.sample import SampleParams, make_sample_dataset, nifti_root

    params = SampleParams(n_subjects=args.subjects, seed=args.seed, head_holder=args.head_holder)
    start = time.monotonic()
    root = make_sample_dataset(args.out, params, workers=args.workers)
    print(f"sample dataset: {params.n_subjects} subjects x 2 sessions (scan, rescan), seed {params.seed} "
          f"({time.monotonic() - start:.1f} s)")
    print(f"DICOM root (use as --dataset): {root}")
    print(f"NIfTI copy:                    {nifti_root(root)}")
    return 0
