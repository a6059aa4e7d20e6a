"""The MTCNN cascade (Zhang et al. 2016) around the three ONNX networks of :mod:`mtcnn_nets`, step for
step as the ``mtcnn`` 1.0.0 package runs it (``mtcnn/stages``, ``utils/bboxes.py``, ``utils/images.py``),
so that the port finds what the package finds (``scripts/mtcnn_reference.py``, docs/models.md).

1. P-Net over an image pyramid: ``round(log(short side / 12) / log(1 / scale_factor) - 1)`` levels
   from scale ``12 / min_face_px`` on, each resized by area averaging to ``floor(side x scale)`` (as
   ``tf.image.resize(..., AREA)`` truncates). A cell whose face probability passes the first threshold
   is the box (2x + 1, 2y + 1, 2x + 12, 2y + 12) of its level, moved by its regression times 11 and
   divided by the level's scale; NMS (IoU 0.5) per level, then (0.7) across levels; squared.
2. R-Net on 24 x 24 bilinear crops of the survivors (``tf.image.crop_and_resize`` with the corners
   given as fractions of the image size, zero outside the image); boxes moved by the regression times
   (side + 1); kept above the second threshold; NMS 0.7; squared.
3. O-Net on 48 x 48 crops: five landmarks (side + 1) x offset + corner - 1, boxes moved as in 2, kept
   above the third threshold, NMS by intersection over the smaller box (0.7), clipped to the pixel
   grid (0 .. width - 1, 0 .. height - 1).

Every NMS is the package's: a box is dropped when any higher-scored box, kept or not, overlaps it
beyond the threshold. One deliberate difference: the package's level count does not depend on
``min_face_px``, so with ``min_face_px`` > 20 its last levels are smaller than P-Net's input and
TensorFlow's error is reported as "no face"; here a level on which P-Net has no output is skipped.
Below ``min_face_px`` = 12 the first levels are enlarged, where OpenCV's area interpolation (bilinear
when enlarging) is not TensorFlow's; the comparison covers 20 and 40 px.
Images are normalised to ``(x - 127.5) / 128``; boxes are continuous pixels ``(x0, y0, x1, y1)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from recognizers._backends import mtcnn_nets
from recognizers._backends.onnx_graph import session

CELL, STRIDE = 12, 2  # P-Net's receptive field and output stride, in pyramid pixels


@dataclass(frozen=True)
class Detections:
    """Faces found in one image: ``boxes`` (n, 4), ``scores`` (n,), ``landmarks`` (n, 5, 2)."""

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray


@lru_cache(maxsize=None)
def _sessions(threads: int) -> dict:
    """The three onnxruntime sessions (built once per process and thread count)."""
    return {net: session(mtcnn_nets.BUILDERS[net](), threads) for net in mtcnn_nets.NETS}


def detect(rgb: np.ndarray, min_face_px: float, scale_factor: float,
           thresholds: tuple[float, float, float], threads: int = 1) -> Detections:
    """Run the cascade on an (H, W, 3) uint8 RGB image; faces sorted by score, highest first."""
    nets = _sessions(int(threads))
    image = (np.asarray(rgb, dtype=np.float32) - 127.5) / 128.0
    boxes = _proposals(nets["pnet"], image, min_face_px, scale_factor, thresholds[0])
    if len(boxes):
        boxes = _refine_rnet(nets["rnet"], image, boxes, thresholds[1])
    if not len(boxes):
        return Detections(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2)))
    return _refine_onet(nets["onet"], image, boxes, thresholds[2])


def pyramid_scales(height: int, width: int, min_face_px: float, scale_factor: float) -> list[float]:
    """The package's pyramid: ``12 / min_face_px`` times ``scale_factor ** k``, k < its level count
    (which depends on the short side only)."""
    count = round(-(np.log(min(height, width) / CELL) / np.log(scale_factor) + 1))
    return [CELL / float(min_face_px) * scale_factor ** k for k in range(max(int(count), 0))]


def pnet_cells(side: int) -> int:
    """P-Net's output length for an input side (conv 3, pool 2 padded at the end, conv 3, conv 3)."""
    return -(-(side - 2) // 2) - 4


def _proposals(pnet, image: np.ndarray, min_face_px: float, scale_factor: float, threshold: float) -> np.ndarray:
    """Stage 1: P-Net over the pyramid; (n, 5) rows (x0, y0, x1, y1, score), squared."""
    import cv2

    h, w = image.shape[:2]
    found = []
    for scale in pyramid_scales(h, w, min_face_px, scale_factor):
        size = (int(w * scale), int(h * scale))  # truncated, as TensorFlow casts the float size
        if min(pnet_cells(size[0]), pnet_cells(size[1])) < 1:
            continue  # the package fails here (see the module docstring)
        level = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        reg, prob = pnet.run(None, {"input": level.transpose(2, 0, 1)[None]})
        ys, xs = np.nonzero(prob[0, 1] > threshold)
        if not len(ys):
            continue
        cells = np.stack([xs * STRIDE + 1, ys * STRIDE + 1, xs * STRIDE + CELL, ys * STRIDE + CELL], axis=1)
        rows = np.column_stack([(cells + reg[0][:, ys, xs].T * (CELL - 1)) / scale, prob[0, 1, ys, xs]])
        rows = rows[rank(rows[:, 4])]
        found.append(rows[nms(rows[:, :4], rows[:, 4], 0.5, ranked=True)])
    if not found:
        return np.zeros((0, 5))
    rows = np.concatenate(found)
    return square(rows[nms(rows[:, :4], rows[:, 4], 0.7)])


def _refine_rnet(rnet, image: np.ndarray, boxes: np.ndarray, threshold: float) -> np.ndarray:
    """Stage 2: R-Net on 24 x 24 crops; kept boxes refined, NMS, squared."""
    reg, prob = rnet.run(None, {"input": crops(image, boxes[:, :4], 24)})
    keep = prob[:, 1] > threshold
    rows = np.column_stack([regress(boxes[keep, :4], reg[keep]), prob[keep, 1]])
    return square(rows[nms(rows[:, :4], rows[:, 4], 0.7)]) if len(rows) else rows


def _refine_onet(onet, image: np.ndarray, boxes: np.ndarray, threshold: float) -> Detections:
    """Stage 3: O-Net on 48 x 48 crops; final boxes, scores and five landmarks."""
    reg, marks, prob = onet.run(None, {"input": crops(image, boxes[:, :4], 48)})
    keep = prob[:, 1] > threshold
    base, marks, score = boxes[keep, :4], marks[keep], prob[keep, 1].astype(float)
    size = np.stack([base[:, 2] - base[:, 0] + 1, base[:, 3] - base[:, 1] + 1], axis=1)
    points = np.stack([size[:, None, 0] * marks[:, :5] + base[:, None, 0] - 1,
                       size[:, None, 1] * marks[:, 5:] + base[:, None, 1] - 1], axis=2)
    final = regress(base, reg[keep])
    order = nms(final, score, 0.7, over_min=True)
    h, w = image.shape[:2]
    final = np.clip(final[order], 0, [w - 1, h - 1, w - 1, h - 1])
    return Detections(final, score[order], points[order].astype(float))


# ------------------------------------------------------------------------------------------------
# Box arithmetic
# ------------------------------------------------------------------------------------------------


def regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Move each edge of ``boxes`` by its offset times the box's width + 1 (x) or height + 1 (y)."""
    wh = np.stack([boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1], axis=1)
    return boxes + offsets * np.tile(wh, 2)


def square(rows: np.ndarray) -> np.ndarray:
    """Rows (x0, y0, x1, y1, ...) made square around their centre (side = the longer side)."""
    out = rows.copy()
    side = np.maximum(rows[:, 2] - rows[:, 0], rows[:, 3] - rows[:, 1])
    cx, cy = (rows[:, 0] + rows[:, 2]) / 2, (rows[:, 1] + rows[:, 3]) / 2
    out[:, 0], out[:, 1], out[:, 2], out[:, 3] = cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2
    return out


def rank(scores: np.ndarray) -> np.ndarray:
    """Indices from the highest score down, ordered as the package orders them
    (``np.argsort(scores)[::-1]``: equal scores, e.g. saturated probabilities of 1.0, keep numpy's order,
    which decides which of them survives NMS)."""
    return np.argsort(np.asarray(scores))[::-1]


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, over_min: bool = False,
        ranked: bool = False) -> np.ndarray:
    """Indices kept, highest score first: a box is dropped when any higher-ranked box (kept or not)
    overlaps it by more than ``threshold``; overlap is intersection over union, or over the smaller
    box when ``over_min`` (the package's rule, stricter than greedy NMS). ``ranked``: the rows are
    already in rank order (the package does not sort again there)."""
    order = np.arange(len(scores)) if ranked else rank(scores)
    b = np.asarray(boxes, float)[order]
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    iw = np.clip(np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    denom = np.minimum(area[:, None], area[None, :]) if over_min else area[:, None] + area[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        overlap = np.triu(inter / denom > threshold, k=1)  # [i, j]: i ranks above j and overlaps it
    return order[~overlap.any(axis=0)].astype(int)


def crops(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """(n, 3, size, size) float32 bilinear crops of ``boxes``, as the package calls
    ``tf.image.crop_and_resize``: corners given as fractions of the image size (x / W, y / H), which
    TensorFlow samples on the (W - 1, H - 1) grid, corners included; rows and columns outside the
    image are 0 (the normalised mid-grey)."""
    h, w = image.shape[:2]
    n = len(boxes)
    if not n:
        return np.zeros((0, 3, size, size), np.float32)
    steps = np.arange(size) / (size - 1)
    ys = _samples(boxes[:, 1], boxes[:, 3], h, steps)
    xs = _samples(boxes[:, 0], boxes[:, 2], w, steps)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.clip(y0 + 1, 0, h - 1), np.clip(x0 + 1, 0, w - 1)
    y0, x0 = np.clip(y0, 0, h - 1), np.clip(x0, 0, w - 1)
    fy, fx = (ys - np.floor(ys))[:, :, None, None], (xs - np.floor(xs))[:, None, :, None]

    def pick(yy, xx):
        return image[yy[:, :, None], xx[:, None, :]]

    top = pick(y0, x0) + (pick(y0, x1) - pick(y0, x0)) * fx
    bottom = pick(y1, x0) + (pick(y1, x1) - pick(y1, x0)) * fx
    out = top + (bottom - top) * fy
    inside = ((ys >= 0) & (ys <= h - 1))[:, :, None] & ((xs >= 0) & (xs <= w - 1))[:, None, :]
    out = np.where(inside[..., None], out, 0.0)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2), dtype=np.float32)


def _samples(low: np.ndarray, high: np.ndarray, length: int, steps: np.ndarray) -> np.ndarray:
    """(n, size) sample coordinates from ``low`` to ``high`` (pixels) as crop_and_resize places them."""
    a, b = low / length * (length - 1), high / length * (length - 1)
    return a[:, None] + steps[None, :] * (b - a)[:, None]
