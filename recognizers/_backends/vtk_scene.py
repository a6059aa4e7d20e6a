"""An offscreen VTK volume-rendering scene built once per volume and re-rendered per view.

Used by the `vtk_volume` renderer: the VTK image, the transfer functions and the mapper (whose
gradient and shading tables are computed at the first render) are made once per volume, the render
window once per process; a view changes only the camera and the light. Import only where VTK is known to be there.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from defacebench.contracts import Volume
from defacebench.util.vtklog import route_vtk_output

from recognizers._backends.views import OrthoCamera


def _image_data(volume: Volume):
    """vtkImageData of the volume: spacing = voxel sizes, origin 0, direction cosines not set."""
    from vtkmodules.util import numpy_support
    from vtkmodules.vtkCommonDataModel import vtkImageData

    data = np.asarray(volume.data, dtype=np.float32)
    image = vtkImageData()
    image.SetDimensions(*data.shape)
    image.SetSpacing(*volume.zooms)
    image.SetOrigin(0.0, 0.0, 0.0)
    # VTK wants x varying fastest: Fortran order (no copy when the renderer made it so); the VTK
    # array shares that memory (numpy_to_vtk keeps a reference) instead of a second 4-byte copy
    flat = np.asfortranarray(data).ravel(order="F")
    image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(flat, deep=False))
    return image


def _placement(volume: Volume):
    """vtkMatrix4x4 taking the image's (spacing-scaled) grid to world mm: the affine's rotation and
    translation. A mirrored grid (negative determinant) is not a rotation; callers give canonical
    (RAS+) volumes, as defacebench's loader does."""
    from vtkmodules.vtkCommonMath import vtkMatrix4x4

    m = np.asarray(volume.affine, float) @ np.diag([*(1.0 / np.asarray(volume.zooms)), 1.0])
    out = vtkMatrix4x4()
    for i in range(4):
        for j in range(4):
            out.SetElement(i, j, float(m[i, j]))
    return out


def _volume_actor(image, params):
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


@lru_cache(maxsize=2)
def _window(size_px: int):
    """(render window, renderer, light) of this process for ``size_px`` images, made once.

    Why: opening an offscreen OpenGL context and its window for every volume cost ~0.06 s per
    render; a worker renders many volumes in a row, each with its own volume actor in the same
    renderer (:class:`Scene` swaps it). Renders are the same pixels as with a fresh window."""
    from vtkmodules.vtkRenderingCore import vtkLight, vtkRenderer, vtkRenderWindow
    import vtkmodules.vtkRenderingOpenGL2  # noqa: F401  (registers the OpenGL render window)

    renderer = vtkRenderer()
    renderer.SetBackground(0.0, 0.0, 0.0)
    renderer.AutomaticLightCreationOff()
    light = vtkLight()  # directional, fixed in the scene (the view grid's lights follow the head)
    light.SetLightTypeToSceneLight()
    light.PositionalOff()
    light.SetFocalPoint(0.0, 0.0, 0.0)
    renderer.AddLight(light)
    window = vtkRenderWindow()
    window.SetOffScreenRendering(1)
    window.SetSize(size_px, size_px)
    window.AddRenderer(renderer)
    return window, renderer, light


class Scene:
    """One volume in this process's offscreen window; ``place_by_affine`` puts it where its affine
    says (otherwise axis-aligned at the origin, as the seed study did). :meth:`close` takes the
    volume out again (the window stays for the next volume)."""

    def __init__(self, volume: Volume, params, place_by_affine: bool) -> None:
        route_vtk_output()  # VTK's warnings into the run's log, EGL without a display (before any window)
        actor = _volume_actor(_image_data(volume), params)
        if place_by_affine:
            actor.SetUserMatrix(_placement(volume))
        self.window, self.renderer, self.light = _window(int(params.size_px))
        self.renderer.RemoveAllViewProps()
        self.renderer.AddVolume(actor)
        self.actor = actor

    def set_light(self, direction) -> None:
        """A directional light shining from world ``direction`` (toward the light)."""
        d = np.asarray(direction, float)
        self.light.SetPosition(*(d / np.linalg.norm(d)))

    def ortho_camera(self, cam: OrthoCamera) -> dict:
        """Parallel projection matching ``cam``: same centre, axes and mm per pixel."""
        camera = self.renderer.GetActiveCamera()
        camera.ParallelProjectionOn()
        camera.SetFocalPoint(*cam.center)
        camera.SetPosition(*(cam.center - cam.direction * (cam.radius + 10.0)))
        camera.SetViewUp(*cam.up)
        camera.SetParallelScale(cam.size_px * cam.mm_per_px / 2.0)  # half the image height in mm
        self.renderer.ResetCameraClippingRange()
        return cam.as_dict()

    def seed_camera(self, params, yaw: float, pitch: float) -> dict:
        """The study's camera (reset to bounds, dolly), turned by yaw (azimuth) and pitch (elevation)."""
        camera = self.renderer.GetActiveCamera()
        camera.ParallelProjectionOff()
        camera.SetPosition(*params.camera_position)
        camera.SetFocalPoint(0.0, 0.0, 0.0)
        camera.SetViewUp(*params.view_up)
        self.renderer.ResetCamera()
        camera.Dolly(params.dolly)
        camera.Azimuth(yaw)
        camera.Elevation(pitch)
        camera.OrthogonalizeViewUp()
        self.renderer.ResetCameraClippingRange()
        return {"position": list(camera.GetPosition()), "focal_point": list(camera.GetFocalPoint()),
                "view_up": list(camera.GetViewUp()), "dolly": params.dolly, "yaw": yaw, "pitch": pitch}

    def seed_frame(self, params) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World (image right, image up, toward the camera) of the study's unturned camera: the
        frame its lights are given in (``(0, 0, 1)`` is VTK's headlight)."""
        self.seed_camera(params, 0.0, 0.0)
        camera = self.renderer.GetActiveCamera()
        toward = np.asarray(camera.GetPosition()) - np.asarray(camera.GetFocalPoint())
        toward /= np.linalg.norm(toward)
        up = np.asarray(camera.GetViewUp(), float)
        return np.cross(up, toward), up, toward

    def snapshot(self) -> np.ndarray:
        """Render and return the window's pixels as (H, W, 3) uint8, top row first."""
        from vtkmodules.util import numpy_support
        from vtkmodules.vtkRenderingCore import vtkWindowToImageFilter

        self.window.Render()
        grab = vtkWindowToImageFilter()
        grab.ShouldRerenderOff()  # just rendered: the filter's own render would double the cost
        grab.SetInput(self.window)
        grab.SetInputBufferTypeToRGB()
        grab.ReadFrontBufferOff()
        grab.Update()
        out = grab.GetOutput()
        w, h, _ = out.GetDimensions()
        pixels = numpy_support.vtk_to_numpy(out.GetPointData().GetScalars()).reshape(h, w, -1)[:, :, :3]
        return np.ascontiguousarray(pixels[::-1])

    def close(self) -> None:
        """Release the volume (its image, gradients and actor); the window is kept."""
        self.renderer.RemoveVolume(self.actor)
        self.actor = None
