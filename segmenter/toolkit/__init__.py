"""Model tools: benchmark, INT8 and ONNX export, and scoring against reference RTTMs."""
