"""The mining job's output: mined pairs as a TSV sorted by descending margin score, written atomically.

One line per pair, no header: ``score TAB source TAB target``, or with the ``ids`` format
``score TAB source-id TAB target-id TAB source TAB target``. Scores have six decimals (LASER's
``mine_bitexts.py`` writes ``{:f}``). Texts are written as read, so a tab inside a plain-format sentence
stays there (readers should split on the first two tabs). With ids, a pair whose source or target text
occurs under several ids is left out (``runtime/mining/corpus.py`` says why).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xalign.runtime.mining.atomic_files import replacing
from xalign.runtime.mining.corpus import Side
from xalign.runtime.mining.scoring import PairArrays


def with_single_ids(pairs: PairArrays, src: Side, tgt: Side) -> PairArrays:
    """The pairs both of whose texts have one id (all of them in the plain format)."""
    if src.single_ids is None or tgt.single_ids is None:
        return pairs
    src_ok = np.array([i is not None for i in src.single_ids], dtype=np.bool_)  # (src distinct,)
    tgt_ok = np.array([i is not None for i in tgt.single_ids], dtype=np.bool_)  # (tgt distinct,)
    return pairs.take(src_ok[pairs.src] & tgt_ok[pairs.tgt])


def write_pairs(path: Path, pairs: PairArrays, src: Side, tgt: Side) -> None:
    """Write ``pairs`` (rows of the distinct texts of ``src`` and ``tgt``) to ``path`` in their order."""
    src_rows, tgt_rows = pairs.src.tolist(), pairs.tgt.tolist()
    src_texts, tgt_texts = src.texts_at(src_rows), tgt.texts_at(tgt_rows)
    with replacing(path) as tmp, tmp.open("w", encoding="utf-8", newline="\n") as out:
        for s, t, score in zip(src_rows, tgt_rows, pairs.score.tolist(), strict=True):
            ids = [] if src.single_ids is None or tgt.single_ids is None else [src.single_ids[s], tgt.single_ids[t]]
            out.write("\t".join([f"{score:.6f}", *[str(i) for i in ids], src_texts[s], tgt_texts[t]]) + "\n")
