"""The runtime core: what turns a published version into vectors, pairs and senses, with no HTTP and no torch.

Owns tokenization exactly as the service sends it (``tokenization.py``), onnxruntime sessions and the
dual-encoder (``session.py``, ``onnx_encoder.py``), LASER-style margin mining (``margin.py``), the Backpack
sense maths (``senses/``) and its own exceptions (``errors.py``). The service, training's evaluation, export's
evaluation and the benchmarks all use it; it imports only ``xalign.modelstore`` and never FastAPI or torch.
"""
