"""Training objectives, one loss per module; pure torch, independent of data loading.

- ``translation_ranking``: in-batch InfoNCE translation ranking (DAP sentence level; LaBSE En-X baseline).
- ``multiway_contrastive``: translation ranking over every language pair of N-way parallel tuples.
- ``representation_translation``: DAP's token-level representation translation learning head (RTL).
- ``align_mlm``: ALIGN-MLM's masking, MLM head and loss, and dictionary alignment of input word embeddings.
- ``grad_cache``: gradient caching, a large-batch loss back-propagated one chunk of embeddings at a time.
"""
