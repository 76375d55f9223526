"""Backpack sense maths: the ONNX senses engine, the per-token decomposition and the plain records it returns."""
