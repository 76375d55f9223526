"""Backpack sense maths: the sense table, the ONNX senses engine and the per-token decomposition."""
