"""Inference engine: tokenisation, onnxruntime sessions and the encoder that joins them (no torch)."""
