#!/usr/bin/env python
"""Where `vtk_volume`'s CPU goes per view, and whether two checkouts render the same pixels (issue 23).

``stages``: CPU seconds per volume of each step of the renderer's default single view, on the first
``--n`` scans of a sample (after one warm-up render, so imports and the render window are not
counted): the HU mapping, the smoothing, the head component, the head cut, the camera frame, the
VTK scene (image + actor), VTK's first render of the volume (gradients and normal encoding,
space-leaping tables, the cast) and a second render of the same scene (the cast and the drawing
only), then the same first render with shading off (no gradients: the difference is their cost).

``options``: what VTK's per-volume work would cost with each option considered for the 0.3 s target,
and how far its pixels are from the renderer's (same scans, same camera): the scene as rendered
(float scalars); uint16 scalars holding VTK's own table index of each voxel, transfer functions moved
to that scale (VTK's integer gradient path), with one and with two mapper threads; the image sample
distance 1.25 and 1.5 (fewer rays, the image interpolated up); the head's interior replaced by a
constant where it is more than the reach of a ray's last samples and their gradients from any voxel
a ray can see through (``filled``: same pixels expected); ``--gpu`` adds VTK's GPU ray caster
(`vtkSmartVolumeMapper` on this machine's Mesa llvmpipe, slow). ``views``: CPU s per view with 1,
2 and 15 views per volume.

``render OUT``: every acquisition of the sample rendered with the importable code (default params,
``--kind seed`` the study's, ``--kind multi`` three views), saved to OUT (.npz). ``compare A B``: the
largest pixel difference per image between two such files. Run ``render`` once with each checkout's
interpreter (the code it imports is the one rendered)::

    python scripts/vtk_volume_profile.py stages --dataset DIR --n 4
    /work/main/.venv/bin/python scripts/vtk_volume_profile.py render /tmp/main.npz --dataset DIR
    python scripts/vtk_volume_profile.py render /tmp/new.npz --dataset DIR
    python scripts/vtk_volume_profile.py compare /tmp/main.npz /tmp/new.npz
    python scripts/vtk_volume_profile.py options --dataset DIR --n 8
    python scripts/vtk_volume_profile.py views --dataset DIR --n 3
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


def _prepared(renderer, volume):
    """(volume as handed to VTK, camera frame) after the renderer's own steps (default params)."""
    from recognizers._backends.head import HeadSeparation, head_component
    from recognizers.render import vtk_volume as vv

    p = renderer.params
    v = vv.smoothed(vv.on_hu_scale(volume, p), p.smooth_mm, p.smooth_voxels)
    head = head_component(v, p.frame_threshold_hu, HeadSeparation.of(p))
    v = vv.head_only(v, head)
    return v, renderer._frame(v, head)


def _as_table_index(scene, volume, params, threads: int) -> None:
    """Give ``scene``'s mapper uint16 scalars: the index VTK's ray caster computes for each float voxel
    (float32 ``(v - min) * 32767 / (max - min)``, truncated), the transfer functions moved to that scale."""
    from vtkmodules.util import numpy_support
    from vtkmodules.vtkCommonDataModel import vtkImageData, vtkPiecewiseFunction
    from vtkmodules.vtkRenderingCore import vtkColorTransferFunction

    data = volume.data
    lo, hi = float(data.min()), float(data.max())
    scale, shift = np.float32(32767.0 / (hi - lo)), np.float32(-lo)
    index = np.asfortranarray(((data + shift) * scale).astype(np.uint16))
    image = vtkImageData()
    image.SetDimensions(*index.shape)
    image.SetSpacing(*volume.zooms)
    image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(index.ravel(order="F"), deep=False))
    scene.index = index  # VTK's array shares this memory
    k = 32767.0 / (hi - lo)
    opacity, color = vtkPiecewiseFunction(), vtkColorTransferFunction()
    for x, a in params.opacity:
        opacity.AddPoint((x - lo) * k, a)
    for x, r, g, b in params.color:
        color.AddRGBPoint((x - lo) * k, r, g, b)
    prop = scene.actor.GetProperty()
    prop.SetScalarOpacity(opacity)
    prop.SetColor(color)
    scene.actor.GetMapper().SetInputData(image)
    scene.actor.GetMapper().SetNumberOfThreads(threads)


def _filled(volume, params):
    """``volume`` with the voxels no ray can reach, nor its last samples' gradients, set to its maximum.

    A sample all of whose 8 corners are at or above the opacity ramp's top (opacity >= 0.995, 1 %
    of VTK's table step below) ends its ray; so every sample a ray takes lies within one step (2 mm
    allowed) of a cell with a see-through corner, its corners within 2 + step voxels of one, and
    their gradients (up to 3 voxels along each axis) within 5 + step: a voxel farther than that (plus
    1) from every see-through voxel and from the volume's border never enters a pixel (rays start on
    the volume's border: the "head" camera stands outside it). The maximum keeps VTK's scalar range
    (its table scale) and the space-leaping flags."""
    from scipy import ndimage

    from defacebench.contracts import Volume

    xs = np.array([x for x, _ in params.opacity], float)
    ys = np.array([a for _, a in params.opacity], float)
    if ys[-1] < 0.995:  # no opaque plateau: every ray may cross the whole volume
        return volume, 0.0
    below = xs[ys < 0.995]
    top = np.interp(0.995, ys[xs >= below.max()], xs[xs >= below.max()]) if len(below) else xs.min()
    data = volume.data
    level = top + 3 * (float(data.max()) - float(data.min())) / 32767.0
    reach = (2 + np.ceil(2.0 / np.asarray(volume.zooms)) + 3 + 1).astype(int)
    near = (data < level).view(np.uint8)
    for axis in range(3):
        near = ndimage.maximum_filter1d(near, 2 * reach[axis] + 1, axis=axis, mode="constant", cval=1)
    out = np.where(near.astype(bool), data, data.max())
    return Volume(np.asfortranarray(out), volume.affine, volume.modality), 1.0 - near.mean()


VARIANTS = ("float (as rendered)", "uint16 table index, 1 thread", "uint16 table index, 2 threads",
            "image sample distance 1.25", "image sample distance 1.5", "filled interior")
GPU = "gpu (smart mapper)"


def first_render(volume, frame, variant: str, params, spec):
    """(image, CPU s) of VTK's first render of ``volume`` with option ``variant`` (:data:`VARIANTS` or
    :data:`GPU`), camera and light of ``spec``; the CPU includes the option's own preparation."""
    from dataclasses import replace

    from recognizers._backends.views import OrthoCamera, head_frame
    from recognizers._backends.vtk_scene import Scene

    start = time.process_time()
    if variant == "filled interior":
        volume = _filled(volume, params)[0]
    scene = Scene(volume, replace(params, mapper="smart") if variant == GPU else params, True)
    if variant.startswith("uint16"):
        _as_table_index(scene, volume, params, 1 if "1 thread" in variant else 2)
    if variant.startswith("image sample"):
        scene.actor.GetMapper().AutoAdjustSampleDistancesOff()
        scene.actor.GetMapper().SetImageSampleDistance(float(variant.split()[-1]))
    scene.ortho_camera(OrthoCamera.looking_at(spec, *frame, params.size_px, params.mm_per_px))
    scene.set_light(np.asarray(spec.light_dir, float) @ np.stack(head_frame()))
    image = scene.snapshot()
    scene.close()
    return image, time.process_time() - start


def options(args) -> int:
    from defacebench.data.volume import load_volume
    from recognizers.render import vtk_volume as vv

    renderer = vv.VtkVolumeRenderer()
    p, spec = renderer.params, renderer.specs[0]
    prepared = [_prepared(renderer, load_volume(path)) for path in _scans(args.dataset, args.n, "scan")]
    variants = VARIANTS + ((GPU,) if args.gpu else ())
    first_render(*prepared[0], variants[0], p, spec)  # warm-up: imports, window
    rows = {v: [] for v in variants}
    for volume, frame in prepared:
        base, cpu = first_render(volume, frame, variants[0], p, spec)
        rows[variants[0]].append((cpu, 0, 0.0))
        for variant in variants[1:]:
            image, cpu = first_render(volume, frame, variant, p, spec)
            diff = np.abs(base.astype(int) - image).max(axis=2)
            rows[variant].append((cpu, int(diff.max()), float((diff > 0).mean())))
    print(f"{'option':32s} {'CPU s':>6s} {'max diff':>8s} {'pixels differing':>16s}")
    for variant, r in rows.items():
        cpu, worst, share = np.median([x[0] for x in r]), max(x[1] for x in r), np.mean([x[2] for x in r])
        print(f"{variant:32s} {cpu:6.3f} {worst:8d} {100 * share:15.2f}%")
    return 0


def views(args) -> int:
    """CPU s per view of the renderer with 1, 2 and 15 views (the multiview grid) per volume: the
    scene (gradients included) is built once per volume, so its cost spreads over the views."""
    from defacebench.data.volume import load_volume
    from defacebench.run.viewgrid import default_grid
    from recognizers.render.vtk_volume import VtkVolumeParams, VtkVolumeRenderer

    volumes = [load_volume(path) for path in _scans(args.dataset, args.n, "scan")]
    grid = default_grid()
    for chosen in (grid[:1], grid[:2], grid):
        renderer = VtkVolumeRenderer(VtkVolumeParams(views=chosen))
        renderer.render(volumes[0])  # warm-up
        start = time.process_time()
        made = sum(len(renderer.render(v)) for v in volumes)
        print(f"{len(chosen):2d} views per volume: {(time.process_time() - start) / made:.3f} CPU s per view")
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
    for name in ("stages", "render", "options", "views"):
        s = sub.add_parser(name)
        s.add_argument("--dataset", type=Path, required=True)
        s.add_argument("--n", type=int, default=None if name == "render" else 4)
        if name == "options":
            s.add_argument("--gpu", action="store_true", help="also VTK's GPU ray caster (slow on Mesa llvmpipe)")
        if name == "render":
            s.add_argument("out")
            s.add_argument("--kind", choices=("default", "seed", "multi"), default="default")
    c = sub.add_parser("compare")
    c.add_argument("a")
    c.add_argument("b")
    args = ap.parse_args(argv)
    return {"stages": stages, "render": render, "compare": compare, "options": options,
            "views": views}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
