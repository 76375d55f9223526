"""Overload of ``xalign-serve`` on the real model (many clients mining and embedding at once): admission,
probe latency, recovery.

    python -m benchmarks.overload --store store --label after
    python -m benchmarks.overload --store store --label before --checkout /tmp/xalign-old

The server runs in a subprocess (``--threads 2``, ``benchmarks/protocol.py``); ``--checkout DIR`` runs another
checkout's server (``python -m service.cli`` with DIR as working folder and ``PYTHONPATH``) with this venv, so that the
code before a change can be measured with the same client. Phases, one after the other:

1. baseline: 20 sequential one-text embeddings after 3 warm-ups, p50;
2. overload: ``--clients`` (32) clients for ``--seconds`` (60) in a child process, half mining 200 x 200 inline
   sides, half embedding 200 texts, back to back (a refusal is retried after 0.1 s, an impatient client); each
   answer's status, latency and ``Retry-After``; client timeout 120 s; ``/metrics`` polled every 0.5 s for
   ``xalign_queue_texts`` and ``xalign_queue_tokens``; meanwhile a probe sends one text every second;
3. recovery: once the load process has cancelled its requests and closed its connections, one text every
   0.5 s until an answer comes back under 2 x the baseline p50 (at most ``--recovery-limit-s``), then 10 s more;
4. disconnect: one 512-text request alone (its cost), then one whose client closes its socket after 1 s,
   followed at once by a one-text request: that request's latency.

Texts are the protocol's Tatoeba lines (German as mining sources, English as targets), generated text when
the data folder is absent. Each run is recorded under its ``--label`` in ``results/<name>.json``, and
``results/<name>.md`` is rewritten with every recorded run side by side.

Modules: ``workload`` (the plan, texts and request bodies), ``phases`` (the clients of each phase),
``report`` (summaries and the results files), ``run`` (the command line).
"""
