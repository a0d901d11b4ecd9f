"""The exported ONNX graphs: export and cache, CPU validation, fp16 conversion (docs/deployment.md)."""
