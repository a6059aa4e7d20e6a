"""The TF.js graph -> ONNX converter.

1. The converted face models (the ONNX files setup wrote into the weights folder) agree with the
   original TF.js models run offline in Node (tfjs-core + tfjs-converter + tfjs-backend-cpu, which
   scripts/setup.sh installs into the weights folder's node_modules) within 1e-4 on random inputs.
2. A small hand-written TF.js graph (SAME/VALID, strided and depthwise convolutions, fused bias and
   ReLU6, padding, mean, matmul; float16- and uint8-quantised weights) matches a numpy reference,
   so the converter is tested without Node too.
3. An op the converter does not know is named in the error.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from recognizers._backends import human_models, tfjs_onnx
from recognizers._backends.onnx_graph import session
from recognizers._backends.weights import weights_root

NODE_SCRIPT = Path(__file__).parent / "node" / "tfjs_reference.cjs"
SETUP = "run ./scripts/setup.sh (converts the models and installs the TF.js reference runtime)"


def _node_ready() -> str:
    """Why the Node reference cannot run here ("" when it can)."""
    if shutil.which("node") is None:
        return "node not on PATH (Debian: apt-get install nodejs)"
    if not (weights_root() / "node_modules" / "@tensorflow" / "tfjs-backend-cpu").is_dir():
        return f"@tensorflow/tfjs-* not installed in {weights_root() / 'node_modules'}: {SETUP}"
    return ""


def _run_tfjs(model_json: Path, x: np.ndarray, output: str, tmp_path: Path) -> np.ndarray:
    inp, out = tmp_path / "input.f32", tmp_path / "output.f32"
    x.astype("<f4").tofile(inp)
    proc = subprocess.run(["node", str(NODE_SCRIPT), str(model_json), str(inp), ",".join(map(str, x.shape)),
                           output, str(out)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NODE_PATH": str(weights_root() / "node_modules")})
    assert proc.returncode == 0, proc.stderr
    shape = json.loads(proc.stdout)
    return np.fromfile(out, dtype="<f4").reshape(shape)


@pytest.mark.parametrize("key", ["mobileface", "faceres", "faceres_deep"])
def test_converted_model_matches_tfjs_in_node(key, tmp_path):
    model = human_models.MODELS[key]
    why = _node_ready() or human_models.onnx_problem(model)
    if not why and not human_models.source_path(model).is_file():
        why = f"{human_models.source_path(model)} missing: {SETUP}"
    if why:
        pytest.skip(why)
    x = np.random.default_rng(7).uniform(0, 255, (3, model.size, model.size, 3)).astype(np.float32)
    reference = _run_tfjs(human_models.source_path(model), x, model.output, tmp_path)
    sess = session(human_models.onnx_path(model))
    ours = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    assert ours.shape == reference.shape
    diff = float(np.abs(ours - reference).max())
    print(f"{key}: max |onnx - tfjs| = {diff:.2e} (output magnitude {np.abs(reference).max():.2f})")
    assert diff <= 1e-4
    assert np.abs(reference).max() > 1e-2, "a zero output would make the comparison vacuous"


# ------------------------------------------------------------------------------------------------
# A small graph against numpy
# ------------------------------------------------------------------------------------------------


def _node(name, op, inputs=(), **attr):
    return {"name": name, "op": op, "input": list(inputs), "attr": attr}


def _s(text: str) -> dict:
    import base64

    return {"s": base64.b64encode(text.encode()).decode()}


def _ints(*values) -> dict:
    return {"list": {"i": [str(v) for v in values]}}


def _write_model(folder: Path, weights: dict[str, tuple[np.ndarray, str | None]], nodes: list[dict]) -> Path:
    """model.json + group1-shard1of1.bin; weights stored float32, or quantised (float16 / uint8)."""
    specs, blobs = [], []
    for name, (value, quant) in weights.items():
        spec = {"name": name, "shape": list(value.shape), "dtype": "int32" if value.dtype.kind == "i" else "float32"}
        if quant == "float16":
            blobs.append(value.astype("<f2").tobytes())
            spec["quantization"] = {"dtype": "float16"}
        elif quant == "uint8":
            lo, scale = float(value.min()), float(value.max() - value.min()) / 255
            q = np.round((value - lo) / scale).astype(np.uint8)
            blobs.append(q.tobytes())
            spec["quantization"] = {"dtype": "uint8", "min": lo, "scale": scale}
        else:
            blobs.append(value.astype("<i4" if value.dtype.kind == "i" else "<f4").tobytes())
        specs.append(spec)
    (folder / "group1-shard1of1.bin").write_bytes(b"".join(blobs))
    doc = {"format": "graph-model", "modelTopology": {"node": nodes},
           "weightsManifest": [{"paths": ["group1-shard1of1.bin"], "weights": specs}]}
    path = folder / "model.json"
    path.write_text(json.dumps(doc))
    return path


def _conv_nhwc(x, k, stride, same, depthwise=False):
    """Reference convolution, TensorFlow semantics (SAME pads the extra pixel at the end)."""
    n, h, w, c = x.shape
    kh, kw = k.shape[:2]
    if same:
        oh, ow = -(-h // stride), -(-w // stride)
        ph, pw = max((oh - 1) * stride + kh - h, 0), max((ow - 1) * stride + kw - w, 0)
        x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    else:
        oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    cout = c * k.shape[3] if depthwise else k.shape[3]
    out = np.zeros((n, oh, ow, cout), np.float64)
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            if depthwise:
                out[:, i, j, :] = np.einsum("nhwc,hwcm->ncm", patch, k).reshape(n, -1)
            else:
                out[:, i, j, :] = np.einsum("nhwc,hwco->no", patch, k)
    return out


def test_small_graph_matches_numpy(tmp_path):
    rng = np.random.default_rng(3)
    k1, b1 = rng.normal(0, 0.5, (3, 3, 3, 4)).astype(np.float32), rng.normal(0, 0.1, 4).astype(np.float32)
    k2, fc = rng.normal(0, 0.5, (2, 2, 4, 2)).astype(np.float32), rng.normal(0, 0.5, (8, 5)).astype(np.float32)
    pads = np.array([[0, 0], [1, 2], [0, 1], [0, 0]], np.int32)
    weights = {"k1": (k1, "float16"), "b1": (b1, None), "six": (np.array(6, np.float32), None),
               "zero": (np.array(0, np.float32), None), "k2": (k2, "uint8"), "pads": (pads, None),
               "axes": (np.array([1, 2], np.int32), None), "fc": (fc, None)}
    nodes = [_node("x", "Placeholder", shape={"shape": {"dim": [{"size": "-1"}, {"size": "9"}, {"size": "7"},
                                                                  {"size": "3"}]}})]
    nodes += [_node(n, "Const") for n in weights]
    nodes += [
        _node("conv", "_FusedConv2D", ["x", "k1", "b1"], padding=_s("SAME"), strides=_ints(1, 2, 2, 1),
              fused_ops={"list": {"s": [_s("BiasAdd")["s"], _s("Relu")["s"]]}}, data_format=_s("NHWC")),
        _node("low", "Minimum", ["conv", "six"]), _node("relu6", "Maximum", ["zero", "low"]),
        _node("dw", "DepthwiseConv2dNative", ["relu6", "k2"], padding=_s("VALID"), strides=_ints(1, 1, 1, 1)),
        _node("pad", "Pad", ["dw", "pads"]),
        _node("mean", "Mean", ["pad", "axes"], keep_dims={"b": False}),
        _node("out", "MatMul", ["mean", "fc"]),
    ]
    path = _write_model(tmp_path, weights, nodes)
    loaded = tfjs_onnx.read_weights(json.loads(path.read_text()), tmp_path)
    assert np.allclose(loaded["k1"], k1, atol=2e-3) and np.allclose(loaded["k2"], k2, atol=(k2.max() - k2.min()) / 500)
    x = rng.uniform(0, 2, (2, 9, 7, 3)).astype(np.float32)
    k1q, k2q = loaded["k1"].astype(np.float64), loaded["k2"].astype(np.float64)
    y = np.clip(_conv_nhwc(x, k1q, 2, True) + b1, 0, 6)
    y = np.pad(_conv_nhwc(y, k2q, 1, False, depthwise=True), pads)
    expected = y.mean(axis=(1, 2)) @ fc
    model = tfjs_onnx.convert(path, ["out"], metadata={"source": "test"})
    props = {p.key: p.value for p in model.metadata_props}
    assert props["converter_version"] == tfjs_onnx.CONVERTER_VERSION and props["source"] == "test"
    got = session(model).run(None, {"x": x})[0]
    assert got.shape == (2, 5) and np.allclose(got, expected, atol=1e-4)


def test_unknown_op_is_named(tmp_path):
    nodes = [_node("x", "Placeholder", shape={"shape": {"dim": [{"size": "-1"}, {"size": "4"}]}}),
             _node("y", "Erf", ["x"])]
    path = _write_model(tmp_path, {}, nodes)
    with pytest.raises(tfjs_onnx.ConversionUnsupported, match="Erf"):
        tfjs_onnx.convert(path, ["y"])
