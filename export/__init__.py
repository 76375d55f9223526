"""Export: turns checkpoints into verified ONNX models and publishes them in the model store.

Owns the ONNX graphs per model family (pooling and normalisation inside the graph),
quantised variants, the parity check against PyTorch, and ``xalign-export``. It may
import ``training`` (to load checkpoints) and ``modelstore``; the service never imports it.
"""
