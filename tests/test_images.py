"""Reading images: corrupt, empty and non-image files fail clearly; gray, RGBA, 16-bit convert."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from defacebench.errors import ImageError
from defacebench.data.images import as_rgb, read_image, write_image


def _png(path, array, mode=None):
    Image.fromarray(array, mode=mode).save(path) if mode else Image.fromarray(array).save(path)
    return path


def test_rgb_png_roundtrip(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    out = read_image(_png(tmp_path / "a.png", img))
    assert out.dtype == np.uint8 and out.shape == (20, 30, 3) and np.array_equal(out, img)


def test_grayscale_png_becomes_three_equal_channels(tmp_path):
    gray = np.arange(24 * 16, dtype=np.uint16).reshape(24, 16).astype(np.uint8)
    out = read_image(_png(tmp_path / "g.png", gray))
    assert out.shape == (24, 16, 3) and all(np.array_equal(out[:, :, c], gray) for c in range(3))


def test_rgba_png_is_composited_on_black(tmp_path):
    """Transparent pixels become black (the render background), opaque ones keep their colour."""
    rgba = np.zeros((10, 12, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[:, :6, 3] = 255
    out = read_image(_png(tmp_path / "t.png", rgba))
    assert out.shape == (10, 12, 3)
    assert (out[:, :6] == 200).all() and (out[:, 6:] == 0).all()


def test_16bit_png_is_scaled_to_uint8(tmp_path):
    deep = (np.arange(100, dtype=np.uint16).reshape(10, 10) * 600).astype(np.uint16)
    path = tmp_path / "d.png"
    Image.fromarray(deep).save(path)
    out = read_image(path)
    assert out.dtype == np.uint8 and out.min() == 0 and out.max() == 255


def test_empty_file_fails_clearly(tmp_path):
    path = tmp_path / "person_3_view_frontal.png"
    path.write_bytes(b"")
    with pytest.raises(ImageError, match="empty") as err:
        read_image(path)
    assert str(path) in str(err.value)


def test_corrupt_png_fails_clearly(tmp_path):
    path = _png(tmp_path / "c.png", np.full((64, 64, 3), 90, np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(ImageError, match="corrupt|truncated|not an image") as err:
        read_image(path)
    assert "c.png" in str(err.value)


def test_non_image_file_fails_clearly(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not an image\n")
    with pytest.raises(ImageError, match="not an image") as err:
        read_image(path)
    assert "notes.png" in str(err.value)


def test_missing_file_fails_clearly(tmp_path):
    with pytest.raises(ImageError, match="no such image"):
        read_image(tmp_path / "nope.png")


@pytest.mark.parametrize("shape", [(0, 0, 3), (5, 5, 5), (2, 3, 4, 3), (7,)])
def test_bad_array_shapes_fail(shape):
    with pytest.raises(ImageError):
        as_rgb(np.zeros(shape, np.uint8))


def test_float_arrays():
    """Floats in [0, 1] scale by 255; other ranges are stretched; NaN is refused."""
    assert as_rgb(np.full((2, 2), 1.0)).max() == 255
    out = as_rgb(np.array([[-5.0, 5.0]]))
    assert out[0, 0, 0] == 0 and out[0, 1, 0] == 255
    with pytest.raises(ImageError, match="NaN"):
        as_rgb(np.array([[np.nan, 1.0]]))


@settings(max_examples=40, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12), st.sampled_from([1, 2, 3, 4]))))
def test_as_rgb_invariants(array):
    """Any uint8 gray/gray+alpha/RGB/RGBA array becomes contiguous (H, W, 3) uint8; RGB is untouched;
    an opaque alpha channel changes nothing."""
    out = as_rgb(array)
    assert out.shape == (*array.shape[:2], 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    if array.shape[2] == 3:
        assert np.array_equal(out, array)
    if array.shape[2] in (2, 4):
        opaque = array.copy()
        opaque[..., -1] = 255
        assert np.array_equal(as_rgb(opaque), as_rgb(opaque[..., :-1]))


def test_write_image_roundtrip(tmp_path):
    img = np.random.default_rng(1).integers(0, 256, (9, 7), dtype=np.uint8)
    assert np.array_equal(read_image(write_image(tmp_path / "sub" / "w.png", img))[:, :, 0], img)
