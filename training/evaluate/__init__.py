"""Evaluation harnesses: how well a model aligns sentences across languages.

``tatoeba`` (1-NN accuracy both directions, LASER's Tatoeba test sets), ``bucc`` (BUCC-2018 F1 with
LASER margin mining from ``runtime.margin``), ``report`` (markdown page and the manifest's
``evaluation`` dict) and ``encoder`` (the ``Encoder`` protocol and a transformers implementation;
the store-backed ONNX encoder lives in ``service.engine``). Nothing here imports torch at import time.
"""
