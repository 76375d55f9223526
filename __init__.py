"""xalign: cross-lingually aligned text embeddings.

The repository's top-level folders are the subpackages (``pyproject.toml`` maps them with setuptools'
``package-dir``): ``xalign.modelstore`` (the store and the artifact contract), ``xalign.runtime`` (tokenization,
ONNX encoders, margin mining, senses maths), ``xalign.training``, ``xalign.export`` and ``xalign.service``.
``docs/architecture.md`` draws the map and the import rules.
"""
