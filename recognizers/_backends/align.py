"""Face crops for recognizers: five-point similarity alignment (ArcFace template) and enlarged
square crops of a detector box.

Why here: `mobileface` was trained on faces warped so that the eye centres, nose tip and mouth
corners land on the ArcFace 112 x 112 template; `faceres` on a square crop around the box; the
MTCNN cascade needs the same zero-padded crop-and-resize for its refinement stages.
"""

from __future__ import annotations

import numpy as np

ARCFACE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                        [41.5493, 92.3655], [70.7299, 92.2041]])
"""Where the ``face5`` points (eye centres, nose tip, mouth corners; image-left first) go in a
112 x 112 ArcFace-aligned face."""


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2 x 3 least-squares similarity (rotation, uniform scale, shift) taking ``src`` points
    onto ``dst`` points (Umeyama, via scikit-image)."""
    from skimage.transform import SimilarityTransform

    src, dst = np.asarray(src, float), np.asarray(dst, float)
    if hasattr(SimilarityTransform, "from_estimate"):  # scikit-image >= 0.26
        tform = SimilarityTransform.from_estimate(src, dst)
        ok = bool(tform)
    else:  # pragma: no cover - older scikit-image
        tform = SimilarityTransform()
        ok = tform.estimate(src, dst)
    if not ok or not np.isfinite(tform.params).all():
        raise ValueError(f"no similarity maps points {src.tolist()} onto the template (degenerate landmarks)")
    return tform.params[:2]


def dlib5_eye_centres(points: np.ndarray) -> np.ndarray:
    """(2, 2) eye centres, image-left first, from dlib's 5-point landmarks (outer and inner corner
    of the image-right eye, of the image-left eye, then the nose base)."""
    points = np.asarray(points, float)
    return np.stack([points[2:4].mean(axis=0), points[0:2].mean(axis=0)])


def align_face5(image: np.ndarray, points: np.ndarray, size: int = 112) -> np.ndarray:
    """(size, size, 3) uint8 face warped so that ``points`` land on the ArcFace template: five
    ``face5`` points, or two eye centres (then the template's eyes alone fix the similarity)."""
    import cv2

    points = np.asarray(points, float)
    template = ARCFACE_112[: len(points)] * (size / 112.0)
    matrix = similarity(points, template)
    return cv2.warpAffine(np.ascontiguousarray(image), matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def square_box(box, scale: float) -> tuple[float, float, float, float]:
    """The square around ``box``'s centre whose side is ``scale`` x the box's longer side."""
    x0, y0, x1, y1 = (float(v) for v in box)
    half = max(x1 - x0, y1 - y0) * scale / 2.0
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    return cx - half, cy - half, cx + half, cy + half


def crop_resize(image: np.ndarray, box, size: int) -> np.ndarray:
    """The pixels of ``box`` (rounded to whole pixels; zero where it leaves the image) resized to
    (size, size): pixel-area averaging when shrinking, bilinear when growing. Keeps the dtype."""
    import cv2

    h, w = image.shape[:2]
    x0, y0, x1, y1 = (int(v) for v in np.round(np.asarray(box, float)))
    x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
    patch = np.zeros((y1 - y0, x1 - x0) + image.shape[2:], dtype=image.dtype)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if sx1 > sx0 and sy1 > sy0:
        patch[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
    shrink = patch.shape[0] > size or patch.shape[1] > size
    return cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
