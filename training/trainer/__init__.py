"""The trainer: runs a recipe (``training.recipes``) on a transformers encoder, on one or many processes.

Modules, one concept each:

- ``sources``: the recipe's data read into examples in a fixed order, with sha256 records of every file;
- ``order``: the epoch permutations from ``(seed, epoch)``, the resumable cursor, and the per-rank slices;
- ``batches``: rows to tokenized tensors for the objectives (pairs, multi-way tables, masked texts, words);
- ``tasks``: one adapter per objective name (batch -> unweighted loss), and their registry;
- ``train_module``: encoder + tasks, one forward per micro-step giving the weighted total loss;
- ``optim``: AdamW with linear warmup and linear / cosine / no decay;
- ``checkpoint``: transformers folder + ``training_state.pt`` + ``xalign_checkpoint.json``;
- ``metrics_log``: ``metrics.jsonl`` and ``loss_curve.png``;
- ``dev_eval``: Tatoeba accuracy of the model in training (monitoring only);
- ``distributed``: torchrun process group and DDP (gloo on CPU);
- ``distributed_gather``: every process's embeddings as in-batch negatives, with exact gradients;
- ``frozen_cache``: per-sentence arrays on disk (memory-mapped shards + index);
- ``frozen_states``: the frozen layers' output of a batch, computed once per text through that cache;
- ``epoch_mining``: per-epoch hard negatives and grouped batches with the model in training;
- ``build``: everything a run needs, fresh or resumed; ``loop``: the step loop and ``train()``;
- ``provenance``: code revision and library versions.

Entry point: ``training.trainer.loop.train(recipe)`` or ``xalign-train train RECIPE.toml``.
"""
