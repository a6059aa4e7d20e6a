"""The view grid of the multi-view scenarios: (yaw, pitch, light) triples in degrees and a light index.

The default is the issue's grid: yaw -30..30 in steps of 15 x pitch -15..15 in steps of 15 x one
light (15 views); :func:`grid` builds others, up to the published 81 (9 cameras x 9 lights).
"""

from __future__ import annotations

import itertools

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
    if min(ymax, ystep, pmax, pstep) < 0 or n_lights < 1 or ymax > 90 or pmax > 90:
        raise ValueError(f"view grid {text!r}: angles must be in [0, 90] degrees, steps >= 0, lights >= 1")
    return (ymax, ystep, pmax, pstep, n_lights)
