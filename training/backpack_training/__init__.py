"""Training Backpack LMs: the English source model, SENSIA adaptation and its baselines.

- ``recipe``: the TOML recipe as frozen dataclasses (``load_backpack_recipe``), checked on construction.
- ``texts``: the recipe's monolingual texts and parallel pairs, read with ``training.data``.
- ``batches``: encoding (``<s>`` ... ``</s>``), padding and seeded epoch batches.
- ``loop``: ``train_backpack`` (AdamW, warmup + decay, metrics.jsonl, loss curve, final checkpoint, resume).
- ``checkpoints``: mid-run checkpoints (``save_every``) a resumed run continues from exactly.
- ``manifest``: the ``training_manifest.json`` beside each checkpoint.

The CLI is ``xalign-train backpack RECIPE.toml``; the recipes live in ``training/recipes/backpack/``.
"""
