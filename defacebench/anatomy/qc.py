"""Automatic defacing QC: count what the seed study sifted out by hand.

Per subject and defacer, from the original and the defaced volume (both canonical RAS, one grid):

- ``head_removed_fraction``: changed head voxels / head voxels (head = :func:`head_mask` of the
  original: the HU rule for CT, the intensity rule for MRI, by ``Volume.modality``). A voxel is *changed* when ``|defaced - original| > change_tol_hu``; removal, zero fill,
  air fill and refacing all count.
- ``face_removed_fraction``: changed voxels of the face region / face-region voxels.
- ``brain_voxels_changed``: changed voxels inside the original's brain mask (``brain_mask``), and
  ``brain_changed_fraction`` = that / brain voxels.
- ``brain_dice``: Dice of the original's brain mask and the part of it the defacer left unchanged,
  ``2 |B - C| / (|B| + |B - C|)`` (B the brain mask, C the changed voxels); 1.0 when no brain
  voxel changed. It is ``brain_changed_fraction`` on the Dice scale, kept because reports and
  verdicts quote a brain Dice.

Why the brain is judged on the original's mask and not re-segmented on the defaced volume (QC
version 3): the brain masks are intensity rules whose references come from the whole head (the
MRI rule's white-matter level is a percentile of the voxels deep under the skin, its head mask an
Otsu threshold of the whole volume). Removing the face moves those references, so a mask recomputed
on the defaced volume moves although no brain voxel changed: on the 16-subject MRI sample QC
version 2 gave quickshear a median brain Dice of 0.67 (0.0 on one subject) and caideface_ants 0.77
with not one voxel of the original's brain mask changed by either (docs/metrics.md, "MRI brain
mask"). What the defacer did to the brain is what changed inside the original's brain mask.

Cost (issue #15): the original's masks depend on the original only, so :func:`original_anatomy`
computes them once per acquisition (the run caches them; every defacer's QC reuses them), and the
defaced volume is judged from what changed, ``|defaced - original|``: one subtraction and voxel
counts, no segmentation of the defaced volume. Masks are computed on a grid of
about ``grid_mm`` (CT; block means, :mod:`defacebench.anatomy.grid`) and repeated back to the
volume's grid; 0 keeps the volume's own grid. MRI keeps its own grid (``mri_grid_mm = 0``): its
dark skull is one or two voxels thick, and at 4-5 mm the T1 rules merge scalp and brain (brain
Dice against the fine mask 0.58-0.66 on the MRI sample, against 0.97+ at a 3 mm grid).

The face region (:func:`face_region`) is an anatomical box anchored on the CT brain mask, cheap and
template-free: head voxels anterior to the most anterior brain voxel (world y), below the
brain's centroid height (about the eyebrows) and above ``chin_below_brain_mm`` under the brain's
bottom, within ``half_width_fraction`` of the brain's half width left and right. It covers eyes, nose,
mouth and chin, where pydeface's face mask lies, without a registration per subject.
:func:`registered_face_region` gives pydeface's own definition (its face mask registered to the
subject) at the cost of one registration; pass it to :func:`assess` as ``face_region``.

Labels, first match wins (thresholds are :class:`QCParams` fields):

1. ``failed``: the defacer produced no volume.
2. ``head_removed``: ``head_removed_fraction > head_removed_min`` (default 0.5: most of the head gone).
3. ``brain_damaged``: ``brain_changed_fraction > brain_changed_max`` (0.01) or ``brain_dice <
   brain_dice_min`` (0.9; with brain Dice as defined above this one binds only when
   ``brain_changed_max`` is raised above about 0.18).
4. ``face_intact``: ``face_removed_fraction < face_removed_min`` (0.3: most of the face still there).
5. ``ok``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from defacebench.anatomy.brainmask import BrainMaskParams, dice
from defacebench.anatomy.grid import coarsen, grid_factors, refine
from defacebench.anatomy.masks import brain_mask, head_and_brain_masks, head_mask
from defacebench.contracts import Volume

LABELS = ("ok", "face_intact", "brain_damaged", "head_removed", "failed")
QC_VERSION = 3  # part of the QC cache keys: bump when a figure's definition changes (2: QC grid, #15;
# 3: brain Dice from the original's brain mask, no re-segmentation of the defaced volume)


@dataclass(frozen=True)
class QCParams:
    """Thresholds of the QC labels and of the anatomical face region (see the module docstring)."""

    change_tol_hu: float = 0.5
    head_removed_min: float = 0.5
    brain_changed_max: float = 0.01
    brain_dice_min: float = 0.9
    face_removed_min: float = 0.3
    chin_below_brain_mm: float = 40.0
    half_width_fraction: float = 0.8
    grid_mm: float = 4.0
    mri_grid_mm: float = 0.0
    brain: BrainMaskParams = BrainMaskParams()


@dataclass(frozen=True)
class QCResult:
    """QC figures and label of one defaced volume (NaN figures when the defacing failed)."""

    label: str
    head_removed_fraction: float
    face_removed_fraction: float
    brain_voxels_changed: int
    brain_changed_fraction: float
    brain_dice: float
    head_voxels: int
    face_voxels: int
    brain_voxels: int

    def to_dict(self) -> dict:
        """JSON-able dict of every field."""
        return asdict(self)


@dataclass(frozen=True)
class Anatomy:
    """The original's QC masks on its own grid (head, brain, face region; computed on the QC grid
    of ``factors`` voxels per axis and repeated back).

    Computed once per acquisition by :func:`original_anatomy`; every defacer's QC reuses it."""

    head: np.ndarray
    brain: np.ndarray
    face: np.ndarray
    factors: tuple[int, int, int]

    def save(self, path) -> None:
        """Write the masks to ``path`` (.npz; bit-packed, so a 2 mm head is a few kB)."""
        arrays = {k: np.packbits(getattr(self, k), axis=None) for k in ("head", "brain", "face")}
        shapes = {f"{k}_shape": np.asarray(getattr(self, k).shape) for k in arrays}
        with open(path, "wb") as fh:
            np.savez_compressed(fh, factors=np.asarray(self.factors), **arrays, **shapes)

    @classmethod
    def load(cls, path) -> "Anatomy":
        """Read masks written by :meth:`save`."""
        with np.load(path) as z:
            def mask(k: str) -> np.ndarray:
                shape = tuple(int(n) for n in z[f"{k}_shape"])
                return np.unpackbits(z[k], count=int(np.prod(shape))).reshape(shape).astype(bool)

            return cls(mask("head"), mask("brain"), mask("face"), tuple(int(f) for f in z["factors"]))  # type: ignore[arg-type]


def original_anatomy(original: Volume, params: QCParams = QCParams()) -> Anatomy:
    """The QC masks of ``original``, computed on the QC grid (``params.grid_mm``) and repeated back."""
    factors = grid_factors(original.zooms, params.mri_grid_mm if original.modality == "mri" else params.grid_mm)
    coarse = coarsen(original, factors)
    head, brain = head_and_brain_masks(coarse, params.brain)
    face = _face_box(coarse, head, brain, params)
    shape = np.shape(original.data)
    return Anatomy(refine(head, factors, shape), refine(brain, factors, shape), refine(face, factors, shape),
                   factors)


def face_region(original: Volume, params: QCParams = QCParams()) -> np.ndarray:
    """Boolean face region of a canonical-RAS head CT (anatomical box; see the module docstring),
    on the volume's own grid."""
    return _face_box(original, head_mask(original, params.brain), brain_mask(original, params.brain), params)


def _face_box(volume: Volume, head: np.ndarray, brain: np.ndarray, params: QCParams) -> np.ndarray:
    """The face region of ``volume`` from its head and brain masks (same grid)."""
    if not brain.any():
        return np.zeros(head.shape, bool)
    world = _world_coords(volume)
    bx, by, bz = (w[brain] for w in world)
    x, y, z = world
    half_width = (np.percentile(bx, 98) - np.percentile(bx, 2)) / 2.0
    region = (
        (y > by.max())
        & (z < bz.mean())
        & (z > np.percentile(bz, 2) - params.chin_below_brain_mm)
        & (np.abs(x - bx.mean()) < params.half_width_fraction * half_width)
    )
    return head & region & ~brain


def registered_face_region(volume_path, workdir, *, params: QCParams = QCParams(), registration=None) -> np.ndarray:
    """The face region as pydeface defines it: its face mask registered to the subject (antspyx,
    :func:`defacebench.anatomy.registration.keep_mask_for`), limited to head voxels, canonical RAS.

    A costlier alternative to :func:`face_region` (one affine registration, a few seconds); pass the
    result to :func:`assess` as ``face_region``. ``registration`` is a RegistrationParams (None = default).
    """
    import nibabel as nib

    from defacebench.anatomy.registration import RegistrationParams, keep_mask_for

    keep, _, _ = keep_mask_for(volume_path, workdir, params=registration or RegistrationParams())
    img = nib.load(str(volume_path))
    face = nib.as_closest_canonical(nib.Nifti1Image((keep == 0).astype(np.uint8), img.affine))
    can = nib.as_closest_canonical(img)
    from defacebench.data.volume import modality_tag

    modality = modality_tag(img) or "ct"
    head = head_mask(Volume(np.asarray(can.dataobj, np.float32), can.affine, modality), params.brain)
    return head & (np.asarray(face.dataobj) > 0)


def _world_coords(volume: Volume) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World (RAS mm) x, y, z of every voxel centre, each an array of the volume's shape."""
    shape = np.shape(volume.data)
    ijk = np.indices(shape, dtype=np.float32).reshape(3, -1)
    xyz = np.asarray(volume.affine[:3, :3], np.float32) @ ijk + np.asarray(volume.affine[:3, 3:], np.float32)
    return tuple(c.reshape(shape) for c in xyz)  # type: ignore[return-value]


def assess(
    original: Volume, defaced: Volume | None, *, params: QCParams = QCParams(),
    face_region: np.ndarray | None = None, anatomy: Anatomy | None = None,
) -> QCResult:
    """QC of one defacing; ``defaced=None`` (the defacer failed) gives the label ``failed``.

    ``anatomy``: the original's masks from :func:`original_anatomy` (computed here when None)."""
    anatomy = original_anatomy(original, params) if anatomy is None else anatomy
    head, brain = anatomy.head, anatomy.brain
    face = _face(original, anatomy, face_region)
    if defaced is None:
        nan = float("nan")
        return QCResult("failed", nan, nan, -1, nan, nan, int(head.sum()), int(face.sum()), int(brain.sum()))
    if np.shape(defaced.data) != np.shape(original.data):
        raise ValueError(
            f"qc: defaced shape {np.shape(defaced.data)} differs from the original {np.shape(original.data)}"
        )
    changed = np.abs(np.asarray(defaced.data, np.float32) - np.asarray(original.data, np.float32)) > params.change_tol_hu
    result = QCResult(
        label="",
        head_removed_fraction=_fraction(changed, head),
        face_removed_fraction=_fraction(changed, face),
        brain_voxels_changed=int((changed & brain).sum()),
        brain_changed_fraction=_fraction(changed, brain),
        brain_dice=_brain_dice(brain, changed),
        head_voxels=int(head.sum()), face_voxels=int(face.sum()), brain_voxels=int(brain.sum()),
    )
    return QCResult(**{**asdict(result), "label": label(result, params)})


def _brain_dice(brain: np.ndarray, changed: np.ndarray) -> float:
    """Dice of the original's brain mask and its unchanged part (1.0 when no brain voxel changed);
    see the module docstring for why the defaced volume is not segmented again."""
    return dice(brain, brain & ~changed)


def _face(original: Volume, anatomy: Anatomy, given: np.ndarray | None) -> np.ndarray:
    """The face region given by the caller, or the anatomical one."""
    if given is None:
        return anatomy.face
    if np.shape(given) != np.shape(original.data):
        raise ValueError(f"qc: face_region shape {np.shape(given)} differs from the volume {np.shape(original.data)}")
    return np.asarray(given, bool)


def _fraction(changed: np.ndarray, region: np.ndarray) -> float:
    """Fraction of ``region`` voxels that changed (NaN for an empty region)."""
    n = int(region.sum())
    return float("nan") if n == 0 else int((changed & region).sum()) / n


def label(result: QCResult, params: QCParams = QCParams()) -> str:
    """The QC label of measured figures (first matching rule of the module docstring)."""
    if result.head_removed_fraction > params.head_removed_min:
        return "head_removed"
    if result.brain_changed_fraction > params.brain_changed_max or result.brain_dice < params.brain_dice_min:
        return "brain_damaged"
    if not result.face_removed_fraction >= params.face_removed_min:  # NaN (no face found) -> intact
        return "face_intact"
    return "ok"


def label_counts(results: list[QCResult]) -> dict[str, int]:
    """Number of results per label, every label present (0 when unused), in :data:`LABELS` order."""
    return {name: sum(r.label == name for r in results) for name in LABELS}


def summarize(results: list[QCResult]) -> dict:
    """Per-defacer QC summary for metrics.json / the leaderboard: label counts, failure rate and the
    median anatomy figures over the subjects that produced a volume (NaN when none did)."""
    done = [r for r in results if r.label != "failed"]

    def median(field: str) -> float:
        values = [getattr(r, field) for r in done if not np.isnan(getattr(r, field))]
        return float(np.median(values)) if values else float("nan")

    n = len(results)
    return {
        "n": n,
        "labels": label_counts(results),
        "failure_rate": (n - len(done)) / n if n else float("nan"),
        "ok_rate": sum(r.label == "ok" for r in results) / n if n else float("nan"),
        "median_head_removed_fraction": median("head_removed_fraction"),
        "median_face_removed_fraction": median("face_removed_fraction"),
        "median_brain_changed_fraction": median("brain_changed_fraction"),
        "median_brain_dice": median("brain_dice"),
        "min_brain_dice": min((r.brain_dice for r in done), default=float("nan")),
    }
