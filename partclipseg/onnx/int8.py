"""fp32 ONNX -> int8 ONNX for ONNX Runtime on the CPU (docs/deployment.md, "int8 graphs").

ONNX Runtime's own dynamic quantization (``onnxruntime.quantization.quantize_dynamic``): the weights of every
MatMul/Gemm whose second input is a weight are stored as int8 (one scale per output channel), and their activations
are quantized to uint8 per call (``DynamicQuantizeLinear``); ONNX Runtime fuses the pair into
``DynamicQuantizeMatMul`` (AVX-512 VNNI / AVX-VNNI / ARM dot-product kernels). Kept in float, by measurement
(docs/deployment.md): the activation x activation MatMuls of attention (``MatMulConstBOnly``), Conv/ConvTranspose
(quantized, slower on the CPU), LayerNorm, Softmax, everything elementwise, and the whole text encoder
(:data:`partclipseg.onnx.export.PER_FRAME_STAGES`: int8 text features cost the most label agreement, and the
trimmed text tower is cheap).
Static quantization with calibration frames from the bundled photos was slower (QDQ) and is not used.

The int8 graphs are for ONNX Runtime only (TensorRT quantizes from its own calibration, never from these): they
are checked with the ONNX checker, the declared inputs/outputs and ONNX Runtime parity, not the TensorRT 10
allow-list (:func:`partclipseg.onnx.checks.validate` with ``tensorrt=False``).
"""
from __future__ import annotations

import logging
from pathlib import Path

INT8_OPS = ("MatMul", "Gemm")  # quantized op types (weights int8, activations uint8 per call)
INT8_SETTINGS = {"ops": list(INT8_OPS), "weights": "int8 per channel",
                 "activations": "uint8 dynamic", "MatMulConstBOnly": True}  # in the cache key: a change re-exports


def quantize_int8(fp32: Path, out: Path) -> None:
    """Write the int8 version of the fp32 graph at ``fp32`` to ``out`` (see the module docstring)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    root.addFilter(_no_preprocessing_advice)
    try:
        quantize_dynamic(Path(fp32), Path(out), op_types_to_quantize=list(INT8_OPS), per_channel=True,
                         reduce_range=False, weight_type=QuantType.QInt8,
                         extra_options={"MatMulConstBOnly": INT8_SETTINGS["MatMulConstBOnly"]})
    finally:
        root.removeFilter(_no_preprocessing_advice)


def _no_preprocessing_advice(record: logging.LogRecord) -> bool:
    """The quantizer advises shape-inference pre-processing on the root logger; our graphs carry full shapes."""
    return "pre-processing before quantization" not in record.getMessage()
