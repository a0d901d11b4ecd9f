"""fp32 ONNX -> fp16 ONNX for TensorRT's strongly typed networks (TensorRT 11 has no ``BuilderFlag.FP16``).

Our own conversion (NVIDIA ModelOpt's AutoCast needs ``onnx~=1.21`` and ``onnxruntime-gpu``, which conflict with
this package's pins). The rules, in one pass over the topologically ordered graph:

* every float tensor is fp16, except the inputs and outputs of the ops in :data:`FP32_OPS` (LayerNormalization,
  Softmax and the reductions/powers a decomposed norm uses), which compute in fp32: the known fp16 failure of
  transformers in TensorRT is LayerNorm overflow (NVIDIA/TensorRT #2564, #4111);
* the graph's inputs and outputs stay fp32 (``keep_io_types``), so callers bind the same buffers at any precision;
* a ``Cast`` is inserted wherever a tensor crosses between the two, once per tensor and target type; float
  initializers read only by fp32 ops stay fp32, all others are stored in fp16 (clipped to its range);
* ``Cast(to=FLOAT)``, ``Constant`` and ``ConstantOfShape`` values in the fp16 part are retyped to fp16.

The result is checked with strict shape inference, which rejects any type mismatch the rules missed.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FP32_OPS = frozenset({"LayerNormalization", "Softmax", "ReduceMean", "ReduceSumSquare", "Pow", "Sqrt"})
_TYPE_AGNOSTIC = frozenset({"Shape", "Size", "Cast"})  # read any element type: never cast their inputs
FLOAT, HALF = TensorProto.FLOAT, TensorProto.FLOAT16
_HALF_MAX = float(np.finfo(np.float16).max)


def _to_half(array: np.ndarray) -> np.ndarray:
    return np.clip(array, -_HALF_MAX, _HALF_MAX).astype(np.float16)


def _retype_tensor(tensor: TensorProto) -> TensorProto:
    return numpy_helper.from_array(_to_half(numpy_helper.to_array(tensor)), tensor.name)


def _float_tensors(model: onnx.ModelProto) -> set[str]:
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    graph = inferred.graph
    values = list(graph.input) + list(graph.output) + list(graph.value_info)
    names = {v.name for v in values if v.type.tensor_type.elem_type == FLOAT}
    names |= {t.name for t in graph.initializer if t.data_type == FLOAT}
    for node in graph.node:
        if node.op_type == "Constant" and any(a.t.data_type == FLOAT for a in node.attribute if a.name == "value"):
            names.update(node.output)
    return names


def convert_to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """An fp16 copy of ``model`` (fp32 I/O, fp32 islands around :data:`FP32_OPS`); see the module docstring."""
    for node in model.graph.node:
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
            raise ValueError(f"fp16 conversion does not handle subgraphs ({node.op_type} {node.name!r})")
    floats = _float_tensors(model)
    graph = model.graph
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    dtype: dict[str, int] = {v.name: FLOAT for v in graph.input if v.name in floats}
    initializers = []
    for init in graph.initializer:
        readers = consumers.get(init.name, [])
        if init.data_type == FLOAT and not all(r.op_type in FP32_OPS for r in readers):
            init = _retype_tensor(init)
        if init.name in floats:
            dtype[init.name] = init.data_type
        initializers.append(init)

    nodes: list[onnx.NodeProto] = []
    casts: dict[tuple[str, int], str] = {}

    def as_type(name: str, target: int) -> str:
        if dtype[name] == target:
            return name
        if (name, target) not in casts:
            cast_name = f"{name}__as_{'fp32' if target == FLOAT else 'fp16'}"
            nodes.append(helper.make_node("Cast", [name], [cast_name], name=cast_name, to=target))
            casts[(name, target)] = cast_name
        return casts[(name, target)]

    for node in graph.node:
        target = FLOAT if node.op_type in FP32_OPS else HALF
        new = onnx.NodeProto()
        new.CopyFrom(node)
        if node.op_type not in _TYPE_AGNOSTIC:
            new.input[:] = [as_type(name, target) if name in dtype else name for name in node.input]
        for attribute in new.attribute:
            if node.op_type == "Cast" and attribute.name == "to" and attribute.i == FLOAT:
                attribute.i = target
            elif attribute.name == "value" and attribute.type == onnx.AttributeProto.TENSOR and attribute.t.data_type == FLOAT:
                attribute.t.CopyFrom(_retype_tensor(attribute.t))
        for name in new.output:
            if name in floats:
                dtype[name] = target
        nodes.append(new)

    for output in graph.output:
        if dtype.get(output.name) == HALF:  # rename the producer's output and cast back to fp32 under the old name
            internal = f"{output.name}__fp16"
            for node in nodes:
                node.input[:] = [internal if n == output.name else n for n in node.input]
                node.output[:] = [internal if n == output.name else n for n in node.output]
            nodes.append(helper.make_node("Cast", [internal], [output.name], name=f"{output.name}__to_fp32", to=FLOAT))

    converted = onnx.ModelProto()
    converted.CopyFrom(model)
    del converted.graph.node[:]
    converted.graph.node.extend(nodes)
    del converted.graph.initializer[:]
    converted.graph.initializer.extend(initializers)
    del converted.graph.value_info[:]  # stale fp32 annotations; re-inferred below
    return onnx.shape_inference.infer_shapes(converted, strict_mode=True, data_prop=True)
