"""The renderers' view grid: which cameras and lights a render uses, and what each view is called.

A view is a (yaw, pitch, light) triple. Renderers take two params fields, ``views`` and ``lights``
(light directions). A ``views`` entry is a (yaw, pitch, light index) triple in degrees (as the
engine's view grids are) or a (yaw, pitch) pair, which means that camera under every light:
15 cameras x 1 light = 15 views, 9 cameras x 9 lights = the published 81 (FIELD.md section 2).
The default is one frontal camera under light 0.

Angles (RAS world, head at the origin): yaw turns the camera about the superior axis toward the
subject's left for positive values; pitch raises it above the face for positive values.

Lights are fixed to the head, like studio lights when the camera moves around a sitter: a light
direction is given in the frame of the (0, 0) camera (its image right, image up, toward it), so
``(-0.3, 0.35, 1.0)`` lights a frontal view from the upper left, and a camera turned 30 degrees
sees the face lit from the front of the face rather than from behind it. (A light fixed to the
camera lights the turned-away cheek at one yaw sign: dlib HOG then misses most faces at yaw -30.)
Light ``i`` is ``lights[i]``.

A view's id names its triple (``yaw+15_pitch-15_light0``), so one view's id, camera and image
never depend on which other views were asked for.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from defacebench.errors import PluginError


@dataclass(frozen=True)
class ViewSpec:
    """One requested view: camera angles (degrees) and the index and direction of its light."""

    yaw: float
    pitch: float
    light: int
    light_dir: tuple[float, float, float]

    @property
    def view_id(self) -> str:
        return view_id(self.yaw, self.pitch, self.light)


def _angle(value: float) -> str:
    """``+15``, ``-7.5``, ``+0`` (never ``-0``): a signed, shortest decimal."""
    return f"{float(value) + 0.0:+g}"


def view_id(yaw: float, pitch: float, light: int = 0) -> str:
    """The stable, readable id of a view, e.g. ``yaw+15_pitch-15_light0``."""
    return f"yaw{_angle(yaw)}_pitch{_angle(pitch)}_light{int(light)}"


def view_specs(plugin: str, views, lights) -> list[ViewSpec]:
    """The views asked for, in order, validated: a ``(yaw, pitch)`` entry is that camera under every
    light of ``lights``; a ``(yaw, pitch, i)`` entry is that camera under ``lights[i]`` only (the
    engine's view grids are such triples).

    Raises PluginError naming the plugin and the bad field (TOML params arrive unchecked).
    """
    dirs = [tuple(float(a) for a in light) for light in lights]
    if not dirs or any(len(d) != 3 or not np.all(np.isfinite(d)) or np.linalg.norm(d) < 1e-9 for d in dirs):
        raise PluginError(f"{plugin}: params.lights must be a non-empty list of non-zero [right, up, "
                          f"toward-camera] directions (of the frontal camera), got {lights!r}. Fix: e.g. "
                          "lights = [[-0.3, 0.35, 1.0]]")
    specs = []
    for v in views:
        v = tuple(float(a) for a in v)
        if len(v) not in (2, 3) or not np.all(np.isfinite(v)) or (len(v) == 3 and v[2] not in range(len(dirs))):
            raise PluginError(f"{plugin}: params.views entries must be finite [yaw, pitch] pairs (every light) "
                              f"or [yaw, pitch, light] triples with light < {len(dirs)} (the number of "
                              f"params.lights), got {v!r}. Fix: e.g. views = [[0, 0], [15, 0]] or add lights")
        chosen = range(len(dirs)) if len(v) == 2 else (int(v[2]),)
        specs += [ViewSpec(v[0], v[1], i, dirs[i]) for i in chosen]
    ids = [s.view_id for s in specs]
    if not specs:
        raise PluginError(f"{plugin}: params.views is empty. Fix: list at least one (yaw, pitch[, light]), e.g. [[0, 0]]")
    if len(set(ids)) != len(ids):
        # name the first repeated views and the count, never the whole list (it may hold thousands)
        seen: set[str] = set()
        repeated = list(dict.fromkeys(i for i in ids if i in seen or seen.add(i)))
        raise PluginError(f"{plugin}: params.views must name each view once; {len(ids) - len(set(ids))} of "
                          f"{len(ids)} repeat an earlier one, first {', '.join(repeated[:3])}. "
                          "Fix: list each (yaw, pitch[, light]) once")
    return specs


def angle_range(start: float, stop: float, step: float) -> tuple[float, ...]:
    """``start``, ``start + step``, ... up to and including ``stop`` (e.g. -30..30 step 15: 5 angles)."""
    if step <= 0 or stop < start:
        raise PluginError(f"angle range {start}..{stop} step {step}: need step > 0 and stop >= start")
    n = int(np.floor((stop - start) / step + 1e-9)) + 1
    return tuple(float(start + i * step) for i in range(n))


def camera_grid(yaws, pitches) -> tuple[tuple[float, float], ...]:
    """Every (yaw, pitch) of two angle lists, yaw-major (a value for a ``views`` params field)."""
    return tuple((float(y), float(p)) for y in yaws for p in pitches)


def light_grid(azimuths, elevations) -> tuple[tuple[float, float, float], ...]:
    """Light directions at ``azimuth`` degrees toward the frontal image's right and ``elevation``
    degrees toward its top from the frontal camera's axis (a value for a ``lights`` params field)."""
    out = []
    for az, el in itertools.product(azimuths, elevations):
        a, e = np.deg2rad(az), np.deg2rad(el)
        out.append(tuple(round(float(v), 6) for v in (np.sin(a) * np.cos(e), np.sin(e), np.cos(a) * np.cos(e))))
    return tuple(out)


def multiview_grid(yaw: tuple[float, float, float] = (-30.0, 30.0, 15.0),
                   pitch: tuple[float, float, float] = (-15.0, 15.0, 15.0)) -> tuple[tuple[float, float], ...]:
    """The multiview scenario's cameras: yaw -30..30 step 15 x pitch -15..15 step 15 (15 cameras)
    by default; ``yaw`` / ``pitch`` are (start, stop, step)."""
    return camera_grid(angle_range(*yaw), angle_range(*pitch))


def published_grid() -> tuple[tuple[tuple[float, float], ...], tuple[tuple[float, float, float], ...]]:
    """(views, lights) of an 81-render attack like the published one (FIELD.md section 2, whose
    exact positions are not given): 9 cameras (yaw -30/0/30 x pitch -15/0/15) x 9 lights (azimuth
    -20/0/20 x elevation 15/30/45 degrees). Lights at eye level (elevation 0) leave the face flat
    or half dark: on the undefaced sample dlib HOG found 31-65 % of faces per such light, 79-98 %
    per light of these (mean 90 %; worst view yaw -30, pitch -15 under the low right light: 16 %)."""
    return camera_grid((-30.0, 0.0, 30.0), (-15.0, 0.0, 15.0)), light_grid((-20.0, 0.0, 20.0), (15.0, 30.0, 45.0))


def camera_axes(yaw: float, pitch: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World (RAS) unit vectors (direction into the scene, image right, image up) for a camera.

    Frontal looks from anterior to posterior (direction -y), up is superior (+z), so image right is
    the subject's left (-x), as in a photograph of a person facing the camera.
    """
    y, p = np.deg2rad(yaw), np.deg2rad(pitch)
    pos = np.array([-np.sin(y) * np.cos(p), np.cos(y) * np.cos(p), np.sin(p)])
    direction = -pos / np.linalg.norm(pos)
    right = np.cross(direction, np.array([0.0, 0.0, 1.0]))
    if np.linalg.norm(right) < 1e-9:  # looking straight up or down: keep the frontal image right
        right = np.array([-np.cos(y), -np.sin(y), 0.0])
    right /= np.linalg.norm(right)
    return direction, right, np.cross(right, direction)


def head_frame(yaw: float = 0.0, pitch: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World (image right, image up, toward the camera) of a camera: the frame lights are given in
    for (0, 0)."""
    direction, right, up = camera_axes(yaw, pitch)
    return right, up, -direction


@dataclass(frozen=True)
class OrthoCamera:
    """Orthographic camera of a square ``size_px`` image at ``mm_per_px`` looking at ``center``.

    ``origin`` is the world point of pixel (0, 0) on the near plane, ``radius`` mm before the
    centre; depth is measured along ``direction`` from that plane.
    """

    spec: ViewSpec
    direction: np.ndarray
    right: np.ndarray
    up: np.ndarray
    center: np.ndarray
    radius: float
    size_px: int
    mm_per_px: float

    @classmethod
    def looking_at(cls, spec: ViewSpec, center, radius: float, size_px: int, mm_per_px: float) -> "OrthoCamera":
        direction, right, up = camera_axes(spec.yaw, spec.pitch)
        return cls(spec, direction, right, up, np.asarray(center, float), float(radius), int(size_px),
                   float(mm_per_px))

    def light(self) -> np.ndarray:
        """The view's light as a unit direction in this camera's frame (right, up, toward it)."""
        right0, up0, toward0 = head_frame()
        world = np.asarray(self.spec.light_dir, float) @ np.stack([right0, up0, toward0])
        local = np.array([world @ self.right, world @ self.up, -(world @ self.direction)])
        return local / np.linalg.norm(local)

    @property
    def origin(self) -> np.ndarray:
        half = (self.size_px - 1) / 2.0 * self.mm_per_px
        return self.center - self.direction * self.radius - half * (self.right - self.up)

    def world(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """World points (..., 3) of pixel centres on the near plane."""
        s = self.mm_per_px
        return self.origin + cols[..., None] * s * self.right - rows[..., None] * s * self.up

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(col, row, depth mm) of world points (N, 3): pixel coordinates and distance to the near
        plane, in the points' float type (float32 vertices halve a many-view render's memory traffic)."""
        frame = np.stack([self.right / self.mm_per_px, -self.up / self.mm_per_px, self.direction])
        # (3, 3) @ (3, N) runs as one BLAS call; (N, 3) @ (3, 3) is ~7x slower in numpy
        out = frame.astype(points.dtype) @ points.T - (frame @ self.origin).astype(points.dtype)[:, None]
        return out[0], out[1], out[2]

    def as_dict(self) -> dict:
        """A JSON-able description stored with the view: the triple, the frame and the scale."""
        s = self.spec
        return {"yaw": s.yaw, "pitch": s.pitch, "light": s.light, "light_dir": list(s.light_dir),
                "light_in_view": self.light().round(6).tolist(),
                "projection": "orthographic", "mm_per_px": self.mm_per_px, "size_px": self.size_px,
                "direction": self.direction.round(6).tolist(), "right": self.right.round(6).tolist(),
                "up": self.up.round(6).tolist(), "center_mm": self.center.round(3).tolist()}
