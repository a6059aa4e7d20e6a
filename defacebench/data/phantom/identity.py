"""Who a synthetic subject is (shape) and how they lie in the scanner (pose).

Identity follows FIELD.md section 3's measured recipe: a few % anisotropic scale plus ~20 smooth
Gaussian displacement bumps (sigma ~20 mm), most of them centred on the face. Pose is a rotation
about the head's centre (pitch: chin toward the chest; roll; yaw) plus a shift within the field of
view, drawn per acquisition, so scan and rescan of one person never line up exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from defacebench.data.phantom.anatomy import BaseAnatomy


@dataclass(frozen=True)
class IdentityParams:
    """How different the synthetic identities are."""

    scale_mean: float = 0.95  # the template is a large head (211 mm nose to occiput)
    scale_sd: float = 0.03  # sd of per-axis scale, clipped to 2 sd
    n_bumps: int = 20
    bump_sigma_mm: float = 20.0
    face_fraction: float = 0.85  # fraction of bump centres on the face
    bump_rms_mm: float = 6.5  # RMS of the bumps' peak displacement
    relief_sd: float = 0.0  # per-subject relative sd of each facial relief component's depth
    feature_shift_mm: float = 0.0  # sd of each relief component's sideways and vertical shift
    feature_depth_mm: float = 12.0  # anteroposterior sigma of a feature bump (it moves skin and tissue under it)
    asymmetry: float = 0.2  # each face bump's mirror image carries (1 - asymmetry) x its mirrored vector


@dataclass(frozen=True)
class PoseParams:
    """Head position and tilt ranges of one acquisition (uniform within +-each value about
    ``pitch_mean_deg`` for the pitch, 0 for the others). The default (sample format 5) draws the
    pitch in 10 +- 4 degrees (:meth:`frankfort`); :meth:`template_frame` is 0 +- 3 (up to format 4)."""

    pitch_mean_deg: float = 10.0
    pitch_deg: float = 4.0
    roll_deg: float = 2.0
    yaw_deg: float = 2.0
    shift_mm: tuple[float, float, float] = (10.0, 5.0, 6.0)
    centre: tuple[float, float, float] = (0.0, 0.0, -20.0)  # rotation centre, template frame mm

    @classmethod
    def frankfort(cls) -> "PoseParams":
        """Pitch 10 +- 4 degrees: the template lies ~10 degrees chin-down of its Frankfort plane, so
        this draws heads within +-4 degrees of it (docs/realism.md); the default since format 5."""
        return cls(pitch_mean_deg=10.0, pitch_deg=4.0)

    @classmethod
    def template_frame(cls) -> "PoseParams":
        """Pitch 0 +- 3 degrees in the template's own frame (7-13 degrees of flexion; up to format 4)."""
        return cls(pitch_mean_deg=0.0, pitch_deg=3.0)


@dataclass(frozen=True)
class Identity:
    """One synthetic person: per-axis scale and displacement bumps (centres, vectors and per-axis
    sigmas in mm, one row per bump)."""

    scale: np.ndarray
    centres: np.ndarray
    vectors: np.ndarray
    sigma_mm: np.ndarray


def make_identity(base: BaseAnatomy, rng: np.random.Generator, p: IdentityParams, relief=()) -> Identity:
    """Draw an identity: anisotropic scale and ``n_bumps`` bumps, ``face_fraction`` on the face, each
    face bump with its mirror image across the mid-sagittal plane (:func:`mirrored`), plus one
    feature bump per facial ``relief`` component (:func:`feature_bumps`) when ``p.relief_sd`` > 0."""
    scale = p.scale_mean + np.clip(rng.normal(0.0, p.scale_sd, 3), -2 * p.scale_sd, 2 * p.scale_sd)
    n_face = int(round(p.face_fraction * p.n_bumps))
    face = base.face_points[rng.choice(len(base.face_points), n_face)]
    other = base.surface_points[rng.choice(len(base.surface_points), p.n_bumps - n_face)]
    # centres sit a few mm under the skin so a bump moves skin and the tissue under it together
    centres = np.concatenate([face, other]) + rng.normal(0.0, 3.0, (p.n_bumps, 3))
    vectors = rng.normal(0.0, p.bump_rms_mm / np.sqrt(3.0), (p.n_bumps, 3))
    sigmas = np.full((p.n_bumps, 3), p.bump_sigma_mm)
    if p.asymmetry < 1.0:
        w = 1.0 - p.asymmetry
        vectors[:n_face] /= np.sqrt(1.0 + w * w)  # the pair moves the face about as much as one bump did
        mc, mv = mirrored(centres[:n_face], vectors[:n_face], w)
        centres, vectors = np.concatenate([centres, mc]), np.concatenate([vectors, mv])
        sigmas = np.full((len(centres), 3), p.bump_sigma_mm)
    if p.relief_sd > 0 and relief:
        fc, fv, fs = feature_bumps(base, rng, p, relief)
        centres, vectors, sigmas = np.concatenate([centres, fc]), np.concatenate([vectors, fv]), np.concatenate([sigmas, fs])
    return Identity(scale=scale, centres=centres, vectors=vectors, sigma_mm=sigmas)


def mirrored(centres: np.ndarray, vectors: np.ndarray, weight: float) -> tuple[np.ndarray, np.ndarray]:
    """The bumps' mirror images across the mid-sagittal plane (x -> -x), vectors times ``weight``.

    Why: a face is bilaterally symmetric to within a few mm, and independent bumps made the
    synthetic faces lopsided (asymmetry 3.5-6.5 mm RMS over the face, as much as their whole shape
    variation): a twisted nose or a sunk eye reads to a recognizer like a turned head, so scan and
    rescan of one person at other pitches drifted apart (docs/realism.md, "Identities")."""
    flip = np.array([-1.0, 1.0, 1.0])
    return centres * flip, vectors * flip * weight


def feature_bumps(base: BaseAnatomy, rng: np.random.Generator, p: IdentityParams, relief) -> tuple[np.ndarray, ...]:
    """Per-subject variation of the face's features: at each relief component ``(x, z, sigma_x,
    sigma_z, depth)`` (template frame, docs/realism.md) a bump of the same extent that deepens or
    flattens it by ``relief_sd`` x its depth and shifts it by ``feature_shift_mm`` (nose length and
    projection, eye and brow spacing, lips, chin). Why: the global bumps (sigma 20 mm) leave every
    synthetic face with the same nose, eyes and chin, and recognizers then confuse neighbours.
    Measured at relief_sd 0.25 and 1.5 mm on the calibrated face: it did not separate the pairs
    the recognizers confuse and cost detections, so it is off by default (docs/realism.md)."""
    comp = np.asarray(relief, float)
    front = base.face_points
    centres = np.empty((len(comp), 3))
    for i, (x0, z0, *_rest) in enumerate(comp):
        near = np.argmin((front[:, 0] - x0) ** 2 + (front[:, 2] - z0) ** 2)
        centres[i] = (x0, front[near, 1], z0)
    # the backward map reads the template at x + u: a bump pointing back (-y) moves the skin forward
    depth = -comp[:, 4] * rng.normal(0.0, p.relief_sd, len(comp))
    shift = rng.normal(0.0, p.feature_shift_mm, (len(comp), 2))
    vectors = np.stack([shift[:, 0], depth, shift[:, 1]], axis=1)
    sigmas = np.stack([np.maximum(comp[:, 2], 6.0), np.full(len(comp), p.feature_depth_mm),
                       np.maximum(comp[:, 3], 6.0)], axis=1)
    return centres, vectors, sigmas


def _rotation(pitch: float, roll: float, yaw: float) -> np.ndarray:
    """Rotation matrix: pitch about x (positive lifts the chin), roll about y, yaw about z (degrees)."""
    a, b, c = np.deg2rad([pitch, roll, yaw])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def random_pose(rng: np.random.Generator, p: PoseParams) -> np.ndarray:
    """A 4x4 rigid transform (template frame -> scanner frame) within the ranges of ``p``."""
    angles = rng.uniform(-1.0, 1.0, 3) * np.array([p.pitch_deg, p.roll_deg, p.yaw_deg])
    angles[0] += p.pitch_mean_deg
    rot = _rotation(*angles)
    centre = np.asarray(p.centre, float)
    pose = np.eye(4)
    pose[:3, :3] = rot
    pose[:3, 3] = centre - rot @ centre + rng.uniform(-1.0, 1.0, 3) * np.asarray(p.shift_mm)
    return pose


def displacement(points: np.ndarray, ident: Identity) -> np.ndarray:
    """Sum of the identity's Gaussian bumps at ``points`` (n, 3) mm."""
    out = np.zeros_like(points)
    for c, v, s in zip(ident.centres, ident.vectors, ident.sigma_mm):
        d2 = (((points - c) / s) ** 2).sum(axis=1)
        near = d2 < 16.0  # beyond 4 sigma a bump is < 0.04 % of its peak
        out[near] += np.exp(-0.5 * d2[near])[:, None] * v
    return out


def coarse_field(lo: np.ndarray, hi: np.ndarray, ident: Identity, step_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """The bump field sampled every ``step_mm`` over the box [lo, hi] (the bumps are smooth):
    ``(3, nx, ny, nz)`` displacements and the box origin, so warping costs three interpolations."""
    axes = [np.arange(a, b + step_mm, step_mm) for a, b in zip(lo, hi)]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    field = displacement(pts, ident).T.reshape((3, *(len(a) for a in axes)))
    return field.astype(np.float32), np.asarray(lo, float)


def to_scanner(points: np.ndarray, ident: Identity, pose: np.ndarray) -> np.ndarray:
    """Where template-frame anatomy points (n, 3) end up in the scanner frame (forward map).

    Inverts the backward map ``p = S^-1 P^-1 x + u(S^-1 P^-1 x)`` by two fixed-point steps (the bump
    field is smooth, so this is accurate to well under a millimetre)."""
    q = points - displacement(points, ident)
    q = points - displacement(q, ident)
    return (q * ident.scale) @ pose[:3, :3].T + pose[:3, 3]
