"""`vtk_volume` renderer: the seed study's VTK ray-cast volume render, offscreen, for comparison.

Transfer functions and camera as in FIELD.md 1.4: opacity and colour as functions of HU, shading
on, linear interpolation, 800 x 800, black background; camera at (0, 700, 290) looking at the
origin with view-up +z, then reset to the volume's bounds and dollied x2. Like the study, the
direction cosines are ignored (the voxel grid is placed axis-aligned with the voxel sizes as
spacing); on defacebench's canonical RAS volumes that puts the face toward +y, where the camera is.
Unlike `surface`, the head holder and pillow are rendered too (the study's renders showed them).

Offscreen rendering needs an OpenGL context without a display: VTK 9 wheels use EGL with Debian's
Mesa packages (libegl1, libegl-mesa0, libgl1-mesa-dri). Whether a context opens is probed once per
process in a child process, so a broken driver cannot crash the caller.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from defacebench.contracts import Availability, View, Volume
from defacebench.errors import PluginUnavailableError

from recognizers._backends.weights import module_missing

EGL_PACKAGES = "libegl1 libegl-mesa0 libgl1-mesa-dri"

_PROBE = """
from vtkmodules.vtkRenderingCore import vtkRenderWindow, vtkRenderer
import vtkmodules.vtkRenderingOpenGL2
w = vtkRenderWindow(); w.SetOffScreenRendering(1); w.SetSize(16, 16)
w.AddRenderer(vtkRenderer()); w.Render()
print("ok", w.GetClassName())
"""


@dataclass(frozen=True)
class VtkVolumeParams:
    """The seed study's settings; ``mapper`` "fixed_point" is VTK's CPU ray caster (deterministic,
    no GPU needed), "smart" lets VTK choose (GPU ray casting where OpenGL allows)."""

    size_px: int = 800
    camera_position: tuple[float, float, float] = (0.0, 700.0, 290.0)
    view_up: tuple[float, float, float] = (0.0, 0.0, 1.0)
    dolly: float = 2.0
    opacity: tuple[tuple[float, float], ...] = (
        (-3024, 0.0), (-1000, 0.0), (-500, 0.0), (0, 0.2), (300, 0.4), (500, 0.6), (1000, 0.8), (3071, 1.0))
    color: tuple[tuple[float, float, float, float], ...] = (
        (-3024, 0, 0, 0), (-1000, .5, .5, .5), (-500, .8, .6, .4), (0, .9, .7, .6), (300, .95, .8, .7),
        (500, 1, .8, .8), (1000, .9, .9, 1), (3071, 1, 1, 1))
    mapper: str = "fixed_point"


@lru_cache(maxsize=1)
def _probe_offscreen() -> Availability:
    """Open a tiny offscreen render window in a child process; the reason says what to install."""
    fix = f"install the Mesa EGL libraries (Debian/Ubuntu: apt-get install {EGL_PACKAGES})"
    try:
        run = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        return Availability.no(f"VTK offscreen render window did not open ({err}): {fix}")
    if run.returncode != 0 or "ok" not in run.stdout:
        tail = (run.stderr.strip().splitlines() or ["no message"])[-1][:200]
        return Availability.no(f"VTK offscreen render window did not open (exit {run.returncode}: {tail}): {fix}")
    return Availability.yes()


def _image_data(volume: Volume):
    """vtkImageData of the HU grid: axis-aligned, spacing = voxel sizes (direction cosines ignored)."""
    from vtkmodules.util import numpy_support
    from vtkmodules.vtkCommonDataModel import vtkImageData

    data = np.asarray(volume.data, dtype=np.float32)
    image = vtkImageData()
    image.SetDimensions(*data.shape)
    image.SetSpacing(*volume.zooms)
    image.SetOrigin(0.0, 0.0, 0.0)
    flat = np.ascontiguousarray(data.transpose(2, 1, 0)).ravel()  # VTK: x varies fastest
    image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(flat, deep=True))
    return image


def _volume_actor(image, params: VtkVolumeParams):
    """The vtkVolume with the study's transfer functions, shading and linear interpolation."""
    from vtkmodules.vtkCommonDataModel import vtkPiecewiseFunction
    from vtkmodules.vtkRenderingCore import vtkColorTransferFunction, vtkVolume, vtkVolumeProperty
    from vtkmodules.vtkRenderingVolume import vtkFixedPointVolumeRayCastMapper
    import vtkmodules.vtkRenderingVolumeOpenGL2  # noqa: F401  (registers the OpenGL volume mappers)

    if params.mapper == "smart":
        from vtkmodules.vtkRenderingVolumeOpenGL2 import vtkSmartVolumeMapper
        mapper = vtkSmartVolumeMapper()
    else:
        mapper = vtkFixedPointVolumeRayCastMapper()
    mapper.SetInputData(image)
    opacity, color = vtkPiecewiseFunction(), vtkColorTransferFunction()
    for hu, a in params.opacity:
        opacity.AddPoint(hu, a)
    for hu, r, g, b in params.color:
        color.AddRGBPoint(hu, r, g, b)
    prop = vtkVolumeProperty()
    prop.SetColor(color)
    prop.SetScalarOpacity(opacity)
    prop.ShadeOn()
    prop.SetInterpolationTypeToLinear()
    actor = vtkVolume()
    actor.SetMapper(mapper)
    actor.SetProperty(prop)
    return actor


def _snapshot(window) -> np.ndarray:
    """The render window's pixels as (H, W, 3) uint8, top row first."""
    from vtkmodules.util import numpy_support
    from vtkmodules.vtkRenderingCore import vtkWindowToImageFilter

    grab = vtkWindowToImageFilter()
    grab.SetInput(window)
    grab.SetInputBufferTypeToRGB()
    grab.ReadFrontBufferOff()
    grab.Update()
    out = grab.GetOutput()
    w, h, _ = out.GetDimensions()
    pixels = numpy_support.vtk_to_numpy(out.GetPointData().GetScalars()).reshape(h, w, -1)[:, :, :3]
    return np.ascontiguousarray(pixels[::-1])


class VtkVolumeRenderer:
    """The seed study's VTK volume render (see module docstring); one "frontal" view."""

    name = "vtk_volume"
    version = "1"

    def __init__(self, params: VtkVolumeParams | None = None) -> None:
        self.params = params if params is not None else VtkVolumeParams()

    def available(self) -> Availability:
        """Needs vtk and an offscreen OpenGL context (EGL + Mesa)."""
        if module_missing("vtkmodules"):
            return Availability.no("python module vtk not installed: pip install vtk (or defacebench[vtk])")
        return _probe_offscreen()

    def render(self, volume: Volume) -> list[View]:
        """Render the study's single view (camera from anterior-superior)."""
        avail = self.available()
        if not avail.ok:
            raise PluginUnavailableError(avail.reason)
        from vtkmodules.vtkRenderingCore import vtkRenderer, vtkRenderWindow
        import vtkmodules.vtkRenderingOpenGL2  # noqa: F401  (registers the OpenGL render window)

        p = self.params
        renderer = vtkRenderer()
        renderer.SetBackground(0.0, 0.0, 0.0)
        renderer.AddVolume(_volume_actor(_image_data(volume), p))
        camera = renderer.GetActiveCamera()
        camera.SetPosition(*p.camera_position)
        camera.SetFocalPoint(0.0, 0.0, 0.0)
        camera.SetViewUp(*p.view_up)
        renderer.ResetCamera()
        camera.Dolly(p.dolly)
        renderer.ResetCameraClippingRange()
        window = vtkRenderWindow()
        window.SetOffScreenRendering(1)
        window.SetSize(p.size_px, p.size_px)
        window.AddRenderer(renderer)
        window.Render()
        image = _snapshot(window)
        window.Finalize()
        info = {"position": list(camera.GetPosition()), "focal_point": list(camera.GetFocalPoint()),
                "view_up": list(camera.GetViewUp()), "dolly": p.dolly, "mapper": p.mapper}
        return [View("frontal", image, info)]
