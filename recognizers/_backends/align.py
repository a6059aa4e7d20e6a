"""Face crops for recognizers: similarity alignment of landmarks onto a template (the ArcFace
five-point one, or two eye centres placed where a recognizer wants them) and zero-padded
crop-and-resize of a box.

Why here: `mobileface` was trained on faces warped so that the eye centres, nose tip and mouth
corners land on the ArcFace 112 x 112 template; `faceres` on loose square crops, which it gets by
placing the eye centres (recognizers._backends.eyes); the MTCNN cascade needs the zero-padded
crop-and-resize for its refinement stages.
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
    points = np.asarray(points, float)
    return warp_to_template(image, points, ARCFACE_112[: len(points)] * (size / 112.0), size)


def eye_template(size: int, eye_distance: float, eye_height: float) -> np.ndarray:
    """(2, 2) eye centres, image-left first, of a (size, size) chip whose eyes are level,
    ``eye_distance`` x size apart, centred left-right, ``eye_height`` x size below the top."""
    half = eye_distance * size / 2.0
    return np.array([[size / 2.0 - half, eye_height * size], [size / 2.0 + half, eye_height * size]])


def warp_to_template(image: np.ndarray, points: np.ndarray, template: np.ndarray, size: int) -> np.ndarray:
    """(size, size, 3) chip of ``image`` under the similarity taking ``points`` onto ``template``
    (zero outside the image)."""
    import cv2

    matrix = similarity(points, template)
    return cv2.warpAffine(np.ascontiguousarray(image), matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


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
