#!/usr/bin/env python
"""Where `vtk_volume`'s CPU goes per view, and whether two checkouts render the same pixels (issue 23).

``stages``: CPU seconds per volume of each step of the renderer's default single view, on the first
``--n`` scans of a sample (after one warm-up render, so imports and the render window are not
counted): the HU mapping, the smoothing, the head component, the head cut, the camera frame, the
VTK scene (image + actor), VTK's first render of the volume (gradients and normal encoding,
space-leaping tables, the cast) and a second render of the same scene (the cast and the drawing
only), then the same first render with shading off (no gradients: the difference is their cost).

``render OUT``: every acquisition of the sample rendered with the importable code (default params,
``--kind seed`` the study's, ``--kind multi`` three views), saved to OUT (.npz). ``compare A B``: the
largest pixel difference per image between two such files. Run ``render`` once with each checkout's
interpreter (the code it imports is the one rendered)::

    python scripts/vtk_volume_profile.py stages --dataset DIR --n 4
    /work/main/.venv/bin/python scripts/vtk_volume_profile.py render /tmp/main.npz --dataset DIR
    python scripts/vtk_volume_profile.py render /tmp/new.npz --dataset DIR
    python scripts/vtk_volume_profile.py compare /tmp/main.npz /tmp/new.npz
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def _scans(dataset: Path, n: int | None, session: str = "*") -> list[Path]:
    paths = sorted((dataset / "nifti").glob(f"sub-*/ses-{session}/*/*.nii.gz"))
    if not paths:
        raise SystemExit(f"{dataset}/nifti has no sub-*/ses-*/*/*.nii.gz: give a `defacebench sample-data` folder")
    return paths[:n] if n else paths


def stages(args) -> int:
    from defacebench.data.volume import load_volume
    from recognizers._backends.head import HeadSeparation, head_component
    from recognizers._backends.views import OrthoCamera, head_frame
    from recognizers._backends.vtk_scene import Scene
    from recognizers.render import vtk_volume as vv

    renderer = vv.VtkVolumeRenderer()
    p, spec = renderer.params, renderer.specs[0]
    volumes = [load_volume(path) for path in _scans(args.dataset, args.n, "scan")]
    renderer.render(volumes[0])
    cpu: dict[str, float] = {}

    def timed(step, fn, *a):
        start = time.process_time()
        out = fn(*a)
        cpu[step] = cpu.get(step, 0.0) + time.process_time() - start
        return out

    for volume in volumes:
        v = timed("hu scale", vv.on_hu_scale, volume, p)
        v = timed("smoothing", vv.smoothed, v, p.smooth_mm, p.smooth_voxels)
        head = timed("head component", head_component, v, p.frame_threshold_hu, HeadSeparation.of(p))
        v = timed("head cut", vv.head_only, v, head)
        frame = timed("camera frame", renderer._frame, v, head)
        for label in ("", " (shading off)"):
            scene = timed("vtk scene" + label, Scene, v, p, True)
            if label:
                scene.actor.GetProperty().ShadeOff()
            scene.ortho_camera(OrthoCamera.looking_at(spec, *frame, p.size_px, p.mm_per_px))
            scene.set_light(np.asarray(spec.light_dir, float) @ np.stack(head_frame()))
            timed("first render" + label, scene.window.Render)
            timed("second render" + label, scene.window.Render)
            scene.close()
    for step, total in cpu.items():
        print(f"{step:32s} {total / len(volumes):.3f}")
    return 0


def render(args) -> int:
    from defacebench.data.volume import load_volume
    from recognizers.render.vtk_volume import VtkVolumeParams, VtkVolumeRenderer

    params = {"default": VtkVolumeParams(), "seed": VtkVolumeParams.seed(),
              "multi": VtkVolumeParams(views=((0.0, 0.0, 0), (30.0, 0.0, 0), (-45.0, 10.0, 0)))}[args.kind]
    renderer, images = VtkVolumeRenderer(params), {}
    for path in _scans(args.dataset, args.n):
        for view in renderer.render(load_volume(path)):
            images[f"{path.name}:{view.view_id}"] = view.image
    np.savez_compressed(args.out, **images)
    print(f"{len(images)} images -> {args.out}")
    return 0


def compare(args) -> int:
    a, b = np.load(args.a), np.load(args.b)
    if sorted(a.files) != sorted(b.files):
        raise SystemExit(f"{args.a} and {args.b} hold different images")
    diffs = [int(np.abs(a[k].astype(int) - b[k]).max()) for k in sorted(a.files)]
    print(f"{len(diffs)} images, {sum(d == 0 for d in diffs)} identical, max abs difference {max(diffs)}")
    return 0 if max(diffs) == 0 else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("stages", "render"):
        s = sub.add_parser(name)
        s.add_argument("--dataset", type=Path, required=True)
        s.add_argument("--n", type=int, default=4 if name == "stages" else None)
        if name == "render":
            s.add_argument("out")
            s.add_argument("--kind", choices=("default", "seed", "multi"), default="default")
    c = sub.add_parser("compare")
    c.add_argument("a")
    c.add_argument("b")
    args = ap.parse_args(argv)
    return {"stages": stages, "render": render, "compare": compare}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
