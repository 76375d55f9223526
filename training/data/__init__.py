"""Training data: readers for the shipped corpora and dictionaries, and the row transforms after them.

Everything here is plain Python and NumPy (no torch, no faiss), so it can be used and tested anywhere.

- ``records``: ``ParallelRow`` (language tag -> sentence, 2-way or multi-way) and ``WordPair``.
- ``errors``: ``DataError``, a ``ValueError`` naming the file and line of bad data.
- ``lines``: strict UTF-8 line reading (NUL bytes and invalid UTF-8 refused with file and line).
- ``aligned``: one file per language, line-aligned (Multi30k, NTREX-128, WMT newstest).
- ``shipped``: the file of each language in those corpora's folders (``multi30k``, ``ntrex``, ``wmt_newstest``).
- ``tsv``, ``bucc``, ``xnli``, ``muse``: TSV sentence pairs, BUCC-2018 gold pairs, XNLI as multi-way
  premises and hypotheses, MUSE bilingual dictionaries (``src tgt`` and hunalign ``TARGET @ SOURCE``).
- ``processing``: length filter, exact dedupe, seeded shuffle, projection onto languages, En-X pairs.
- ``corpus``: sha256 and line counts of the files a model was trained on, for its manifest.
- ``hard_negatives``: the nearest non-translations of each pair, with a paraphrase margin.
- ``grouped_batches``: a data order whose micro-batches are groups of near neighbours.
"""
