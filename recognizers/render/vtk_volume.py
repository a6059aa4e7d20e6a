"""`vtk_volume` renderer: the seed study's VTK ray-cast volume render, offscreen, framed on the head.

Colour transfer function as in FIELD.md 1.4, shading on, linear interpolation, black background.
Opacity: by default a skin ramp (transparent below -600 HU, opaque from -300 HU, around the -400 HU
skin level `surface` uses). The study's ramp (``STUDY_OPACITY``, 0.2 per mm at 0 HU) leaves the skin
translucent: the orbital rims and eyes show through as dark rings like spectacles, which change
the face a recognizer sees (control rank-1 on the 16-subject sample with dlib_hog + dlib_resnet:
0.75 with the study's ramp, 0.94 with the skin ramp). By default the volume is also smoothed by a
Gaussian of 1 mm or 0.6 voxel per axis, whichever is larger (noise and the steps of 2-5 mm slices
texture the skin; with the ramp and smoothing the control reaches 1.00) and only the head component is kept
(holder, pillow and table set to air; the study's renders showed them, :meth:`VtkVolumeParams.seed`
keeps them, its ramp and the unsmoothed CT).

Cameras (``camera``):
- "head" (default): framed like `surface`: parallel projection centred on the head component's
  bounding box (recognizers._backends.head), fixed ``mm_per_px``, the volume placed by its affine,
  and the same view grid (``views`` x ``lights``, recognizers._backends.views: directional lights
  fixed to the head, given in the frontal camera's frame). On the clinical-looking sample the
  study's camera looks down on the face from 22.5 degrees above it, close up: dlib HOG finds a
  face on 7 of 32 undefaced renders (31 of 32 with the same camera turned to eye level,
  ``views = ((0, -22.5, 0),)``; scripts/seed_camera_detection.py --pitch -22.5); this camera shows the face.
- "seed": the study's exact camera: at (0, 700, 290) looking at the origin with view-up +z, reset
  to the volume's bounds and dollied x2, direction cosines ignored (the voxel grid axis-aligned
  with the voxel sizes as spacing). A view's yaw and pitch turn that camera about the focal point
  (VTK azimuth, elevation); lights are given in the unturned camera's frame.
  :meth:`VtkVolumeParams.seed` gives the study's full settings (800 px, one light along the view
  direction: VTK's default headlight).

MRI (``volume.modality == "mri"``, no HU): the T1 intensities are mapped linearly onto the HU scale
the transfer functions are written in, so that air (0) is -1000 HU and the skin level `surface` uses
on MRI (``mri_threshold_scale`` x Otsu's threshold, defacebench.anatomy.mrimask.mri_skin_level) is
``frame_threshold_hu``; the head is made solid first as in `surface` (a T1's dark skull would leave
the scalp a thin shell over a dark gap). The study rendered CT only; this keeps one renderer for both.

The volume-level work (VTK image, transfer functions, gradients in the mapper, head component) is
done once per volume, the offscreen render window once per process
(recognizers._backends.vtk_scene); each view re-renders the same scene with another camera and light.
A volume in nibabel's layout (Fortran order: x fastest, VTK's own) keeps it through the smoothing
and the head cut, and VTK's image shares that array: no transposing copy, no deep copy (issue 23).

Offscreen rendering needs an OpenGL context without a display: VTK 9 wheels use EGL with Debian's
Mesa packages (libegl1, libegl-mesa0, libgl1-mesa-dri). Whether a context opens is probed once per
process in a child process, so a broken driver cannot crash the caller.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, replace
from typing import Annotated
from functools import lru_cache

import numpy as np

from defacebench.anatomy.grid import refine
from defacebench.contracts import Availability, Range, View, Volume
from defacebench.errors import PluginError, PluginUnavailableError
from defacebench.util.vtklog import prefer_egl

from recognizers._backends.head import HeadMask, HeadSeparation, fortran_only, head_component
from recognizers._backends.views import OrthoCamera, head_frame, view_specs
from recognizers._backends.vtk_scene import Scene
from recognizers._backends.weights import module_missing

EGL_PACKAGES = "libegl1 libegl-mesa0 libgl1-mesa-dri"
CAMERAS = ("head", "seed")
# the study's scalar opacity (FIELD.md 1.4): 0.2 per mm at 0 HU, so skin is translucent over the orbits
STUDY_OPACITY = ((-3024, 0.0), (-1000, 0.0), (-500, 0.0), (0, 0.2), (300, 0.4), (500, 0.6), (1000, 0.8), (3071, 1.0))

_PROBE = """
from vtkmodules.vtkRenderingCore import vtkRenderWindow, vtkRenderer
import vtkmodules.vtkRenderingOpenGL2
w = vtkRenderWindow(); w.SetOffScreenRendering(1); w.SetSize(16, 16)
w.AddRenderer(vtkRenderer()); w.Render()
print("ok", w.GetClassName())
"""


@dataclass(frozen=True)
class VtkVolumeParams:
    """Render settings. ``camera``: "head" or "seed" (module docstring). ``views`` / ``lights``: the
    view grid, as `surface`. The default light comes from the upper left: the study's material has
    no ambient term and a light from the front leaves the face flat (control rank-1 on the sample
    0.81 with (0, 0.35, 1), 1.00 with this one). ``size_px`` / ``mm_per_px``: image size and, for
    "head", its fixed scale. ``frame_threshold_hu``, the separation fields and ``head_height_mm``:
    the head component the "head" camera is centred on (as `surface`). ``camera_position`` /
    ``view_up`` / ``dolly``: the "seed" camera. ``opacity`` / ``color``: the transfer functions
    (opacity: the skin ramp, module docstring; colour: the study's). ``smooth_mm`` / ``smooth_voxels``:
    the Gaussian applied to the volume first: per axis the larger of ``smooth_mm`` and
    ``smooth_voxels`` voxels (0 and 0: none; the voxel term smooths the steps of thick slices). ``head_only``: render only the head component (grown
    by one coarse voxel), as `surface` does. ``mapper``: "fixed_point" is VTK's CPU ray caster (deterministic, no GPU needed),
    "smart" lets VTK choose (GPU where OpenGL allows). ``mri_threshold`` / ``mri_threshold_scale``:
    the MRI skin level mapped to ``frame_threshold_hu`` (module docstring; as `surface`)."""

    camera: str = "head"
    views: tuple[tuple[float, ...], ...] = ((0.0, 0.0, 0),)
    lights: tuple[tuple[float, float, float], ...] = ((-0.3, 0.35, 1.0),)
    size_px: Annotated[int, Range(ge=16)] = 512
    mm_per_px: Annotated[float, Range(gt=0)] = 0.7
    frame_threshold_hu: float = -400.0
    coarse_mm: float = 2.0
    detach_mm: float = 12.0
    regrow_mm: float = 30.0
    regrow_fraction: float = 0.95
    head_height_mm: float = 240.0
    camera_position: tuple[float, float, float] = (0.0, 700.0, 290.0)
    view_up: tuple[float, float, float] = (0.0, 0.0, 1.0)
    dolly: Annotated[float, Range(gt=0)] = 2.0
    opacity: tuple[tuple[float, float], ...] = ((-3024, 0.0), (-600, 0.0), (-300, 1.0), (3071, 1.0))
    color: tuple[tuple[float, float, float, float], ...] = (
        (-3024, 0, 0, 0), (-1000, .5, .5, .5), (-500, .8, .6, .4), (0, .9, .7, .6), (300, .95, .8, .7),
        (500, 1, .8, .8), (1000, .9, .9, 1), (3071, 1, 1, 1))
    mapper: str = "fixed_point"
    mri_threshold: str = "otsu"
    mri_threshold_scale: float = 0.6
    smooth_mm: float = 1.0
    smooth_voxels: float = 0.6
    head_only: bool = True

    @classmethod
    def seed(cls, **changes) -> "VtkVolumeParams":
        """The study's settings: its camera, 800 x 800 pixels, one light along the view direction
        (what VTK's default headlight does), its opacity transfer function, the CT as it is
        (no smoothing, holder and table kept)."""
        study = cls(camera="seed", size_px=800, lights=((0.0, 0.0, 1.0),), opacity=STUDY_OPACITY, smooth_mm=0.0,
                    smooth_voxels=0.0, head_only=False)
        return replace(study, **changes)


@lru_cache(maxsize=1)
def _probe_offscreen() -> Availability:
    """Open a tiny offscreen render window in a child process; the reason says what to install."""
    fix = f"install the Mesa EGL libraries (Debian/Ubuntu: apt-get install {EGL_PACKAGES})"
    prefer_egl()  # the child probes the window the renders will open (EGL when there is no display)
    try:
        run = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        return Availability.no(f"VTK offscreen render window did not open ({err}): {fix}")
    if run.returncode != 0 or "ok" not in run.stdout:
        tail = (run.stderr.strip().splitlines() or ["no message"])[-1][:200]
        return Availability.no(f"VTK offscreen render window did not open (exit {run.returncode}: {tail}): {fix}")
    return Availability.yes()


def on_hu_scale(volume: Volume, p: VtkVolumeParams) -> Volume:
    """``volume`` on the HU scale of the transfer functions: CT as it is; MRI made solid and mapped
    linearly so that 0 is air (-1000 HU) and its skin level is ``p.frame_threshold_hu``."""
    if volume.modality != "mri":
        return volume
    from defacebench.anatomy.mrimask import solid_head_at_skin

    solid, level = solid_head_at_skin(volume, p.mri_threshold, p.mri_threshold_scale)
    scale = (p.frame_threshold_hu + 1000.0) / max(level, 1e-6)
    return Volume((solid.data * scale - 1000.0).astype(np.float32), volume.affine, volume.modality)


def smoothed(volume: Volume, sigma_mm: float, sigma_voxels: float = 0.0) -> Volume:
    """``volume`` Gaussian-filtered with sigma, per axis, the larger of ``sigma_mm`` (in voxels of
    that axis) and ``sigma_voxels``; itself when both are 0. Noise and the stair steps of thick slices otherwise texture the skin and change with
    the head's pose (`surface` smooths its depth map for the same reason)."""
    if sigma_mm <= 0 and sigma_voxels <= 0:
        return volume
    from scipy import ndimage

    sigma = [max(sigma_mm / z, sigma_voxels) for z in volume.zooms]
    data = np.asarray(volume.data, np.float32)
    if fortran_only(data):  # nibabel's layout: filter the transpose (C order), axes in the same order,
        # so the same numbers come out in the Fortran order VTK's image takes without a copy
        return Volume(ndimage.gaussian_filter(data.T, sigma, axes=(2, 1, 0)).T, volume.affine, volume.modality)
    return Volume(ndimage.gaussian_filter(data, sigma), volume.affine, volume.modality)


def head_only(volume: Volume, head: HeadMask) -> Volume:
    """``volume`` with everything outside the head component (grown by one coarse voxel, so the
    skin's partial-volume edge stays) set to air: holder, pillow and table leave the picture."""
    from scipy import ndimage

    grown, data = ndimage.binary_dilation(head.mask), np.asarray(volume.data, np.float32)
    if fortran_only(data):  # keep the layout (np.where follows its inputs' order): no transposing copy
        keep = refine(grown.T, head.factors[::-1], data.shape[::-1]).T
    else:
        keep = refine(grown, head.factors, data.shape)
    return Volume(np.where(keep, data, np.float32(-1000.0)), volume.affine, volume.modality)


class VtkVolumeRenderer:
    """The seed study's VTK volume render (see module docstring); one View per (camera, light)."""

    name = "vtk_volume"
    version = "4"  # 4: skin opacity ramp, smoothing, head component only (issue 12)
    licence = "BSD-3-Clause (VTK)"
    needs = "vtk (defacebench[vtk]) and an offscreen OpenGL context: EGL + Mesa (Debian libegl1 libegl-mesa0 libgl1-mesa-dri), no display"

    def __init__(self, params: VtkVolumeParams | None = None) -> None:
        self.params = params if params is not None else VtkVolumeParams()
        if self.params.camera not in CAMERAS:
            raise PluginError(f"vtk_volume: params.camera must be one of {CAMERAS}, got "
                              f"{self.params.camera!r}. Fix: camera = \"head\" (or \"seed\" for the study's)")
        self.specs = view_specs(self.name, self.params.views, self.params.lights)

    def available(self) -> Availability:
        """Needs vtk and an offscreen OpenGL context (EGL + Mesa)."""
        if module_missing("vtkmodules"):
            return Availability.no("python module vtk not installed: pip install vtk (or defacebench[vtk])")
        return _probe_offscreen()

    def render(self, volume: Volume) -> list[View]:
        """Render every view of the grid; the scene is built once per volume."""
        avail = self.available()
        if not avail.ok:
            raise PluginUnavailableError(avail.reason)
        p = self.params
        volume = smoothed(on_hu_scale(volume, p), p.smooth_mm, p.smooth_voxels)
        head = None
        if p.head_only or p.camera == "head":
            head = head_component(volume, p.frame_threshold_hu, HeadSeparation.of(p))
        if p.head_only and head is not None:
            volume = head_only(volume, head)
        frame = self._frame(volume, head) if p.camera == "head" else None
        scene = Scene(volume, p, place_by_affine=frame is not None)
        try:
            lit = np.stack(head_frame() if frame is not None else scene.seed_frame(p))  # lights' frame
            views = []
            for spec in self.specs:
                if frame is None:
                    info = scene.seed_camera(p, spec.yaw, spec.pitch)
                else:
                    info = scene.ortho_camera(OrthoCamera.looking_at(spec, *frame, p.size_px, p.mm_per_px))
                scene.set_light(np.asarray(spec.light_dir, float) @ lit)
                info.update(light=spec.light, light_dir=list(spec.light_dir), camera=p.camera, mapper=p.mapper)
                views.append(View(spec.view_id, scene.snapshot(), info))
            return views
        finally:
            scene.close()

    def _frame(self, volume: Volume, head: HeadMask | None) -> tuple[np.ndarray, float]:
        """Centre and radius the "head" camera is placed on: the head component's bounding box (the
        volume's own box when nothing is above the threshold, e.g. the head was removed)."""
        if head is not None:
            return head.bounds(self.params.head_height_mm)
        corners = np.array(np.meshgrid(*[[0, n - 1] for n in volume.data.shape])).reshape(3, -1).T
        world = corners @ volume.affine[:3, :3].T + volume.affine[:3, 3]
        return (world.min(axis=0) + world.max(axis=0)) / 2.0, float(np.linalg.norm(np.ptp(world, axis=0)) / 2.0)
