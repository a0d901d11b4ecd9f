"""CPU validation of exported ONNX graphs: the ONNX checker, constant folding, explicit dims, and an operator
allow-list for the oldest TensorRT targeted (10.x, JetPack 6), so a graph TensorRT cannot parse fails here and
not on the robot.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import onnx
import torch

from ..errors import GraphError
from ..model.stages import GraphSpec

# The ONNX operators the TensorRT 10.0 GA parser supports (onnx-tensorrt release 10.0, docs/operators.md:
# "Supported ONNX Operators", the rows marked Y). TensorRT 10.0 parses opsets 9..20.
TENSORRT10_OPS = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast CastLike Ceil Celu
Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DepthToSpace DequantizeLinear Div Dropout
Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather GatherElements GatherND Gelu Gemm GlobalAveragePool
GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GridSample GroupNormalization GRU HardSigmoid HardSwish Hardmax
Identity If ImageScaler InstanceNormalization IsInf IsNaN LayerNormalization LeakyRelu Less LessOrEqual Log
LogSoftmax Loop LRN LSTM LpNormalization LpPool MatMul Max MaxPool Mean MeanVarianceNormalization Min Mish Mod Mul
Neg NonMaxSuppression NonZero Not OneHot Or Pad ParametricSoftplus Pow PRelu QuantizeLinear RandomNormal
RandomNormalLike RandomUniform RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp
ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize ReverseSequence RNN
RoiAlign Round ScaledTanh Scan Scatter ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh Size Slice
Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh ThresholdedRelu Tile TopK Transpose
Trilu Unsqueeze Upsample Where Xor
""".split())
TENSORRT10_OPSETS = (9, 20)
TENSORRT_RESIZE_MODES = (b"nearest", b"linear")  # no cubic: bake resized tables into the weights instead

_ONNX_DTYPES = {
    torch.float32: onnx.TensorProto.FLOAT,
    torch.float16: onnx.TensorProto.FLOAT16,
    torch.int32: onnx.TensorProto.INT32,
    torch.int64: onnx.TensorProto.INT64,
}



def onnx_dtype(dtype: torch.dtype) -> int:
    return _ONNX_DTYPES[dtype]


def _nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """Every node, including those of subgraphs (If/Loop/Scan bodies)."""
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            for sub in [attribute.g] if attribute.HasField("g") else list(attribute.graphs):
                yield from _nodes(sub)


def tensorrt_problems(model: onnx.ModelProto) -> list[str]:
    """Why TensorRT 10.x would refuse this graph (empty when it parses): opset, operators, Resize modes."""
    problems = []
    low, high = TENSORRT10_OPSETS
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx") and not low <= opset.version <= high:
            problems.append(f"opset {opset.version} is outside TensorRT 10's {low}..{high}")
    unsupported: dict[str, int] = {}
    for node in _nodes(model.graph):
        if node.domain not in ("", "ai.onnx") or node.op_type not in TENSORRT10_OPS:
            name = f"{node.domain}::{node.op_type}" if node.domain else node.op_type
            unsupported[name] = unsupported.get(name, 0) + 1
        elif node.op_type == "Resize":
            attrs = {a.name: a for a in node.attribute}
            mode = attrs["mode"].s if "mode" in attrs else b"nearest"
            if mode not in TENSORRT_RESIZE_MODES:
                problems.append(f"Resize node {node.name!r} uses mode {mode.decode()} (TensorRT: nearest/linear only)")
            if "antialias" in attrs and attrs["antialias"].i:
                problems.append(f"Resize node {node.name!r} antialiases (TensorRT does not)")
    problems += [f"operator {name} ({count} nodes) is not supported by TensorRT 10" for name, count in unsupported.items()]
    return problems


def dims_problems(model: onnx.ModelProto, spec: GraphSpec) -> list[str]:
    """Inputs and outputs must be exactly the spec's: names, order, dtypes, fixed dims, named dynamic axes."""
    problems = []
    for kind, values, expected in (("input", model.graph.input, spec.inputs), ("output", model.graph.output, spec.outputs)):
        names = [v.name for v in values]
        if names != [t.name for t in expected]:
            problems.append(f"{spec.name} {kind}s are {names}, expected {[t.name for t in expected]}")
            continue
        for value, tensor in zip(values, expected):
            kind_type = value.type.tensor_type
            if kind_type.elem_type != onnx_dtype(tensor.dtype):
                problems.append(f"{tensor.name}: element type {onnx.TensorProto.DataType.Name(kind_type.elem_type)}, "
                                f"expected {onnx.TensorProto.DataType.Name(onnx_dtype(tensor.dtype))}")
            dims = [d.dim_param if d.HasField("dim_param") else (d.dim_value if d.HasField("dim_value") else None)
                    for d in kind_type.shape.dim]
            if dims != list(tensor.dims):
                problems.append(f"{tensor.name}: dims {dims}, expected {list(tensor.dims)}")
    return problems


def foldable_nodes(model: onnx.ModelProto) -> list[str]:
    """Nodes whose inputs are all constants (left unfolded); empty after constant folding."""
    constants = {init.name for init in model.graph.initializer}
    constants.add("")  # omitted optional inputs
    foldable = []
    for node in model.graph.node:
        if node.op_type == "Constant":
            constants.update(node.output)
        elif node.input and all(name in constants for name in node.input):
            foldable.append(f"{node.op_type} {node.name!r}")
    return foldable


def fold_constants(model: onnx.ModelProto) -> onnx.ModelProto:
    """Constant folding and dead-node removal (onnxscript's optimizer, no size limit on folded weights)."""
    import onnxscript.optimizer

    return onnxscript.optimizer.optimize(model, input_size_limit=1 << 31, output_size_limit=1 << 31)


def validate(path: Path, spec: GraphSpec, tensorrt: bool = True) -> onnx.ModelProto:
    """Full ONNX check (with strict shape inference), explicit dims, folded constants, and (``tensorrt``, all but
    the ONNX Runtime-only int8 graphs) TensorRT 10 operators.

    Returns the loaded model; raises :class:`GraphError` listing every problem.
    """
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:
        raise GraphError(f"{path.name} fails the ONNX checker: {err}") from err
    model = onnx.load(str(path))
    problems = dims_problems(model, spec)
    problems += [f"{name} could be folded into a constant" for name in foldable_nodes(model)]
    if tensorrt:
        problems += tensorrt_problems(model)
    if problems:
        raise GraphError(f"{path.name} is not deployable:\n  " + "\n  ".join(problems))
    return model
