"""The three MTCNN networks (P-Net, R-Net, O-Net) as ONNX graphs built from the ``mtcnn`` wheel's weights.

Why this route: the ``mtcnn`` package (>= 1.0, MIT) ships its trained weights as three small
lz4-compressed joblib files (``mtcnn/assets/weights/{pnet,rnet,onet}.lz4``, 2 MB in all) but runs
them on TensorFlow (~600 MB installed). The networks are a dozen convolution, PReLU, pooling and
dense layers, so the graphs are written here with the ``onnx`` package and run on onnxruntime,
which the project already has. The ``mtcnn`` package is never imported (its ``__init__`` imports
TensorFlow): its folder is found with ``importlib.util.find_spec`` and the weight files are read
with joblib (which needs ``lz4``). The graphs are built in memory in a few milliseconds; nothing
is written to disk.

Layout: the weights are Keras arrays (conv kernels ``(kh, kw, in, out)``, dense ``(in, out)``,
PReLU slopes per channel); the graphs take NCHW float32 input already normalised to
``(x - 127.5) / 128``. R-Net and O-Net flatten their last feature map after swapping height and
width (the layout the original Caffe models were trained in, kept by the Keras port as a Permute).
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

from recognizers._backends.onnx_graph import GraphBuilder

PACKAGE = "mtcnn"
NETS = ("pnet", "rnet", "onet")
INSTALL = "pip install 'mtcnn>=1.0' lz4 onnx onnxruntime (or defacebench[mtcnn]); TensorFlow is not needed"
WEIGHT_SHA256 = {
    "pnet.lz4": "ea6b0c3e685ebee3165326ad6484acc95f2ef78f1c94fbf40a55704fa989f7b5",
    "rnet.lz4": "cb00e6460f3c98b0bfafaba3c0a0ded4bdf6e62cee7174d969e8670d7e757fee",
    "onet.lz4": "94f6ea2f4cf985275ee958cdd762d17b6009348a4fb9d8c6be39ba73ffd22ca3",
}
"""Digests of the weight files of the mtcnn 1.0.0 wheel (shown by ``defacebench weights list``)."""


def weights_dir() -> Path | None:
    """``mtcnn/assets/weights`` of the installed mtcnn package (found without importing it), or None."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "assets" / "weights"


def weight_path(net: str) -> Path | None:
    """Path of ``<net>.lz4`` when it exists, else None."""
    folder = weights_dir()
    path = None if folder is None else folder / f"{net}.lz4"
    return path if path is not None and path.is_file() else None


@lru_cache(maxsize=None)
def load_weights(net: str) -> tuple[np.ndarray, ...]:
    """The Keras weight arrays of one network, in layer order."""
    import joblib

    path = weight_path(net)
    if path is None:
        raise FileNotFoundError(f"{net}.lz4 not found in the mtcnn package: {INSTALL}")
    return tuple(np.asarray(a, dtype=np.float32) for a in joblib.load(path))


# ------------------------------------------------------------------------------------------------
# Layers (Keras weights -> ONNX nodes on NCHW tensors)
# ------------------------------------------------------------------------------------------------


def _conv(g: GraphBuilder, x: str, kernel: np.ndarray, bias: np.ndarray, name: str | None = None) -> str:
    """'valid' 2-D convolution, stride 1, Keras kernel (kh, kw, in, out); ``name``: output name."""
    w = g.const(np.transpose(kernel, (3, 2, 0, 1)), "conv_w")
    return g.op("Conv", [x, w, g.const(bias, "conv_b")], kernel_shape=list(kernel.shape[:2]), name=name)


def _prelu(g: GraphBuilder, x: str, alpha: np.ndarray, spatial: bool) -> str:
    """PReLU with one slope per channel (Keras shares it over height and width)."""
    slope = alpha.reshape(-1, 1, 1) if spatial else alpha.reshape(-1)
    return g.op("PRelu", [x, g.const(slope, "prelu_a")])


def _pool(g: GraphBuilder, x: str, size: int, same: bool) -> str:
    """Max pooling, stride 2; Keras 'same' pads at the end (ONNX SAME_UPPER), 'valid' does not."""
    return g.op("MaxPool", [x], kernel_shape=[size, size], strides=[2, 2],
                auto_pad="SAME_UPPER" if same else "VALID")


def _dense(g: GraphBuilder, x: str, kernel: np.ndarray, bias: np.ndarray) -> str:
    return g.op("Gemm", [x, g.const(kernel, "fc_w"), g.const(bias, "fc_b")])


def _flatten_hw_swapped(g: GraphBuilder, x: str) -> str:
    """Flatten (N, C, H, W) in the order (W, H, C), as the Keras port's Permute + Flatten does."""
    return g.op("Flatten", [g.op("Transpose", [x], perm=[0, 3, 2, 1])], axis=1)


# ------------------------------------------------------------------------------------------------
# Networks
# ------------------------------------------------------------------------------------------------


def pnet_model():
    """P-Net: fully convolutional; input (1, 3, H, W) -> ``reg`` (1, 4, h, w), ``prob`` (1, 2, h, w)."""
    w = load_weights("pnet")
    g = GraphBuilder("mtcnn_pnet")
    x = _pool(g, _prelu(g, _conv(g, "input", w[0], w[1]), w[2], True), 2, True)
    x = _prelu(g, _conv(g, x, w[3], w[4]), w[5], True)
    x = _prelu(g, _conv(g, x, w[6], w[7]), w[8], True)
    _conv(g, x, w[9], w[10], name="reg")
    g.op("Softmax", [_conv(g, x, w[11], w[12])], axis=1, name="prob")
    return g.model([("input", ["n", 3, "h", "w"])], [("reg", ["n", 4, "y", "x"]), ("prob", ["n", 2, "y", "x"])])


def rnet_model():
    """R-Net: input (n, 3, 24, 24) -> ``reg`` (n, 4), ``prob`` (n, 2)."""
    w = load_weights("rnet")
    g = GraphBuilder("mtcnn_rnet")
    x = _pool(g, _prelu(g, _conv(g, "input", w[0], w[1]), w[2], True), 3, True)
    x = _pool(g, _prelu(g, _conv(g, x, w[3], w[4]), w[5], True), 3, False)
    x = _prelu(g, _conv(g, x, w[6], w[7]), w[8], True)
    x = _prelu(g, _dense(g, _flatten_hw_swapped(g, x), w[9], w[10]), w[11], False)
    g.op("Identity", [_dense(g, x, w[12], w[13])], name="reg")
    g.op("Softmax", [_dense(g, x, w[14], w[15])], axis=1, name="prob")
    return g.model([("input", ["n", 3, 24, 24])], [("reg", ["n", 4]), ("prob", ["n", 2])])


def onet_model():
    """O-Net: input (n, 3, 48, 48) -> ``reg`` (n, 4), ``marks`` (n, 10: five x then five y), ``prob`` (n, 2)."""
    w = load_weights("onet")
    g = GraphBuilder("mtcnn_onet")
    x = _pool(g, _prelu(g, _conv(g, "input", w[0], w[1]), w[2], True), 3, True)
    x = _pool(g, _prelu(g, _conv(g, x, w[3], w[4]), w[5], True), 3, False)
    x = _pool(g, _prelu(g, _conv(g, x, w[6], w[7]), w[8], True), 2, True)
    x = _prelu(g, _conv(g, x, w[9], w[10]), w[11], True)
    x = _prelu(g, _dense(g, _flatten_hw_swapped(g, x), w[12], w[13]), w[14], False)
    g.op("Identity", [_dense(g, x, w[15], w[16])], name="reg")
    g.op("Identity", [_dense(g, x, w[17], w[18])], name="marks")
    g.op("Softmax", [_dense(g, x, w[19], w[20])], axis=1, name="prob")
    return g.model([("input", ["n", 3, 48, 48])],
                   [("reg", ["n", 4]), ("marks", ["n", 10]), ("prob", ["n", 2])])


BUILDERS = {"pnet": pnet_model, "rnet": rnet_model, "onet": onet_model}
