#!/usr/bin/env python
"""The ``mtcnn`` detector (the mtcnn wheel's weights in the harness's own ONNX cascade) against the
package it ports (``mtcnn`` 1.0.0 on TensorFlow) on the sample's undefaced and defaced renders.

Why: the port rebuilds the three networks and rewrites the cascade around them (pyramid, NMS, box
regression, crops); this script says where the two agree and where they do not. Per image: does each
find a face, and for the best face (highest score) of each, box IoU and score difference. The
targets: the same found / not-found decision, IoU >= 0.9, scores within 0.02.

TensorFlow is never installed in the project's venv: the reference runs in a separate Python
(``--tf-python``), for example a venv made once with::

    python3 -m venv /work/cache/tfref-venv
    /work/cache/tfref-venv/bin/pip install tensorflow-cpu mtcnn==1.0.0 lz4 pillow

The renders come from the harness (its stage cache; computed when missing), the default view of each
acquisition the harness renders for each defacer::

    DEFACEBENCH_CACHE=/path/to/cache .venv/bin/python scripts/mtcnn_reference.py \\
        --tf-python /work/cache/tfref-venv/bin/python --min-face 40 [--min-face-ref 20]

It prints a Markdown table (docs/models.md keeps the one measured) and, with ``--details``, one line
per image. Nothing is written outside a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

IOU_MIN, SCORE_TOL = 0.9, 0.02


# ------------------------------------------------------------------------------------------------
# Reference worker: runs in the TensorFlow Python, imports nothing of defacebench
# ------------------------------------------------------------------------------------------------


def reference_worker(images_file: str, out_file: str, min_face: float, fix_pyramid: bool = False) -> None:
    """Every image of ``images_file`` (an .npz of uint8 RGB arrays) through ``mtcnn.MTCNN``; writes
    JSON rows [x0, y0, x1, y1, score] per face (the package's float boxes, before its rounding).

    ``fix_pyramid``: drop the pyramid levels on which P-Net has no output (the port's one deliberate
    difference): unpatched, the package's level count ignores ``min_face`` and above 20 px its last
    levels are too small for P-Net, TensorFlow raises and the package reports no face."""
    import numpy as np
    from mtcnn import MTCNN

    if fix_pyramid:
        import mtcnn.stages.stage_pnet as stage_pnet

        unpatched = stage_pnet.build_scale_pyramid

        def build_scale_pyramid(width, height, min_face_size, scale_factor, min_size=12):
            scales = unpatched(width, height, min_face_size, scale_factor, min_size)
            cells = [-(-(int(side * s) - 2) // 2) - 4 for s in scales for side in (width, height)]
            return scales[[min(cells[2 * i], cells[2 * i + 1]) >= 1 for i in range(len(scales))]]

        stage_pnet.build_scale_pyramid = build_scale_pyramid

    detector = MTCNN()
    images = np.load(images_file)
    out = {}
    for key in images.files:
        rows = detector.detect_faces(images[key], min_face_size=min_face, output_type="numpy", box_format="xyxy")
        out[key] = [[float(v) for v in (*row[1:5], row[5])] for row in np.asarray(rows).reshape(-1, 16)]
    Path(out_file).write_text(json.dumps(out))


# ------------------------------------------------------------------------------------------------
# Harness side
# ------------------------------------------------------------------------------------------------


def harness_images(defacers: list[str], renderers: list[str], cache_dir: Path | None) -> dict[str, object]:
    """``{"<defacer>/<renderer>/<acquisition>": RGB image}``: the first view of every render of the
    sample the harness makes for each defacer (from its stage cache, computed when missing)."""
    from defacebench.data.images import as_rgb, read_image
    from defacebench.data.sample import sample_dataset
    from defacebench.run.config import RunConfig
    from defacebench.run.pipeline import BenchmarkRun

    config = RunConfig(dataset=sample_dataset(), cache_dir=cache_dir, defacers=tuple(defacers),
                       renderers=tuple(renderers), scenarios=("rescan",))
    images = {}
    with tempfile.TemporaryDirectory(prefix="mtcnn-ref-run-") as tmp:
        run = BenchmarkRun(config, run_dir=Path(tmp))
        try:
            for defacer in defacers:
                for renderer in renderers:
                    for acq, rendered in sorted(run.rendered(defacer, renderer).items()):
                        if rendered.ok:
                            images[f"{defacer}/{renderer}/{acq}"] = as_rgb(read_image(Path(rendered.views[0].path)))
        finally:
            run.close()
    return images


def port_faces(images: dict, min_face: float) -> dict[str, list[list[float]]]:
    """The harness's ``mtcnn`` plugin on every image: rows [x0, y0, x1, y1, score]."""
    from recognizers.detect.mtcnn import Mtcnn, MtcnnParams

    detector = Mtcnn(MtcnnParams(min_face_px=int(min_face)))
    return {key: [[*face.box, face.score] for face in detector.detect(image)] for key, image in images.items()}


def reference_faces(images: dict, tf_python: str, min_face: float, fix_pyramid: bool) -> dict[str, list[list[float]]]:
    """The package on every image, in ``tf_python`` (this file's :func:`reference_worker`)."""
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="mtcnn-ref-") as tmp:
        np.savez(Path(tmp) / "images.npz", **{k.replace("/", "|"): v for k, v in images.items()})
        argv = [tf_python, __file__, "--worker", str(Path(tmp) / "images.npz"), str(Path(tmp) / "out.json"),
                "--min-face-ref", str(min_face)] + (["--fix-pyramid"] if fix_pyramid else [])
        run = subprocess.run(argv, capture_output=True, text=True, cwd=tmp)
        if run.returncode != 0:
            raise SystemExit(f"reference worker failed ({tf_python}): {run.stderr[-2000:]}")
        out = json.loads((Path(tmp) / "out.json").read_text())
    return {k.replace("|", "/"): v for k, v in out.items()}


def iou(a, b) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def compare(port: dict, ref: dict) -> list[dict]:
    """One row per image: found by each, best-face IoU and score difference when both found one."""
    rows = []
    for key in sorted(port):
        p = max(port[key], key=lambda f: f[4], default=None)
        r = max(ref[key], key=lambda f: f[4], default=None)
        row = {"image": key, "group": key.rsplit("/", 1)[0], "port": p is not None, "ref": r is not None,
               "n_port": len(port[key]), "n_ref": len(ref[key]), "iou": None, "dscore": None}
        if p is not None and r is not None:
            row["iou"], row["dscore"] = iou(p[:4], r[:4]), abs(p[4] - r[4])
        rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    """Markdown summary per (defacer, renderer) and overall."""
    from tabulate import tabulate

    def summary(name: str, group: list[dict]) -> list:
        both = [r for r in group if r["iou"] is not None]
        agree = sum(r["port"] == r["ref"] for r in group)
        ious = [r["iou"] for r in both]
        scores = [r["dscore"] for r in both]
        return [name, len(group), sum(r["port"] for r in group), sum(r["ref"] for r in group), agree,
                f"{min(ious):.3f}" if ious else "-", sum(i >= IOU_MIN for i in ious),
                f"{max(scores):.4f}" if scores else "-", sum(s <= SCORE_TOL for s in scores)]

    groups = sorted({r["group"] for r in rows})
    body = [summary(g, [r for r in rows if r["group"] == g]) for g in groups] + [summary("all", rows)]
    headers = ["renders", "images", "port found", "reference found", "same decision", "min IoU",
               f"IoU >= {IOU_MIN}", "max abs score diff", f"score diff <= {SCORE_TOL}"]
    return tabulate(body, headers=headers, tablefmt="github")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tf-python", help="a Python with tensorflow-cpu and mtcnn==1.0.0 (not the project's)")
    parser.add_argument("--defacers", default="none,quickshear,pydeface_ants")
    parser.add_argument("--renderers", default="surface,vtk_volume")
    parser.add_argument("--min-face", type=float, default=40.0, help="the port's min_face_px (its default 40)")
    parser.add_argument("--min-face-ref", type=float, default=None,
                        help="the reference's min_face_size (default: the same as --min-face)")
    parser.add_argument("--fix-pyramid", action="store_true",
                        help="drop the reference's pyramid levels too small for P-Net, as the port does "
                             "(needed above 20 px: there the package reports no face at all)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="stage cache (default $DEFACEBENCH_CACHE)")
    parser.add_argument("--details", action="store_true", help="also print one line per image")
    parser.add_argument("--worker", nargs=2, metavar=("IMAGES", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        reference_worker(*args.worker, args.min_face_ref, args.fix_pyramid)
        return 0
    if not args.tf_python:
        parser.error("--tf-python is required (a Python with tensorflow-cpu and mtcnn==1.0.0)")
    images = harness_images(args.defacers.split(","), args.renderers.split(","), args.cache_dir)
    rows = compare(port_faces(images, args.min_face),
                   reference_faces(images, args.tf_python, args.min_face_ref or args.min_face, args.fix_pyramid))
    print(table(rows))
    if args.details:
        for r in rows:
            print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
