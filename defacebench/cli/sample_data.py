"""``defacebench sample-data``: generate (or find in the cache) the embedded sample dataset (CT or MRI)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def register(subparsers) -> None:
    """Add the ``sample-data`` subcommand."""
    parser = subparsers.add_parser(
        "sample-data", help="generate the synthetic sample head CT (or T1w MRI) dataset (DICOM + BIDS NIfTI), cached")
    parser.add_argument("--subjects", type=int, default=16, help="number of subjects (default 16)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: $DEFACEBENCH_DATA or ~/.cache/defacebench/sample-...)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the identities (default 0)")
    parser.add_argument("--modality", default="ct", choices=("ct", "mri"),
                        help="ct: clinical-looking head CT with cradle and table; mri: T1-weighted heads")
    parser.add_argument("--matrix", type=int, default=0,
                        help="in-plane matrix (default: the modality's CI-sized default; 512 = clinical CT)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the dataset and print where its DICOM root and NIfTI copy are."""
    from defacebench.data.sample import SampleParams, make_sample_dataset, nifti_root

    params = SampleParams(n_subjects=args.subjects, seed=args.seed, modality=args.modality, matrix=args.matrix)
    start = time.monotonic()
    root = make_sample_dataset(args.out, params, workers=args.workers)
    scanner = params.scanner_params()
    print(f"sample dataset: {params.n_subjects} subjects x 2 sessions (scan, rescan), {params.modality.upper()}, "
          f"matrix {scanner.matrix}, seed {params.seed} ({time.monotonic() - start:.1f} s)")
    print(f"DICOM root (use as --dataset): {root}")
    print(f"NIfTI copy (BIDS):             {nifti_root(root)}")
    return 0
