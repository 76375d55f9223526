"""Bitext mining at corpus scale: a streaming kNN and margin engine, and the resumable mining job.

The engine (exact kNN over chunks of either side, approximate indexes for sides that do not fit, margin
scoring and the retrieval modes on arrays) serves the service's ``/v1/bitext/mine``, the BUCC evaluation
and the ``xalign-mine`` batch job alike; ``runtime/margin.py`` is its small-input face.
"""
