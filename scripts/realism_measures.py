"""Shape and QC measures of one head volume for the realism report (scripts/realism_report.py).

- :func:`skin_profile`: the mid-sagittal skin profile (brow ridge, nasion depth, nose projection and
  length, lips, chin) in mm, from the head mask's anterior front (the nose tip and nasion of
  :func:`defacebench.anatomy.landmarks.profile_landmarks`, the other points found along the profile);
- :func:`soft_tissue`: the soft-tissue thickness (skin to bone) over the forehead, cheeks and chin
  along the anterior axis;
- :func:`defacer_qc`: a defacer's QC figures (face-removed fraction, brain Dice) with the pipeline's
  cleanup, as tests/test_real_head.py computes them.

Everything works in the volume's canonical RAS voxels (anterior = +j, superior = +k) as
:func:`defacebench.data.volume.load_volume` gives them; distances are in mm, measured along the
scanner's axes (so a flexed head shows a more negative facial angle, which is reported too).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from defacebench.anatomy.landmarks import LandmarkError, anterior_front, profile_landmarks
from defacebench.anatomy.masks import head_mask
from defacebench.contracts import Volume

CT_BONE_HU = 300.0  # cortical and cancellous bone; soft tissue stays below ~100 HU
MRI_DARK = 0.25  # T1: cortical bone (and the air of the sinuses) is darker than this x the head's 90th percentile
PROFILE_KEYS = ("nasion_depth_mm", "brow_ridge_mm", "nose_projection_mm", "nose_length_mm", "upper_lip_mm",
                "lower_lip_mm", "mouth_crease_mm", "chin_mm", "chin_vs_brow_mm", "facial_angle_deg")
THICKNESS_KEYS = ("forehead_mm", "cheek_right_mm", "cheek_left_mm", "chin_mm")


def _profile(volume: Volume, head: np.ndarray) -> tuple[np.ndarray, int, int, int]:
    """(anterior y in mm for each level k, NaN where no head; i of the midline; k of tip; k of nasion)."""
    marks = profile_landmarks(volume, head=head)
    inv = np.linalg.inv(volume.affine)
    i_tip, _, k_tip = np.round(inv[:3, :3] @ np.asarray(marks.nose_tip) + inv[:3, 3]).astype(int)
    k_nasion = int(round((inv[:3, :3] @ np.asarray(marks.nasion) + inv[:3, 3])[2]))
    front = anterior_front(head)
    half = max(1, int(round(5.0 / volume.zooms[0])))
    prof = front[max(0, i_tip - half):i_tip + half + 1].max(axis=0).astype(float)
    prof[prof < 0] = np.nan
    return prof * volume.zooms[1], int(i_tip), int(k_tip), k_nasion


def _extreme(prof: np.ndarray, k0: int, k1: int, most: bool) -> int:
    """Level of the most (``most``) or least anterior profile point between levels k0 and k1."""
    lo, hi = sorted((max(0, k0), min(len(prof) - 1, k1)))
    seg = prof[lo:hi + 1]
    if np.all(np.isnan(seg)):
        raise LandmarkError("the profile has no skin in its search window")
    return lo + int(np.nanargmax(seg) if most else np.nanargmin(seg))


WINDOWS = {  # mm below the nose tip where each point is looked for (adult anthropometry), most anterior?
    "subnasale": (6, 22, False), "upper_lip": (16, 32, True), "stomion": (26, 40, False),
    "lower_lip": (32, 48, True), "sulcus": (42, 58, False), "pogonion": (52, 75, True)}


def profile_points(volume: Volume, head: np.ndarray) -> tuple[np.ndarray, int, dict[str, int]]:
    """(profile y in mm per level, midline i, level k of each point): glabella (most anterior within
    30 mm above the nasion), nasion and nose tip (profile_landmarks), forehead (30 mm above the
    glabella), and the points of ``WINDOWS`` (each in its own window below the tip, so one flat
    feature does not shift the others). Raises LandmarkError when there is no profile."""
    y, i_tip, k_tip, k_n = _profile(volume, head)
    mm = volume.zooms[2]
    lv = lambda d: int(round(d / mm))  # noqa: E731 - mm to levels
    k = {"tip": k_tip, "nasion": k_n, "glabella": _extreme(y, k_n + 1, k_n + lv(30), True)}
    k["forehead"] = min(len(y) - 1, k["glabella"] + lv(30))
    for name, (near, far, most) in WINDOWS.items():
        k[name] = _extreme(y, k_tip - lv(far), k_tip - lv(near), most)
    return y, i_tip, k


def skin_profile(volume: Volume, head: np.ndarray | None = None) -> dict[str, float]:
    """The mid-sagittal profile's measures (mm, ``PROFILE_KEYS``; :func:`profile_points`), NaN
    for each when there is no profile. Projections are forward distances."""
    head = head_mask(volume) if head is None else head
    try:
        y, _, k = profile_points(volume, head)
    except LandmarkError:
        return {key: math.nan for key in PROFILE_KEYS}
    mm = volume.zooms[2]
    p = {name: float(y[level]) for name, level in k.items()}
    return {
        "nasion_depth_mm": p["glabella"] - p["nasion"],
        "brow_ridge_mm": p["glabella"] - p["forehead"],
        "nose_projection_mm": p["tip"] - p["subnasale"],
        "nose_length_mm": float(math.hypot(p["tip"] - p["nasion"], (k["nasion"] - k["tip"]) * mm)),
        "upper_lip_mm": p["upper_lip"] - p["subnasale"],
        "lower_lip_mm": p["lower_lip"] - p["subnasale"],
        "mouth_crease_mm": min(p["upper_lip"], p["lower_lip"]) - p["stomion"],
        "chin_mm": p["pogonion"] - p["sulcus"],
        "chin_vs_brow_mm": p["pogonion"] - p["glabella"],
        "facial_angle_deg": float(math.degrees(math.atan2(p["pogonion"] - p["glabella"],
                                                          (k["glabella"] - k["pogonion"]) * mm))),
    }


def _bone(volume: Volume, head: np.ndarray) -> np.ndarray:
    """Bone-like voxels: HU >= CT_BONE_HU on CT; on T1 the dark voxels inside the head."""
    data = np.asarray(volume.data, np.float32)
    if volume.modality != "mri":
        return data >= CT_BONE_HU
    return head & (data < MRI_DARK * float(np.percentile(data[head], 90)))


def _depth_to_bone(head: np.ndarray, bone: np.ndarray, i: int, k: int, step: float, run: int = 2) -> float:
    """mm from the front of column (i, k) inward to the first of ``run`` consecutive bone voxels."""
    if not (0 <= i < head.shape[0] and 0 <= k < head.shape[2]) or not head[i, :, k].any():
        return math.nan
    j = head.shape[1] - 1 - int(np.argmax(head[i, ::-1, k]))
    col = bone[i, :j + 1, k][::-1]
    for d in range(len(col) - run + 1):
        if col[d:d + run].all():
            return d * step
    return math.nan


def soft_tissue(volume: Volume, head: np.ndarray | None = None) -> dict[str, float]:
    """Skin-to-bone thickness (mm, ``THICKNESS_KEYS``) along the anterior axis: forehead 25 mm above
    the nasion on the midline; cheeks 35 mm either side at 10 mm above the nose tip; chin on the
    pogonion. NaN where no bone is found along the ray."""
    head = head_mask(volume) if head is None else head
    try:
        _, i_tip, k = profile_points(volume, head)
    except LandmarkError:
        return {key: math.nan for key in THICKNESS_KEYS}
    bone = _bone(volume, head)
    (sx, sy, sz), dx = volume.zooms, lambda d: int(round(d / volume.zooms[0]))  # noqa: E731
    dz = lambda d: int(round(d / sz))  # noqa: E731
    points = {"forehead_mm": (i_tip, k["nasion"] + dz(25)), "cheek_right_mm": (i_tip + dx(35), k["tip"] + dz(10)),
              "cheek_left_mm": (i_tip - dx(35), k["tip"] + dz(10)), "chin_mm": (i_tip, k["pogonion"])}
    return {name: _depth_to_bone(head, bone, i, k, sy) for name, (i, k) in points.items()}


def defacer_qc(plugin, path: Path, original: Volume, anatomy, work: Path) -> dict[str, object]:
    """Run one defacer on ``path`` and return its QC (label, face-removed fraction, brain Dice), or
    the error as the label (a failed defacer is a row, not a crash)."""
    from defacebench.anatomy.cleanup import apply_cleanup
    from defacebench.anatomy.qc import assess
    from defacebench.data.volume import load_volume

    try:
        result = plugin.deface(path, work)
        out = load_volume(result.volume_path, modality=original.modality)
        mask = None
        if result.mask_path is not None:
            import nibabel as nib
            mask = np.asarray(nib.as_closest_canonical(nib.load(str(result.mask_path))).dataobj) != 0
        cleaned = apply_cleanup(original, out, mask=mask, defacer=plugin.name)
        qc = assess(original, cleaned, anatomy=anatomy)
    except Exception as err:  # noqa: BLE001 - any defacer failure becomes a row with its reason
        return {"label": f"failed: {type(err).__name__}: {str(err)[:80]}", "face": math.nan, "dice": math.nan}
    return {"label": qc.label, "face": qc.face_removed_fraction, "dice": qc.brain_dice}
