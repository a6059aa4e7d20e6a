"""The phantom's anatomy: tissue labels on the base grid and their CT (HU) and T1-like values.

From pydeface's averaged T1 (:mod:`.template`) come the head's outer shape, the brain (with the
ventricles as CSF) and a cranium around it. Everything a clinical head CT shows that the template
does not, or shows blurred, is added procedurally at the template's landmarks: soft-tissue layers
from the depth below the skin (skin, subcutaneous fat, muscle), the facial skeleton (orbits, nasal
bones, maxilla, zygomatic arches, mandible), teeth, eyes with lenses, air in the frontal and
maxillary sinuses, nasal cavity and airway, ears, cervical spine, neck and upper shoulders with
clavicles. The result is rendered once per process and shared by every subject; identities come
from warping it (:mod:`.identity`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from scipy import ndimage

from defacebench.data.phantom import face as face_tissue
from defacebench.data.phantom import shapes
from defacebench.anatomy.brainmask import largest_component
from defacebench.data.phantom.template import Landmarks, ball, t1_on_grid

LABELS = ("air", "skin", "fat", "muscle", "brain", "csf", "bone", "marrow", "teeth", "eye", "lens", "ear")
"""Tissue label names; a label's value in the label volume is its index here."""
L = {name: i for i, name in enumerate(LABELS)}
FORMAT_VERSION = 3  # bump when the anatomy changes for the same params (it keys the disk cache)


@dataclass(frozen=True)
class TissueValues:
    """CT value (HU) and T1-weighted value (relative to white matter = 1) of each tissue.

    Brain and bone get texture from the template (grey/white matter, cortical density), the other
    soft tissues a few HU of it, so the surfaces are not perfectly flat."""

    hu: tuple[tuple[str, float], ...] = (
        ("air", -1000.0), ("skin", 45.0), ("fat", -100.0), ("muscle", 50.0), ("csf", 8.0),
        ("marrow", 350.0), ("teeth", 2500.0), ("eye", 12.0), ("lens", 95.0), ("ear", 110.0))
    t1: tuple[tuple[str, float], ...] = (
        ("air", 0.0), ("skin", 0.62), ("fat", 1.05), ("muscle", 0.38), ("csf", 0.1), ("bone", 0.04),
        ("marrow", 0.75), ("teeth", 0.02), ("eye", 0.12), ("lens", 0.35), ("ear", 0.5))
    brain_hu: tuple[float, float] = (22.0, 42.0)
    bone_hu: tuple[float, float] = (850.0, 1450.0)
    texture_hu: float = 8.0


@dataclass(frozen=True)
class AnatomyParams:
    """Grid, template thresholds and tissue geometry of the phantom (hashed into the sample's key)."""

    base_mm: float = 1.5
    grid_lo: tuple[float, float, float] = (-130.0, -135.0, -250.0)
    grid_hi: tuple[float, float, float] = (130.0, 125.0, 100.0)
    head_t1: float = 60.0  # template intensity above which a voxel is head, not air
    head_open_mm: float = 4.5  # opening of the template's head: removes thin rims (averaged eyelids)
    brain_t1: float = 150.0  # template intensity of brain tissue (grey and white matter)
    brain_depth_mm: float = 9.0  # brain starts at least this deep below the skin
    # the skull base, as (y, z) points of its midline profile (template frame mm): the anterior
    # cranial fossa over the orbits, the middle fossa in front of the ears, the posterior fossa
    # behind them; the brain lies above it (the template's bright facial fat is no brain)
    cranial_floor: tuple[tuple[float, float], ...] = (
        (-130.0, -64.0), (-20.0, -64.0), (5.0, -46.0), (36.0, -46.0), (52.0, -23.0), (130.0, -23.0))
    skull_mm: float = 6.0
    skin_mm: float = 3.0
    fat_mm: float = 5.0
    neck_radii: tuple[float, float] = (58.0, 62.0)
    jaw_closing_mm: float = 9.0  # fills the crease where the template's jaw meets the neck
    shoulder_radii: tuple[float, float] = (210.0, 100.0)
    shoulder_top_z: float = -172.0
    shoulder_ramp_mm: float = 45.0
    landmarks: Landmarks = field(default_factory=Landmarks)
    face: face_tissue.FaceParams = field(default_factory=face_tissue.FaceParams)
    tissues: TissueValues = field(default_factory=TissueValues)


@dataclass(frozen=True)
class BaseAnatomy:
    """The phantom on its base grid: labels, HU and T1 volumes, and the points identities use.

    ``face_points`` / ``surface_points``: skin points (mm) where identity bumps are centred;
    ``teeth``: tooth centres (mm), where dental metal goes."""

    grid: shapes.Grid
    labels: np.ndarray
    hu: np.ndarray
    t1: np.ndarray
    face_points: np.ndarray
    surface_points: np.ndarray
    teeth: np.ndarray


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _neck_and_shoulders(grid: shapes.Grid, p: AnatomyParams) -> np.ndarray:
    """Elliptic neck below the template, widening into the upper shoulders."""
    x, y, z = grid.coords(tuple(slice(None) for _ in range(3)))  # type: ignore[arg-type]
    lm = p.landmarks
    s = _smoothstep((p.shoulder_top_z - z) / p.shoulder_ramp_mm)
    a = p.neck_radii[0] + (p.shoulder_radii[0] - p.neck_radii[0]) * s
    b = p.neck_radii[1] + (p.shoulder_radii[1] - p.neck_radii[1]) * s
    cy = lm.neck_centre[1] - 12.0 * s
    body = ((x - lm.neck_centre[0]) / a) ** 2 + ((y - cy) / b) ** 2 <= 1.0
    return body & (z < lm.template_bottom_z + 12.0)


def _support_box(mask: np.ndarray, margin: int) -> tuple[slice, slice, slice]:
    """Index box of ``mask``'s voxels grown by ``margin`` voxels (morphology runs only there)."""
    out = []
    for axis in range(3):
        present = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        out.append(slice(max(0, present[0] - margin), min(mask.shape[axis], present[-1] + margin + 1)))
    return tuple(out)  # type: ignore[return-value]


def _erode(mask: np.ndarray, r_mm: float, step: float) -> np.ndarray:
    """Erosion by a ball of ``r_mm`` through the distance transform (faster than a large ball)."""
    return ndimage.distance_transform_edt(mask, sampling=step) > r_mm


def _dilate(mask: np.ndarray, r_mm: float, step: float) -> np.ndarray:
    """Dilation by a ball of ``r_mm`` through the distance transform."""
    return ndimage.distance_transform_edt(~mask, sampling=step) <= r_mm


def _head_masks(t1: np.ndarray, grid: shapes.Grid, p: AnatomyParams) -> tuple[np.ndarray, ...]:
    """(template head, brain, cranium band) from the T1 template (the cranium encloses the brain)."""
    box = _support_box(t1 > p.head_t1, margin=4)
    sub, step = t1[box], grid.step
    head_b = _dilate(_erode(sub > p.head_t1, p.head_open_mm, step), p.head_open_mm, step) & (sub > p.head_t1)
    head_b = ndimage.binary_fill_holes(largest_component(head_b, connectivity=1))
    depth = ndimage.distance_transform_edt(head_b, sampling=step)
    core = (depth > p.brain_depth_mm) & (sub > p.brain_t1)
    _, y, z = grid.coords(box)
    floor_y, floor_z = np.asarray(p.cranial_floor, float).T
    core &= z > np.interp(y, floor_y, floor_z)  # the brain sits above the skull base
    core = _dilate(_erode(core, 4.0, step), 4.0, step) & core  # cuts bridges to the tongue and neck
    brain_b = ndimage.binary_fill_holes(largest_component(core, connectivity=1))
    skull_b = _dilate(brain_b, p.skull_mm, step) & ~brain_b & head_b & (depth > 2.0 * step)
    masks = []
    for m in (head_b, brain_b, skull_b):
        full = np.zeros(grid.shape, bool)
        full[box] = m
        masks.append(full)
    return tuple(masks)


def _ears(head: np.ndarray, grid: shapes.Grid, lm: Landmarks) -> np.ndarray:
    """Two pinnae: flat ellipsoids standing off the sides of the head at ear level."""
    ears = np.zeros(grid.shape, bool)
    k = int(round((lm.ear_level_z - grid.origin[2]) / grid.step))
    j = int(round((lm.ear_y - grid.origin[1]) / grid.step))
    xs = grid.axes()[0][np.nonzero(head[:, j, k])[0]]
    for side, edge in ((1.0, xs.max()), (-1.0, xs.min())):
        shapes.ellipsoid(grid, (edge + side * 3.0, lm.ear_y, lm.ear_level_z), (7.0, 15.0, 29.0), out=ears)
    return ears


def _facial_skeleton(grid: shapes.Grid, lm: Landmarks) -> dict[str, np.ndarray]:
    """Masks of the procedural bones, cavities and organs of the face and neck (template frame)."""
    g = grid
    bone = np.zeros(g.shape, bool)
    air = np.zeros(g.shape, bool)
    eyes, lens, orbit_fat, marrow, teeth = (np.zeros(g.shape, bool) for _ in range(5))
    for eye in (np.asarray(lm.eye_right), np.asarray(lm.eye_left)):
        socket = eye + (0.0, -3.0, 0.0)
        rim = shapes.ellipsoid(g, socket, (20.0, 21.0, 19.0)) & ~shapes.ellipsoid(g, socket, (17.0, 18.5, 16.5))
        x, y, z = g.coords(tuple(slice(None) for _ in range(3)))  # type: ignore[arg-type]
        bone |= rim & (y < eye[1] + 5.0)
        orbit_fat |= shapes.ellipsoid(g, socket, (17.0, 18.5, 16.5)) & (y < eye[1] + 8.0)
        shapes.ellipsoid(g, eye, (12.0, 12.0, 12.0), out=eyes)
        shapes.ellipsoid(g, eye + (0.0, 9.5, 0.0), (4.5, 2.0, 4.5), out=lens)
        side = np.sign(eye[0])
        shapes.tube(g, [eye + (side * 10, -6, -15), eye + (side * 20, -20, -11), eye + (side * 26, -47, -7),
                        eye + (side * 28, -72, -5)], 3.5, out=bone)  # zygoma and its arch
    nose, nasion = np.asarray(lm.nose_tip), np.asarray(lm.nasion)
    shapes.tube(g, [nasion, nasion + 0.55 * (nose - nasion) + (0, -3, 0)], 4.5, out=bone)  # nasal bones
    maxilla_c = np.asarray(lm.upper_teeth_front) + (0.0, -22.0, 16.0)
    shapes.ellipsoid(g, maxilla_c, (32.0, 27.0, 17.0), out=bone)
    for side in (1.0, -1.0):  # maxillary sinuses
        shapes.ellipsoid(g, maxilla_c + (side * 19.0, 0.0, 5.0), (11.0, 14.0, 12.0), out=air)
    shapes.ellipsoid(g, maxilla_c + (0.0, 2.0, 16.0), (7.0, 26.0, 17.0), out=air)  # nasal cavity
    shapes.ellipsoid(g, nasion + (0.0, -12.0, 15.0), (14.0, 5.0, 9.0), out=air)  # frontal sinus
    chin = np.asarray(lm.chin)
    for dz in (4.0, 14.0):  # the mandible's body (two stacked arches: ~22 mm tall) and rami
        body = shapes.arch(chin + (0.0, -2.0, dz), 47.0, 76.0, 25)
        shapes.tube(g, body, 6.0, out=bone)
        shapes.tube(g, body, 3.5, out=marrow)
    for side in (1.0, -1.0):
        ramus = [chin + (side * 47.0, -78.0, 10.0), np.array([side * 49.0, lm.ear_y + 10.0, lm.ear_level_z - 8.0])]
        shapes.tube(g, ramus, 6.0, out=bone)
        shapes.tube(g, ramus, 3.0, out=marrow)
    centres = []
    for front, half, depth in ((lm.upper_teeth_front, 27.0, 36.0), (lm.lower_teeth_front, 25.0, 34.0)):
        for c in shapes.arch(front, half, depth, 14):
            shapes.ellipsoid(g, c, (3.2, 3.6, 5.0), out=teeth)
            centres.append(c)
    neck = lm.neck_centre
    spine = [(0.0, neck[1] + 8.0, lm.ear_level_z - 22.0), (0.0, neck[1], -110.0), (0.0, neck[1] - 6.0, -170.0),
             (0.0, neck[1] - 12.0, g.origin[2])]
    shapes.tube(g, spine, 9.0, out=bone)
    shapes.tube(g, spine, 6.5, out=marrow)
    airway = [maxilla_c + (0.0, -20.0, 12.0), (0.0, neck[1] + 34.0, -75.0), (0.0, neck[1] + 38.0, -130.0),
              (0.0, neck[1] + 44.0, g.origin[2])]
    shapes.tube(g, airway, 7.0, out=air)
    for side in (1.0, -1.0):  # clavicles
        shapes.tube(g, [(side * 14.0, neck[1] + 40.0, -205.0), (side * 60.0, neck[1] + 32.0, -195.0),
                        (side * 125.0, neck[1] + 5.0, -185.0)], 6.0, out=bone)
    return {"bone": bone, "marrow": marrow & bone, "air": air, "eye": eyes, "lens": lens,
            "orbit_fat": orbit_fat & ~eyes, "teeth": teeth, "teeth_centres": np.asarray(centres)}


def _close_jaw(head: np.ndarray, grid: shapes.Grid, p: AnatomyParams) -> None:
    """Close the head mask around the chin-neck junction (in place): the template's jaw overhangs
    the procedural neck, and the sharp crease between them renders as a second mouth."""
    chin_z = p.landmarks.chin[2]
    k0 = max(0, int((chin_z - 40.0 - grid.origin[2]) / grid.step))
    k1 = min(grid.shape[2], int((chin_z + 15.0 - grid.origin[2]) / grid.step))
    slab = head[:, :, k0:k1]
    r = p.jaw_closing_mm
    grown = ndimage.distance_transform_edt(~slab, sampling=grid.step) <= r
    closed = ndimage.distance_transform_edt(np.pad(grown, 1, constant_values=True), sampling=grid.step)[1:-1, 1:-1, 1:-1] > r
    head[:, :, k0:k1] |= closed & (np.arange(k1 - k0) > 2)[None, None, :]


def _labels(t1: np.ndarray, grid: shapes.Grid, p: AnatomyParams) -> tuple[np.ndarray, ...]:
    """The label volume, the template head, the tooth centres and the skin's signed distance (mm)."""
    thead, brain, skull = _head_masks(t1, grid, p)
    ears = _ears(thead, grid, p.landmarks)
    head = thead | _neck_and_shoulders(grid, p) | ears | face_tissue.soft_features(grid, p.landmarks, p.face)
    box = _support_box(thead | ears, margin=4)
    head[box] |= ndimage.binary_closing(head[box], ball(2), border_value=0)  # joins the ears smoothly
    _close_jaw(head, grid, p)
    sdf = face_tissue.apply_relief(face_tissue.smooth_distance(head, grid.step, p.face.surface_sigma_mm), grid, p.face)
    head = sdf > 0
    depth = np.maximum(sdf, 0.0)
    lab = np.zeros(grid.shape, np.uint8)
    lab[head] = L["muscle"]
    lab[head & (depth <= p.skin_mm + p.fat_mm)] = L["fat"]
    lab[head & (depth <= p.skin_mm)] = L["skin"]
    lab[ears & (depth > 1.5)] = L["ear"]
    deep = head & (depth > p.skin_mm + 1.0)
    bony = head & (depth > p.face.bone_depth_mm) & ~brain
    face = _facial_skeleton(grid, p.landmarks)
    lab[face["orbit_fat"] & deep] = L["fat"]
    lab[face["bone"] & bony] = L["bone"]
    lab[face["marrow"] & bony] = L["marrow"]
    lab[skull] = L["bone"]
    lab[brain] = L["brain"]
    lab[brain & ndimage.binary_erosion(brain, iterations=2) & (t1 < p.brain_t1)] = L["csf"]
    lab[face["air"] & (depth > 4.0) & ~brain] = L["air"]
    lab[face["teeth"] & deep] = L["teeth"]
    lab[face["eye"] & deep] = L["eye"]
    lab[face["lens"] & deep] = L["lens"]
    return lab, thead, face["teeth_centres"], sdf


def _values(lab: np.ndarray, t1: np.ndarray, sdf: np.ndarray, p: AnatomyParams) -> tuple[np.ndarray, np.ndarray]:
    """HU and T1-like volumes of a label volume (brain and bone textured from the template); the
    skin ramps from air to skin over ``p.face.edge_mm`` across the zero level of ``sdf``."""
    tv = p.tissues
    head = lab > 0
    lo, hi = np.percentile(t1[head & (t1 > 0)], [2, 98])
    rel = np.clip((t1 - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    hu = np.zeros(lab.shape, np.float32)
    for name, value in tv.hu:
        hu[lab == L[name]] = value
    soft = np.isin(lab, [L["skin"], L["fat"], L["muscle"], L["ear"]])
    hu[soft] += (rel[soft] - 0.5) * 2 * tv.texture_hu
    brain, bone = lab == L["brain"], lab == L["bone"]
    # white matter is bright in T1 but darker than grey matter in CT: invert within the brain
    hu[brain] = tv.brain_hu[1] - rel[brain] * (tv.brain_hu[1] - tv.brain_hu[0])
    hu[bone] = tv.bone_hu[1] - rel[bone] * (tv.bone_hu[1] - tv.bone_hu[0])
    wm = float(np.percentile(t1[brain], 90)) if brain.any() else 1.0
    t1w = np.zeros(lab.shape, np.float32)
    for name, value in tv.t1:
        t1w[lab == L[name]] = value
    t1w[brain] = np.clip(t1[brain] / wm, 0.2, 1.0)
    t1w[soft] *= 0.9 + 0.2 * rel[soft]
    # a CT point-spread function / MR partial volume: smooth the tissue steps a little
    hu, t1w = ndimage.gaussian_filter(hu, 0.6), ndimage.gaussian_filter(t1w, 0.6)
    edge = np.abs(sdf) < p.face.edge_mm  # the skin itself: a smooth surface at sub-voxel level
    ramp = face_tissue.skin_ramp(sdf[edge], p.face.edge_mm)
    for image, table in ((hu, dict(tv.hu)), (t1w, dict(tv.t1))):
        image[edge] = table["air"] + (table["skin"] - table["air"]) * ramp
    return hu.astype(np.float32), t1w.astype(np.float32)


def _face_points(head: np.ndarray, grid: shapes.Grid, lm: Landmarks) -> tuple[np.ndarray, np.ndarray]:
    """Anterior first-hit skin points (mm) of the face and points of the whole head surface."""
    surface = head & ~ndimage.binary_erosion(head)
    mm = np.argwhere(surface) * grid.step + np.asarray(grid.origin)
    j_front = np.where(head.any(axis=1), head.shape[1] - 1 - np.argmax(head[:, ::-1, :], axis=1), -1)
    ii, kk = np.nonzero(j_front >= 0)
    fmm = np.stack([ii, j_front[ii, kk], kk], axis=1) * grid.step + np.asarray(grid.origin)
    face = fmm[(np.abs(fmm[:, 0]) < 45) & (fmm[:, 1] > np.percentile(fmm[:, 1], 60))
               & (fmm[:, 2] < lm.nasion[2] + 25.0) & (fmm[:, 2] > lm.chin[2] - 5.0)]
    return face, mm[mm[:, 2] > lm.chin[2] - 10.0]


def anatomy_key(p: AnatomyParams) -> str:
    """Content key of the anatomy's params and this module's format version."""
    blob = json.dumps({"v": FORMAT_VERSION, **asdict(p)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _cache_file(p: AnatomyParams) -> Path:
    """Where the built anatomy is kept: ``$DEFACEBENCH_DATA`` or ``~/.cache/defacebench``."""
    base = os.environ.get("DEFACEBENCH_DATA")
    root = Path(base) if base else Path.home() / ".cache" / "defacebench"
    return root / f"phantom-{anatomy_key(p)}.npz"


def base_grid(p: AnatomyParams) -> shapes.Grid:
    """The base grid of ``p`` (template frame mm)."""
    n = np.round((np.asarray(p.grid_hi) - np.asarray(p.grid_lo)) / p.base_mm).astype(int) + 1
    return shapes.Grid(tuple(int(v) for v in n), p.base_mm, tuple(p.grid_lo))  # type: ignore[arg-type]


def effective_params(p: AnatomyParams) -> AnatomyParams:
    """``p`` with its landmarks where the lower-face stretch (FaceParams.stretch) puts them."""
    return replace(p, landmarks=face_tissue.stretched_landmarks(p.landmarks, p.face))


def _build(p: AnatomyParams) -> BaseAnatomy:
    """Build the anatomy from the template (~10-20 s on one core)."""
    grid = base_grid(p)
    t1 = face_tissue.stretch_volume(t1_on_grid(grid), grid, p.face)
    p = effective_params(p)
    lab, thead, teeth, sdf = _labels(t1, grid, p)
    hu, t1w = _values(lab, t1, sdf, p)
    face, surf = _face_points(thead, grid, p.landmarks)
    return BaseAnatomy(grid=grid, labels=lab, hu=hu, t1=t1w, face_points=face, surface_points=surf, teeth=teeth)


def _save(base: BaseAnatomy, path: Path) -> None:
    """Write the anatomy atomically (a concurrent reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".phantom-", suffix=".npz", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache is meant to be shared like the sample
    try:
        np.savez(tmp, labels=base.labels, hu=base.hu, t1=base.t1, face_points=base.face_points,
                 surface_points=base.surface_points, teeth=base.teeth)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@functools.lru_cache(maxsize=2)
def base_anatomy(p: AnatomyParams = AnatomyParams()) -> BaseAnatomy:
    """The phantom on its base grid: built once, then read from the disk cache (< 1 s)."""
    path, grid = _cache_file(p), base_grid(p)
    try:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        if arrays["labels"].shape == grid.shape:
            return BaseAnatomy(grid=grid, **arrays)
    except (OSError, KeyError, ValueError):  # absent or unreadable: rebuild it
        pass
    base = _build(p)
    try:
        _save(base, path)
    except OSError:  # a read-only cache folder costs a rebuild next time, nothing else
        pass
    return base


def head_ct(voxel_mm: float = 2.0, p: AnatomyParams | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The phantom's head (down to 30 mm below the chin) in HU on an isotropic ``voxel_mm`` grid,
    and its RAS affine: one identity, no scanner, no noise (for renderer and detector tests).

    ``p`` None: the template's own face (:meth:`FaceParams.template`, the sample's face up to format
    4), on which the renderer, detector and recognizer tests' figures were measured."""
    p = p if p is not None else AnatomyParams(face=face_tissue.FaceParams.template())
    base = base_anatomy(p)
    k0 = int(np.clip((effective_params(p).landmarks.chin[2] - 30.0 - base.grid.origin[2]) / base.grid.step, 0, base.grid.shape[2] - 1))
    hu = ndimage.zoom(base.hu[:, :, k0:], base.grid.step / voxel_mm, order=1, prefilter=False)
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    affine[:3, 3] = np.asarray(base.grid.origin) + (0.0, 0.0, k0 * base.grid.step)
    return hu.astype(np.float32), affine
