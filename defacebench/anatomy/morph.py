"""Binary morphology that gives scipy.ndimage's exact results at a fraction of the cost (issue 23).

Why: the HU brain mask (quickshear, QC, caideface_ants) spent ~1 s per 2 mm CT in
``binary_closing`` with an ellipsoid and in three ``binary_fill_holes``. Three exact shortcuts:

- :func:`fill_holes`: background components (``ndimage.label``, the same connectivity) that do not
  touch the array's border, instead of scipy's iterated dilation from the border. Equal to
  ``ndimage.binary_fill_holes(mask, structure)`` voxel for voxel (tests/test_morph.py);
- :func:`box_of`: the work restricted to the mask's bounding box plus the operation's reach. A
  dilation reaches ``r`` voxels and the following erosion ``r`` more, so a closing needs a margin
  of ``2 r + 1`` and an opening ``r + 1``; beyond the margin both results are what they are on the
  whole array (0 for ``border_value=0``);
- :func:`dilate` / :func:`erode` by a symmetric structuring element as a union / intersection of
  shifted 1-D runs (one ``maximum_filter1d`` / ``minimum_filter1d`` per run length along the last
  axis, then one shift per row of the element): the same set as scipy's, several times faster for
  the ellipsoids of :func:`defacebench.anatomy.brainmask.ball`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def box_of(mask: np.ndarray, margin) -> tuple[slice, ...] | None:
    """Slices of ``mask``'s bounding box grown by ``margin`` voxels per axis (clipped to the
    array); None when the mask is empty."""
    margin = np.broadcast_to(np.asarray(margin, int), (mask.ndim,))
    out = []
    for axis in range(mask.ndim):
        present = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        if present.size == 0:
            return None
        out.append(slice(max(int(present[0] - margin[axis]), 0),
                         min(int(present[-1] + 1 + margin[axis]), mask.shape[axis])))
    return tuple(out)


def fill_holes(mask: np.ndarray, structure: np.ndarray | None = None) -> np.ndarray:
    """``ndimage.binary_fill_holes(mask, structure)``: background voxels not connected (by
    ``structure``, default the face-connected cross) to the array's border become foreground.

    A background voxel on a face of the array is connected to the outside only along axes the
    structure reaches (a slice-wise structure with nothing along an axis never seeds from that
    axis's end slices, as scipy's dilation from the border does not)."""
    mask = np.asarray(mask, bool)
    if structure is None:
        structure = ndimage.generate_binary_structure(mask.ndim, 1)
    structure = np.asarray(structure, bool)
    labels, n = ndimage.label(~mask, structure=structure)
    if n == 0:
        return mask.copy()
    open_to_outside = np.zeros(n + 1, bool)
    for axis in range(mask.ndim):
        if structure.take(0, axis=axis).any() or structure.take(-1, axis=axis).any():
            open_to_outside[labels.take(0, axis=axis)] = True
            open_to_outside[labels.take(-1, axis=axis)] = True
    open_to_outside[0] = False  # label 0 is the foreground
    return ~open_to_outside[labels]


def _runs(structure: np.ndarray) -> dict[tuple[int, ...], tuple[int, int]]:
    """Per row of ``structure`` along its last axis (index of the other axes, relative to the
    centre): the run of set elements as (first, last) offset. Raises ValueError if a row is not
    one contiguous run (then the decomposition below would not be exact)."""
    centre = np.array(structure.shape) // 2
    rows = {}
    for index in np.ndindex(*structure.shape[:-1]):
        on = np.flatnonzero(structure[index])
        if on.size == 0:
            continue
        if on[-1] - on[0] + 1 != on.size:
            raise ValueError("structuring element rows must be contiguous runs")
        rows[tuple(int(i - c) for i, c in zip(index, centre[:-1]))] = (int(on[0] - centre[-1]), int(on[-1] - centre[-1]))
    return rows


def _shifted(a: np.ndarray, offset: tuple[int, ...], fill: bool) -> np.ndarray:
    """``a`` moved so that out[v] = a[v + offset] (``fill`` where v + offset leaves the array),
    over the leading axes of ``offset``."""
    out = np.full(a.shape, fill, dtype=a.dtype)
    if any(abs(o) >= n for o, n in zip(offset, a.shape)):
        return out
    src, dst = [], []
    for o, n in zip(offset, a.shape):
        src.append(slice(max(o, 0), n + min(o, 0)))
        dst.append(slice(max(-o, 0), n + min(-o, 0)))
    out[tuple(dst)] = a[tuple(src)]
    return out


def _run_filter(mask: np.ndarray, run: tuple[int, int], grow: bool) -> np.ndarray:
    """Max (``grow``) or min of ``mask`` over offsets run[0]..run[1] along the last axis (0 outside)."""
    lo, hi = run
    size = hi - lo + 1
    # filter1d's window covers [i - size // 2 - origin, ...]; origin shifts it to start at i + lo
    origin = -(size // 2) - lo
    u8 = mask.view(np.uint8)
    fn = ndimage.maximum_filter1d if grow else ndimage.minimum_filter1d
    return fn(u8, size, axis=-1, mode="constant", cval=0, origin=origin).view(bool)


def _morph(mask: np.ndarray, structure: np.ndarray, grow: bool) -> np.ndarray:
    mask = np.ascontiguousarray(mask, bool)
    rows = _runs(np.asarray(structure, bool))
    by_run = {run: _run_filter(mask, run, grow) for run in set(rows.values())}
    out = np.zeros(mask.shape, bool) if grow else np.ones(mask.shape, bool)
    for offset, run in rows.items():
        moved = _shifted(by_run[run], offset, fill=False)
        if grow:
            out |= moved
        else:
            out &= moved
    return out


def dilate(mask: np.ndarray, structure: np.ndarray) -> np.ndarray:
    """``ndimage.binary_dilation(mask, structure)`` for a point-symmetric ``structure`` whose rows
    along the last axis are contiguous runs (an ellipsoid, a box, a cross)."""
    return _morph(mask, structure, grow=True)


def erode(mask: np.ndarray, structure: np.ndarray) -> np.ndarray:
    """``ndimage.binary_erosion(mask, structure, border_value=0)`` for such a ``structure``."""
    return _morph(mask, structure, grow=False)


def closing(mask: np.ndarray, structure: np.ndarray) -> np.ndarray:
    """``ndimage.binary_closing(mask, structure, border_value=0)``, on the mask's box only."""
    reach = np.array(structure.shape) // 2
    box = box_of(mask, 2 * reach + 1)
    out = np.zeros(mask.shape, bool)
    if box is not None:
        out[box] = erode(dilate(mask[box], structure), structure)
    return out


def opening(mask: np.ndarray, structure: np.ndarray) -> np.ndarray:
    """``ndimage.binary_opening(mask, structure)``, on the mask's box only."""
    reach = np.array(structure.shape) // 2
    box = box_of(mask, reach + 1)
    out = np.zeros(mask.shape, bool)
    if box is not None:
        out[box] = dilate(erode(mask[box], structure), structure)
    return out
