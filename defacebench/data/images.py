"""Reading and normalising images for detectors and recognizers.

Every detector and recognizer takes (H, W, 3) uint8 RGB. Files and arrays in other forms (gray,
gray + alpha, RGBA, 16-bit, float in [0, 1]) are converted here once, so plugins never see them;
unusable input (missing, empty, corrupt, not an image, wrong shape, too many pixels) raises
:class:`defacebench.errors.ImageError` naming the file and the fix.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from defacebench.errors import ImageError

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
"""File suffixes treated as images when a folder is scanned."""


@dataclass(frozen=True)
class ImageLimits:
    """What :func:`read_image` accepts before decoding a single pixel.

    Why a cap well below PIL's own (a warning at ~89 MP, an error at ~179 MP): a 263 KB PNG of
    9500 x 9500 pixels passes PIL's warning and then costs minutes and gigabytes to decode and
    convert. Face renders are around 1 MP and photographs rarely pass 25 MP, so the default
    refuses only what is not a face image, and refuses it from the header, in milliseconds.
    """

    max_pixels: int = 25_000_000


def _check_size(path: Path, width: int, height: int, limits: ImageLimits) -> None:
    """Raise ImageError when the header announces more pixels than ``limits`` allow."""
    if width * height > limits.max_pixels:
        raise ImageError(
            f"{path}: {width} x {height} = {width * height / 1e6:.1f} megapixels, over the limit of "
            f"{limits.max_pixels / 1e6:g} MP (max_pixels); a face image needs far fewer (renders are about 1 MP). "
            "Fix: downscale the image, or raise the limit (--max-pixels) if it is genuine")


def read_image(path: Path | str, limits: ImageLimits | None = None) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB; raise ImageError when it cannot be used.

    The size in the header is checked against ``limits`` before any pixel is decoded.
    """
    from PIL import Image, UnidentifiedImageError

    path, limits = Path(path), limits or ImageLimits()
    if not path.is_file():
        raise ImageError(f"{path}: no such image file; check the path")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: the file is empty (0 bytes); re-export or remove it")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own, lower cap applies
            with Image.open(path) as img:
                _check_size(path, *img.size, limits)
                img.load()
                array = _pil_to_rgb(img)
    except Image.DecompressionBombError as err:  # raised by Image.open itself past ~179 MP
        raise ImageError(f"{path}: decompression bomb refused before decoding ({err}). "
                         "Fix: downscale the image; a face image needs about 1 MP") from err
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
    """Write an image array (any form :func:`as_rgb` accepts) as PNG, atomically; returns the path."""
    import io

    from PIL import Image

    from defacebench.util.fsutil import atomic_write_bytes

    buf = io.BytesIO()
    Image.fromarray(as_rgb(image)).save(buf, format="PNG")
    return atomic_write_bytes(Path(path), buf.getvalue())
