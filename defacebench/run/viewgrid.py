"""The view grid of the multi-view scenarios: (yaw, pitch, light) triples in degrees and a light index.

The default is the issue's grid: yaw -30..30 in steps of 15 x pitch -15..15 in steps of 15 x one
light (15 views); :func:`grid` builds others, up to the published 81 (9 cameras x 9 lights).

Light ``0`` of a grid is the renderer's own first light, so the grid's frontal view is exactly the
view of the single-view scenarios (rendered, detected and embedded once). A grid of more lights than
the renderer declares takes the others from :data:`STANDARD_LIGHTS`, a 3 x 3 set like the published
attack's (FIELD.md section 2). A grid is refused before any work when it asks for more views per
scan than ``--max-views`` (each view is rendered, searched for a face and embedded per scan and
attacker): :func:`check_budget` says what it would cost.
"""

from __future__ import annotations

import itertools
import math

import numpy as np


def grid(yaw_max: float = 30.0, yaw_step: float = 15.0, pitch_max: float = 15.0, pitch_step: float = 15.0,
         lights: int = 1) -> tuple[tuple[float, float, int], ...]:
    """Every (yaw, pitch, light) of a symmetric yaw x pitch grid times ``lights`` light positions."""
    yaws = np.arange(-yaw_max, yaw_max + 1e-9, yaw_step) if yaw_step > 0 else np.zeros(1)
    pitches = np.arange(-pitch_max, pitch_max + 1e-9, pitch_step) if pitch_step > 0 else np.zeros(1)
    views = [(float(y), float(p), int(light)) for light, p, y in itertools.product(range(lights), pitches, yaws)]
    # the frontal view first: single-view uses of a grid render (montages) show the face head-on
    return tuple(sorted(views, key=lambda v: (v != (0.0, 0.0, 0), v[2])))


def default_grid() -> tuple[tuple[float, float, int], ...]:
    """15 views: yaw -30..30 step 15 x pitch -15..15 step 15 x 1 light."""
    return grid()


def parse_grid(text: str) -> tuple[float, float, float, float, int]:
    """``"YAWMAX:YAWSTEP,PITCHMAX:PITCHSTEP,LIGHTS"`` (e.g. ``30:15,15:15,1``: 15 views;
    ``30:30,15:15,9``: 81 views) -> the arguments of :func:`grid`."""
    try:
        yaw, pitch, lights = text.split(",")
        ymax, ystep = (float(v) for v in yaw.split(":"))
        pmax, pstep = (float(v) for v in pitch.split(":"))
        n_lights = int(lights)
    except ValueError:
        raise ValueError(f"view grid {text!r} must be YAWMAX:YAWSTEP,PITCHMAX:PITCHSTEP,LIGHTS, e.g. 30:15,15:15,1") from None
    if not all(math.isfinite(v) for v in (ymax, ystep, pmax, pstep)):
        raise ValueError(f"view grid {text!r}: angles and steps must be finite numbers of degrees")
    if min(ymax, ystep, pmax, pstep) < 0 or n_lights < 1 or ymax > 90 or pmax > 90:
        raise ValueError(f"view grid {text!r}: angles must be in [0, 90] degrees, steps >= 0, lights >= 1")
    return (ymax, ystep, pmax, pstep, n_lights)


def n_views(view_grid: tuple[float, float, float, float, int]) -> int:
    """How many views :func:`grid` makes from these arguments (without building them)."""
    ymax, ystep, pmax, pstep, lights = view_grid
    per_axis = [int(math.floor(2 * m / s + 1e-9)) + 1 if s > 0 else 1 for m, s in ((ymax, ystep), (pmax, pstep))]
    return per_axis[0] * per_axis[1] * int(lights)


CPU_S_PER_VIEW = 0.14
"""CPU seconds one more grid view costs per scan and attacker: render 0.06, dlib HOG on a view set 0.03,
embedding 0.05 (faces per grid image 0.46 x 0.11 s); measured on the sample with one BLAS thread per
worker, as the pipeline runs (docs/benchmarks.md, "Many-view sets (issue 23)").
Only the estimate in :func:`check_budget`'s message uses it."""


def check_budget(view_grid: tuple[float, float, float, float, int], max_views: int) -> str:
    """"" when the grid fits ``max_views`` per scan, else the one-line refusal with its estimated cost."""
    count = n_views(view_grid)
    if count <= max_views:
        return ""
    ymax, ystep, pmax, pstep, lights = view_grid
    text = f"{ymax:g}:{ystep:g},{pmax:g}:{pstep:g},{lights}"
    hours = count * CPU_S_PER_VIEW / 3600
    return (f"--view-grid {text} asks for {count:,} views per scan, over --max-views {max_views}: about "
            f"{hours:,.1f} CPU hours per scan and attacker ({CPU_S_PER_VIEW} CPU s per view to render, detect and "
            "embed), times the scans (2 per subject for the control, 1 per defacer); use larger steps "
            "(30:15,15:15,1 = 15 views) or raise --max-views")


def _direction(azimuth: float, elevation: float) -> tuple[float, float, float]:
    """A light direction in the renderers' frame of the frontal camera (image right, image up, toward
    the camera): ``azimuth`` degrees toward the image's right, ``elevation`` toward its top."""
    a, e = math.radians(azimuth), math.radians(elevation)
    return tuple(round(v, 6) for v in (math.sin(a) * math.cos(e), math.sin(e), math.cos(a) * math.cos(e)))


STANDARD_LIGHTS: tuple[tuple[float, float, float], ...] = tuple(
    _direction(az, el) for el, az in itertools.product((30.0, 15.0, 45.0), (0.0, -20.0, 20.0)))
"""Lights a grid adds to the renderer's own (in this order): azimuth 0 / -20 / 20 degrees x elevation
30 / 15 / 45 degrees, the set of 9 lights above eye level the published 81-render attack is modelled on
(lights at eye level leave the face flat or half dark)."""
