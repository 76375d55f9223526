"""The service: embeddings, bitext mining over FAISS indexes and sense decomposition over HTTP.

Owns the settings, the app factory, one router per capability (``routes/``), the
onnxruntime engine and micro-batching (``engine/``), FAISS indexes and margin mining
(``search/``), Backpack senses (``senses/``) and ``xalign-serve``. It imports
``modelstore`` and never ``training`` or ``export``: no torch at serving time.
"""
