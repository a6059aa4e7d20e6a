"""The MTCNN cascade (Zhang et al. 2016) around the three ONNX networks of :mod:`mtcnn_nets`.

1. P-Net slides over an image pyramid (smallest face ``min_face_px``, step ``scale_factor``) and
   proposes 12 x 12 cells whose face probability passes the first threshold; proposals are merged
   by non-maximum suppression within and across scales, moved by their regression and squared.
2. R-Net re-scores 24 x 24 crops of the survivors, refines their boxes, NMS again, squared.
3. O-Net re-scores 48 x 48 crops, refines the boxes and places five landmarks (eye centres, nose
   tip, mouth corners); a last NMS by intersection over the smaller box.

Images are normalised to ``(x - 127.5) / 128`` once; crops outside the image are zero-padded (the
normalised mid-grey). Box coordinates are continuous pixels ``(x0, y0, x1, y1)`` with x1 exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from recognizers._backends import mtcnn_nets
from recognizers._backends.align import crop_resize
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
    """Scales at which a ``min_face_px`` face (and every larger one, by steps of ``scale_factor``)
    fills P-Net's 12-pixel cell, down to the scale where the image's short side is 12 pixels."""
    scale = CELL / float(min_face_px)
    scales = []
    while min(height, width) * scale >= CELL:
        scales.append(scale)
        scale *= scale_factor
    return scales


def _proposals(pnet, image: np.ndarray, min_face_px: float, scale_factor: float, threshold: float) -> np.ndarray:
    """Stage 1: P-Net over the pyramid; (n, 5) rows (x0, y0, x1, y1, score), squared."""
    import cv2

    h, w = image.shape[:2]
    found = []
    for scale in pyramid_scales(h, w, min_face_px, scale_factor):
        size = (int(np.ceil(w * scale)), int(np.ceil(h * scale)))
        level = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        reg, prob = pnet.run(None, {"input": level.transpose(2, 0, 1)[None]})
        ys, xs = np.nonzero(prob[0, 1] > threshold)
        if not len(ys):
            continue
        cells = np.stack([xs * STRIDE, ys * STRIDE, xs * STRIDE + CELL, ys * STRIDE + CELL], axis=1) / scale
        rows = np.column_stack([cells, prob[0, 1, ys, xs], reg[0][:, ys, xs].T])
        found.append(rows[nms(rows[:, :4], rows[:, 4], 0.5)])
    if not found:
        return np.zeros((0, 5))
    rows = np.concatenate(found)
    rows = rows[nms(rows[:, :4], rows[:, 4], 0.7)]
    return square(np.column_stack([regress(rows[:, :4], rows[:, 5:9]), rows[:, 4]]))


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
    base, marks, reg, score = boxes[keep, :4], marks[keep], reg[keep], prob[keep, 1]
    size = np.stack([base[:, 2] - base[:, 0], base[:, 3] - base[:, 1]], axis=1)
    points = np.stack([base[:, None, 0] + size[:, None, 0] * marks[:, :5],
                       base[:, None, 1] + size[:, None, 1] * marks[:, 5:]], axis=2)
    final = regress(base, reg)
    order = nms(final, score, 0.7, over_min=True)
    h, w = image.shape[:2]
    final = np.clip(final[order], 0, [w, h, w, h])
    return Detections(final, score[order].astype(float), points[order].astype(float))


# ------------------------------------------------------------------------------------------------
# Box arithmetic
# ------------------------------------------------------------------------------------------------


def regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Move each edge of ``boxes`` by its offset times the box's width (x) or height (y)."""
    wh = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1)
    return boxes + offsets * np.tile(wh, 2)


def square(rows: np.ndarray) -> np.ndarray:
    """Rows (x0, y0, x1, y1, ...) made square around their centre (side = the longer side)."""
    out = rows.copy()
    side = np.maximum(rows[:, 2] - rows[:, 0], rows[:, 3] - rows[:, 1])
    cx, cy = (rows[:, 0] + rows[:, 2]) / 2, (rows[:, 1] + rows[:, 3]) / 2
    out[:, 0], out[:, 1], out[:, 2], out[:, 3] = cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2
    return out


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, over_min: bool = False) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, highest score first; overlap is
    intersection over union, or over the smaller box when ``over_min``."""
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        iw = np.clip(np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]), 0, None)
        ih = np.clip(np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]), 0, None)
        inter = iw * ih
        denom = np.minimum(area[i], area[rest]) if over_min else area[i] + area[rest] - inter
        order = rest[inter <= threshold * np.maximum(denom, 1e-12)]
    return np.asarray(keep, dtype=int)


def crops(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """(n, 3, size, size) float32 crops of ``boxes`` (zero, the normalised mid-grey, outside the image)."""
    out = np.stack([crop_resize(image, box, size) for box in boxes]) if len(boxes) else \
        np.zeros((0, size, size, 3), np.float32)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2), dtype=np.float32)
