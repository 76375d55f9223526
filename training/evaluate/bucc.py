"""BUCC-2018 parallel sentence mining (Zweigenbaum et al. 2018), scored as LASER's ``tasks/bucc`` does.

Files (one language pair, one split): ``{pair}.{split}.{src}`` and ``{pair}.{split}.{tgt}`` with
lines ``id TAB sentence``, and ``{pair}.{split}.gold`` with lines ``src-id TAB tgt-id``.

Procedure, after LASER's ``bucc.sh`` and ``bucc.py``:

1. Identical sentences are merged before mining (``mine_bitexts.py --unify``), so each distinct
   text is embedded and mined once.
2. Mining: ratio margin, k = 4, retrieval ``max`` (``--mode mine --retrieval max --margin ratio -k 4``).
3. A text that occurs under more than one id is dropped from the candidates (``bucc.py`` cannot
   map it back to one id). Gold pairs with such a sentence therefore cannot be found and count as
   misses; in the de-en sample that is 4 of 1,038 gold pairs.
4. The threshold that maximises F1 against the gold is chosen (``BuccOptimize``: candidates by
   descending score, the midpoint between the best cut and the next score), and precision, recall
   and F1 are recomputed for the candidates with score ≥ threshold (``BuccExtract``).

LASER chooses the threshold on the training split and applies it to the test split; with only the
sample split here, threshold and F1 come from the same data (an optimistic, oracle-threshold F1, as
reported for BUCC training data). Precision, recall and F1 are in percent.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

from xalign.runtime.margin import MinedPair, MiningConfig, mine

# The readers live in training.data.bucc (no faiss, no torch); imported here so their old names keep working.
from xalign.training.data.bucc import BuccCorpus, IdPair, bucc_files, read_bucc, read_bucc_gold, read_bucc_side
from xalign.training.evaluate.encoder import Encoder

__all__ = [
    "BUCC_MINING",
    "BuccCorpus",
    "BuccResult",
    "IdPair",
    "bucc_files",
    "candidate_scores",
    "cap_bucc",
    "evaluate_bucc",
    "optimize_threshold",
    "read_bucc",
    "read_bucc_gold",
    "read_bucc_side",
    "score_at",
]

# LASER's bucc.sh: --mode mine --retrieval max --margin ratio -k 4 (all candidates kept).
BUCC_MINING = MiningConfig(margin="ratio", k=4, retrieval="max", threshold=None)


@dataclass(frozen=True)
class BuccResult:
    """Best-threshold scores; precision, recall and F1 in percent, counts of pairs."""

    precision: float
    recall: float
    f1: float
    threshold: float
    gold: int
    extracted: int
    correct: int


def cap_bucc(corpus: BuccCorpus, max_sentences: int) -> BuccCorpus:
    """Keep at most ``max_sentences`` per side for a quick run, always keeping every gold sentence.

    Per side: all sentences of gold pairs, then the first others in file order up to the cap (so a cap
    below the number of gold sentences keeps just those). File order is preserved.
    """
    if max_sentences < 1:
        raise ValueError(f"max_sentences must be positive, got {max_sentences}")
    src_ids, src_texts = _cap_side(corpus.src_ids, corpus.src_texts, {s for s, _ in corpus.gold}, max_sentences)
    tgt_ids, tgt_texts = _cap_side(corpus.tgt_ids, corpus.tgt_texts, {t for _, t in corpus.gold}, max_sentences)
    return replace(corpus, src_ids=src_ids, src_texts=src_texts, tgt_ids=tgt_ids, tgt_texts=tgt_texts)


def _cap_side(ids: list[str], texts: list[str], keep: set[str], cap: int) -> tuple[list[str], list[str]]:
    room = max(cap - len(keep), 0)
    kept_ids: list[str] = []
    kept_texts: list[str] = []
    for sid, text in zip(ids, texts, strict=True):
        if sid in keep or room > 0:
            room -= sid not in keep
            kept_ids.append(sid)
            kept_texts.append(text)
    return kept_ids, kept_texts


def candidate_scores(
    corpus: BuccCorpus, pairs: list[MinedPair], src_unique: list[str], tgt_unique: list[str]
) -> dict[IdPair, float]:
    """Map pairs mined over the distinct texts back to (src-id, tgt-id) → score, as ``bucc.py`` does.

    ``pairs`` index ``src_unique``/``tgt_unique``; a text found under several ids is dropped.
    """
    src_id = _single_id(corpus.src_ids, corpus.src_texts)
    tgt_id = _single_id(corpus.tgt_ids, corpus.tgt_texts)
    scores: dict[IdPair, float] = {}
    for p in pairs:
        s, t = src_id.get(src_unique[p.src]), tgt_id.get(tgt_unique[p.tgt])
        if s is not None and t is not None:
            scores[(s, t)] = max(p.score, scores.get((s, t), p.score))
    return scores


def _single_id(ids: list[str], texts: list[str]) -> dict[str, str]:
    counts = Counter(texts)
    return {text: sid for sid, text in zip(ids, texts, strict=True) if counts[text] == 1}


def optimize_threshold(candidates: dict[IdPair, float], gold: frozenset[IdPair]) -> BuccResult:
    """Choose the threshold that maximises F1 on ``gold`` and score the candidates at it (LASER ``bucc.py``).

    The threshold is the midpoint between the score of the best cut and the next lower score (the
    lowest score itself when the best cut keeps every candidate; LASER would index past the end there).
    With no correct candidate at all, threshold 0 and zero scores, as LASER.
    """
    items = sorted(candidates.items(), key=lambda item: -item[1])
    best_f1, threshold, correct = 0.0, 0.0, 0
    for i, (pair, score) in enumerate(items):
        correct += pair in gold
        if correct:
            f1 = 2 * correct / (i + 1 + len(gold))  # = 2PR / (P + R)
            if f1 > best_f1:
                best_f1 = f1
                threshold = (score + items[i + 1][1]) / 2 if i + 1 < len(items) else score
    return score_at(candidates, gold, threshold)


def score_at(candidates: dict[IdPair, float], gold: frozenset[IdPair], threshold: float) -> BuccResult:
    """Precision, recall and F1 (percent) of the candidates with score ≥ ``threshold`` (``BuccExtract``)."""
    extracted = {pair for pair, score in candidates.items() if score >= threshold}
    correct = len(extracted & gold)
    if correct == 0:
        return BuccResult(0.0, 0.0, 0.0, threshold, len(gold), len(extracted), 0)
    precision, recall = correct / len(extracted), correct / len(gold)
    f1 = 2 * precision * recall / (precision + recall)
    return BuccResult(100 * precision, 100 * recall, 100 * f1, threshold, len(gold), len(extracted), correct)


def evaluate_bucc(encoder: Encoder, corpus: BuccCorpus, config: MiningConfig = BUCC_MINING) -> BuccResult:
    """Embed the distinct texts of both sides, mine with ``config`` and score at the best threshold."""
    src_unique = list(dict.fromkeys(corpus.src_texts))
    tgt_unique = list(dict.fromkeys(corpus.tgt_texts))
    pairs = mine(encoder.encode(src_unique), encoder.encode(tgt_unique), config)
    return optimize_threshold(candidate_scores(corpus, pairs, src_unique, tgt_unique), corpus.gold)
