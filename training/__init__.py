"""Training: adapts encoders so that translations land together, and evaluates them.

Owns corpora and dictionary readers (``data/``), model definitions and base-model
sources (``models/``), one loss per module (``objectives/``), evaluation harnesses
(``evaluate/``), recipes and the ``xalign-train`` CLI. It may import ``modelstore``
and the pure-numpy parts of ``service.search``; nothing online imports it.
"""
