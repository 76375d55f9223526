"""A job's pairs as the API serves them: ``pairs.jsonl``, one JSON object per pair, best first.

Each object has the fields of ``POST /v1/bitext/mine``'s pairs: ``src_id`` and ``tgt_id`` are the sentence
numbers of the first occurrence of each text in its side (the mining job embeds each distinct text once),
``score`` is null where undefined. Written once, atomically, when the mining is done.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from xalign.runtime.mining.atomic_files import replacing
from xalign.runtime.mining.corpus import Side
from xalign.runtime.mining.scoring import PairArrays

PAIRS = "pairs.jsonl"


def write_pairs_jsonl(path: Path, pairs: PairArrays, src: Side, tgt: Side) -> None:
    """Write ``pairs`` (rows of the distinct texts of each side) to ``path`` as JSON lines, in their order."""
    src_rows, tgt_rows = pairs.src.tolist(), pairs.tgt.tolist()
    src_texts, tgt_texts = src.texts_at(src_rows), tgt.texts_at(tgt_rows)
    src_first, tgt_first = np.flatnonzero(src.first), np.flatnonzero(tgt.first)  # distinct text → sentence
    rows = zip(src_rows, tgt_rows, pairs.score.tolist(), pairs.cosine.tolist(), strict=True)
    with replacing(path) as tmp, tmp.open("w", encoding="utf-8", newline="\n") as out:
        for s, t, score, cosine in rows:
            pair = {
                "src_id": int(src_first[s]),
                "tgt_id": int(tgt_first[t]),
                "src_text": src_texts[s],
                "tgt_text": tgt_texts[t],
                "score": score if math.isfinite(score) else None,
                "cosine": cosine,
            }
            out.write(json.dumps(pair, ensure_ascii=False) + "\n")


def pair_lines(path: Path, offset: int, limit: int | None) -> Iterator[str]:
    """Lines ``offset`` to ``offset + limit`` (to the end when ``limit`` is None) of a pairs file."""
    with path.open(encoding="utf-8") as lines:
        stop = None if limit is None else offset + limit
        yield from itertools.islice(lines, offset, stop)


def read_pairs(path: Path, offset: int, limit: int) -> list[dict[str, object]]:
    """Pairs ``offset`` to ``offset + limit`` as objects."""
    return [json.loads(line) for line in pair_lines(path, offset, limit)]
