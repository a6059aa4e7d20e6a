"""deepdefacer's trained 3-D U-Net as an ONNX graph, built once at setup from the package's own weights.

Why: deepdefacer 2.1.2 (MIT, Khazane et al. 2019) ships its network as a Keras 2.2.2 HDF5 file
(``deepdefacer/model.hdf5`` in the sdist) and runs it on TensorFlow; its command line no longer runs
(removed nibabel and SimpleITK calls). The network is 24 Conv3D layers, max pooling, nearest
upsampling, concatenation and a sigmoid, so it is rebuilt here as an ONNX graph from the HDF5's own
layer list (``model_config``) and weights, read with h5py, and run on onnxruntime.

Setup (``defacebench weights fetch deepdefacer``, run by scripts/setup.sh): ``pip download`` brings
the sdist from the package index, its sha256 is checked, ``model.hdf5`` is extracted (sha256 checked)
into ``<weights>/deepdefacer-2.1.2/`` and converted to ``<weights>/deepdefacer.onnx``, whose size and
sha256 are pinned here (the conversion is deterministic). At run time only the ONNX file is read.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tarfile
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from defacebench.contracts import WeightFile
from defacebench.errors import WeightsError
from defacebench.plugins.tools import run_tool
from defacebench.util.fsutil import atomic_write_bytes

from recognizers._backends.onnx_graph import GraphBuilder
from recognizers._backends.weights import weights_root

PACKAGE, PACKAGE_VERSION = "deepdefacer", "2.1.2"
SDIST = f"{PACKAGE}-{PACKAGE_VERSION}.tar.gz"
SDIST_SHA256 = "6dda7723cf006bcc157f746e348287f5d1dd361f764a74b830cbcc3afafdbe28"
MEMBER = f"{PACKAGE}-{PACKAGE_VERSION}/deepdefacer/model.hdf5"
HDF5_SHA256 = "d92b9e6d3cc2fc936b497d56328a09e621b8243ea4858de712e33862e4d5e747"
ONNX_NAME = "deepdefacer.onnx"
ONNX_SIZE = 5655334
ONNX_SHA256 = "cafc31b782ae3c553c156bb8f572e6b1b49c13aa0a09a84dd5e4e7b7851d67d1"
CONVERTER_VERSION = "1"
"""Recorded in the ONNX metadata; bump (and re-pin the size and digest) when the graph changes."""
FETCH = "defacebench weights fetch deepdefacer"


class ConversionUnsupported(ValueError):
    """The HDF5 model uses a layer or setting this converter does not map."""


def source_path() -> Path:
    """Where setup keeps the package's ``model.hdf5`` (the tests' reference reads it too)."""
    return weights_root() / f"{PACKAGE}-{PACKAGE_VERSION}" / "model.hdf5"


def onnx_path() -> Path:
    return weights_root() / ONNX_NAME


def problem() -> str:
    """"" when the ONNX file is present with the pinned size and sha256, else what is wrong and the fix."""
    path = onnx_path()
    if not path.is_file():
        return (f"{ONNX_NAME} not found in {path.parent}: run `{FETCH}` (or ./scripts/setup.sh), which "
                f"downloads the {SDIST} sdist with pip and converts its model.hdf5 to ONNX")
    stat = path.stat()
    if stat.st_size != ONNX_SIZE or _digest(str(path), stat.st_mtime_ns, stat.st_size) != ONNX_SHA256:
        return (f"{path} is not the expected file ({stat.st_size} bytes, expected {ONNX_SIZE} with sha256 "
                f"{ONNX_SHA256[:16]}...; truncated, corrupt or from another converter): run `{FETCH} --force`")
    return ""


@lru_cache(maxsize=8)
def _digest(path: str, mtime_ns: int, size: int) -> str:
    """sha256 of a file, cached per file state (``available()`` is asked often)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def weight_files() -> list[WeightFile]:
    """The ``defacebench weights`` records: the converted graph and the HDF5 it comes from."""
    how = f"run `{FETCH}` on a machine that reaches the Python package index"
    url = f"PyPI sdist {SDIST}"
    return [WeightFile(name=ONNX_NAME, path=onnx_path(), url=f"{url} deepdefacer/model.hdf5, converted",
                       sha256=ONNX_SHA256, how=how, fetch=lambda: fetch_and_convert(force=True)),
            WeightFile(name="model.hdf5", path=source_path(), url=url, sha256=HDF5_SHA256, how=how,
                       fetch=lambda: extract_hdf5(download_sdist()))]


# ------------------------------------------------------------------------------------------------
# Fetch (setup time only)
# ------------------------------------------------------------------------------------------------


def fetch_and_convert(force: bool = False) -> Path:
    """Make ``<weights>/deepdefacer.onnx`` current: fetch the HDF5 when needed, convert, check."""
    if not force and not problem():
        return onnx_path()
    source = source_path()
    if not (source.is_file() and _sha256(source.read_bytes()) == HDF5_SHA256):
        extract_hdf5(download_sdist())
    data = build_model(source).SerializeToString()
    if len(data) != ONNX_SIZE or _sha256(data) != ONNX_SHA256:
        raise WeightsError(f"converting {source} gave {len(data)} bytes with sha256 {_sha256(data)}, expected "
                           f"{ONNX_SIZE} and {ONNX_SHA256}: the converter or onnx changed; update the pins in {__name__}")
    return atomic_write_bytes(onnx_path(), data)


def download_sdist() -> bytes:
    """The sdist's bytes, fetched with ``pip download`` (the ordinary client) and checked."""
    with tempfile.TemporaryDirectory(prefix="deepdefacer-sdist-") as tmp:
        argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                "--no-build-isolation", "--quiet", "--dest", tmp, f"{PACKAGE}=={PACKAGE_VERSION}"]
        run = run_tool(argv, cwd=Path(tmp), timeout=600)
        found = Path(tmp) / SDIST
        if run.returncode != 0 or not found.is_file():
            why = (run.tail() or f"exit code {run.returncode}")[:300]
            raise WeightsError(f"`pip download {PACKAGE}=={PACKAGE_VERSION}` failed ({why}): on a machine that "
                               f"reaches the package index run `{FETCH}`, or place model.hdf5 of {SDIST} "
                               f"(sha256 {HDF5_SHA256}) at {source_path()}")
        data = found.read_bytes()
    if _sha256(data) != SDIST_SHA256:
        raise WeightsError(f"{SDIST} from the package index has sha256 {_sha256(data)}, expected {SDIST_SHA256}: "
                           "not the pinned release")
    return data


def extract_hdf5(sdist: bytes) -> Path:
    """Write the sdist's ``model.hdf5`` (sha256 checked) to :func:`source_path`."""
    import io

    with tarfile.open(fileobj=io.BytesIO(sdist), mode="r:gz") as tar:
        handle = tar.extractfile(MEMBER)
        if handle is None:
            raise WeightsError(f"{MEMBER} missing from {SDIST}: the package changed")
        data = handle.read()
    if _sha256(data) != HDF5_SHA256:
        raise WeightsError(f"{MEMBER} has sha256 {_sha256(data)}, expected {HDF5_SHA256}: not the pinned release")
    source_path().parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(source_path(), data)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------------------------------------
# HDF5 -> ONNX
# ------------------------------------------------------------------------------------------------


def read_hdf5(path: Path) -> tuple[list[dict], dict[str, list[np.ndarray]]]:
    """The Keras layer list (``model_config``) and each layer's weight arrays, in Keras order."""
    import h5py

    with h5py.File(str(path), "r") as f:
        config = json.loads(f.attrs["model_config"])
        group = f["model_weights"]
        weights = {}
        for layer in config["config"]["layers"]:
            name = layer["config"]["name"]
            sub = group[name] if name in group else None
            names = [n.decode() if isinstance(n, bytes) else n for n in sub.attrs["weight_names"]] if sub else []
            weights[name] = [np.asarray(sub[n], np.float32) for n in names]
    return config["config"]["layers"], weights


def _check(layer: dict) -> dict:
    """The layer's config; ConversionUnsupported when it is not channels-first, unit-stride and -dilation."""
    c = layer["config"]
    if c.get("data_format", "channels_first") != "channels_first":
        raise ConversionUnsupported(f"{c['name']}: data_format {c['data_format']} (only channels_first)")
    if layer["class_name"] == "Conv3D" and (set(c["strides"]) != {1} or set(c["dilation_rate"]) != {1}):
        raise ConversionUnsupported(f"{c['name']}: strides {c['strides']}, dilation {c['dilation_rate']}")
    return c


def _conv(g: GraphBuilder, x: str, c: dict, kernel: np.ndarray, bias: np.ndarray) -> str:
    """Keras Conv3D: kernel (kd, kh, kw, in, out); 'same' pads (k-1)//2 before, the rest after (as TF)."""
    k = list(kernel.shape[:3])
    before = [(n - 1) // 2 if c["padding"] == "same" else 0 for n in k]
    after = [n - 1 - b if c["padding"] == "same" else 0 for n, b in zip(k, before)]
    w = g.const(np.transpose(kernel, (4, 3, 0, 1, 2)), "conv_w")
    y = g.op("Conv", [x, w, g.const(bias, "conv_b")], kernel_shape=k, pads=before + after)
    act = c.get("activation", "linear")
    if act == "relu":
        return g.op("Relu", [y])
    if act == "sigmoid":
        return g.op("Sigmoid", [y])
    if act != "linear":
        raise ConversionUnsupported(f"{c['name']}: activation {act}")
    return y


def _layer(g: GraphBuilder, layer: dict, inputs: list[str], weights: list[np.ndarray]) -> str:
    """One Keras layer as ONNX nodes on NCDHW tensors; returns the output tensor name."""
    kind, c = layer["class_name"], _check(layer)
    if kind == "Conv3D":
        return _conv(g, inputs[0], c, *weights)
    if kind == "MaxPooling3D":
        if c["padding"] != "valid":
            raise ConversionUnsupported(f"{c['name']}: padding {c['padding']}")
        return g.op("MaxPool", inputs, kernel_shape=list(c["pool_size"]), strides=list(c["strides"]))
    if kind == "UpSampling3D":
        scales = g.const(np.array([1, 1, *c["size"]], np.float32), "scales")
        return g.op("Resize", [inputs[0], "", scales], mode="nearest",
                    coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    if kind == "Concatenate":
        if c["axis"] not in (1, -4):
            raise ConversionUnsupported(f"{c['name']}: concatenation axis {c['axis']}")
        return g.op("Concat", inputs, axis=1)
    if kind == "Dropout":  # identity at inference
        return inputs[0]
    raise ConversionUnsupported(f"{c['name']}: layer type {kind}")


def build_model(path: Path):
    """The ONNX ModelProto of the HDF5 model: input ``volume`` (n, 1, d, h, w) -> ``mask`` (n, 1, d, h, w)."""
    layers, weights = read_hdf5(path)
    g = GraphBuilder("deepdefacer_unet")
    tensors: dict[str, str] = {}
    for layer in layers:
        name = layer["config"]["name"]
        if layer["class_name"] == "InputLayer":
            tensors[name] = "volume"
            continue
        inputs = [tensors[node[0]] for node in layer["inbound_nodes"][0]]
        tensors[name] = _layer(g, layer, inputs, weights[name])
    g.op("Identity", [tensors[layers[-1]["config"]["name"]]], name="mask")
    spatial = ["n", 1, "d", "h", "w"]
    meta = {"source": f"PyPI sdist {SDIST} deepdefacer/model.hdf5", "source_sha256": HDF5_SHA256,
            "converter_version": CONVERTER_VERSION}
    return g.model([("volume", spatial)], [("mask", spatial)], metadata=meta)


def upsampling_as_copies(model):
    """``model`` with each integer-factor nearest ``Resize`` (the Keras UpSampling3D layers) replaced
    by Unsqueeze -> Expand -> Reshape, which repeats every voxel the same way: bit-identical output.

    Why (issue 23): onnxruntime's 5-D nearest Resize is a generic per-element loop, measured at about
    a fifth of the network's time (the last one writes 16 x 160^3 values); Expand is a block copy.
    Done in memory when the session is made, so the pinned ONNX file and the setup stay as they are.
    Any other Resize (another mode, a fractional factor) is left alone."""
    from onnx import helper, numpy_helper

    graph, constants = model.graph, {t.name: t for t in model.graph.initializer}
    nodes, added = [], []
    for node in graph.node:
        factors = _nearest_integer_factors(node, constants)
        if factors is None:
            nodes.append(node)
            continue
        x, y, k = node.input[0], node.output[0], factors
        added += [numpy_helper.from_array(np.array([3, 5, 7], np.int64), f"{y}_axes"),
                  numpy_helper.from_array(np.array([1, 1, 1, k[0], 1, k[1], 1, k[2]], np.int64), f"{y}_repeat"),
                  numpy_helper.from_array(np.array([1, 1, *k], np.int64), f"{y}_factors")]
        nodes += [helper.make_node("Unsqueeze", [x, f"{y}_axes"], [f"{y}_unsqueezed"]),
                  helper.make_node("Expand", [f"{y}_unsqueezed", f"{y}_repeat"], [f"{y}_expanded"]),
                  helper.make_node("Shape", [x], [f"{y}_shape"]),
                  helper.make_node("Mul", [f"{y}_shape", f"{y}_factors"], [f"{y}_new_shape"]),
                  helper.make_node("Reshape", [f"{y}_expanded", f"{y}_new_shape"], [y])]
    out = type(model)()
    out.CopyFrom(model)
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    out.graph.initializer.extend(added)
    return out


def _nearest_integer_factors(node, constants: dict) -> tuple[int, int, int] | None:
    """The three spatial factors of a 5-D nearest/asymmetric/floor ``Resize`` with whole-number
    scales given as a constant (batch and channel 1), else None."""
    from onnx import helper, numpy_helper

    if node.op_type != "Resize" or len(node.input) < 3 or node.input[2] not in constants:
        return None
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    wanted = {"mode": b"nearest", "coordinate_transformation_mode": b"asymmetric", "nearest_mode": b"floor"}
    if any(attrs.get(k) != v for k, v in wanted.items()):
        return None
    scales = numpy_helper.to_array(constants[node.input[2]])
    if scales.shape != (5,) or tuple(scales[:2]) != (1, 1) or np.any(scales < 1) or np.any(scales != np.round(scales)):
        return None
    return tuple(int(s) for s in scales[2:])
