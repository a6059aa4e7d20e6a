"""Reading and normalising images for detectors and recognizers.

Every detector and recognizer takes (H, W, 3) uint8 RGB. Files and arrays in other forms (gray,
gray + alpha, RGBA, 16-bit, float in [0, 1]) are converted here once, so plugins never see them;
unusable input (missing, empty, corrupt, not an image, wrong shape) raises
:class:`defacebench.errors.ImageError` naming the file and the fix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from defacebench.errors import ImageError

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
"""File suffixes treated as images when a folder is scanned."""


def read_image(path: Path | str) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB; raise ImageError when it cannot be used."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such image file; check the path")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: the file is empty (0 bytes); re-export or remove it")
    try:
        with Image.open(path) as img:
            img.load()
            array = _pil_to_rgb(img)
    except UnidentifiedImageError as err:
        raise ImageError(f"{path}: not an image file PIL can read ({err}); use PNG or JPEG") from err
    except (OSError, SyntaxError, ValueError) as err:
        # truncated or corrupt data surfaces as OSError ("image file is truncated") in PIL
        raise ImageError(f"{path}: corrupt or truncated image ({err}); re-export the file") from err
    try:
        return as_rgb(array)
    except ImageError as err:
        raise ImageError(f"{path}: {err}") from err


def _pil_to_rgb(img) -> np.ndarray:
    """Convert a PIL image of any mode to an RGB uint8 array (alpha composited on black)."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        return as_rgb(np.asarray(rgba))
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return as_rgb(np.asarray(img))
    return np.asarray(img.convert("RGB"))


def _to_uint8(array: np.ndarray) -> np.ndarray:
    """Scale an array to uint8: floats in [0, 1] map to [0, 255], wider types are scaled by range."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    if not np.all(np.isfinite(array)):
        raise ImageError("image array contains NaN or infinite values; replace them before use")
    if np.issubdtype(array.dtype, np.floating) and array.min() >= 0.0 and array.max() <= 1.0:
        return np.round(array * 255.0).astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer) and array.min() >= 0 and array.max() <= 255:
        return array.astype(np.uint8)
    lo, hi = float(array.min()), float(array.max())
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    return np.round((array.astype(np.float64) - lo) * scale).astype(np.uint8)


def as_rgb(array: np.ndarray) -> np.ndarray:
    """Return ``array`` as contiguous (H, W, 3) uint8 RGB.

    Gray (H, W) and (H, W, 1) are replicated to three channels; gray + alpha (H, W, 2) and RGBA
    (H, W, 4) are composited on black (the renderers' background) so transparent pixels never
    show as face. Raises ImageError for empty arrays or any other shape.
    """
    array = np.asarray(array)
    if array.size == 0:
        raise ImageError(f"image array is empty (shape {array.shape}); the render or file has no pixels")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        gray = _to_uint8(array)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if array.ndim != 3 or array.shape[2] not in (2, 3, 4):
        raise ImageError(
            f"image array has shape {array.shape}; expected (H, W), (H, W, 3) RGB or (H, W, 4) RGBA"
        )
    array = _to_uint8(array)
    if array.shape[2] == 3:
        return np.ascontiguousarray(array)
    color = array[:, :, :1] if array.shape[2] == 2 else array[:, :, :3]
    alpha = array[:, :, -1:].astype(np.float64) / 255.0
    rgb = np.round(color.astype(np.float64) * alpha).astype(np.uint8)
    return np.ascontiguousarray(np.broadcast_to(rgb, (*rgb.shape[:2], 3)) if rgb.shape[2] == 1 else rgb)


def write_image(path: Path | str, image: np.ndarray) -> Path:
    """Write an image array (any form :func:`as_rgb` accepts) as PNG; returns the path."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(as_rgb(image)).save(path)
    return path
