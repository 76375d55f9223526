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
from pathlib import Path

from service.search.margin import MinedPair, MiningConfig, mine
from training.evaluate.encoder import Encoder
from training.evaluate.tatoeba import read_lines

# LASER's bucc.sh: --mode mine --retrieval max --margin ratio -k 4 (all candidates kept).
BUCC_MINING = MiningConfig(margin="ratio", k=4, retrieval="max", threshold=None)

IdPair = tuple[str, str]


@dataclass(frozen=True)
class BuccCorpus:
    """One BUCC split: ids and texts of both sides in file order, and the gold (src-id, tgt-id) pairs."""

    pair: str
    src_ids: list[str]
    src_texts: list[str]
    tgt_ids: list[str]
    tgt_texts: list[str]
    gold: frozenset[IdPair]


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


def read_bucc_side(path: Path) -> tuple[list[str], list[str]]:
    """Read ``id TAB sentence`` lines; ``ValueError`` naming file and line on a malformed or repeated id."""
    ids: list[str] = []
    texts: list[str] = []
    seen: set[str] = set()
    for number, line in enumerate(read_lines(path), start=1):
        sid, tab, text = line.partition("\t")
        if not tab or not sid:
            raise ValueError(f"{path}:{number}: expected 'id<TAB>sentence'")
        if sid in seen:
            raise ValueError(f"{path}:{number}: id {sid!r} appears twice")
        seen.add(sid)
        ids.append(sid)
        texts.append(text.strip())  # bucc.py compares stripped sentences
    return ids, texts


def read_bucc_gold(path: Path) -> frozenset[IdPair]:
    """Read ``src-id TAB tgt-id`` lines; ``ValueError`` naming file and line on a malformed one."""
    gold: set[IdPair] = set()
    for number, line in enumerate(read_lines(path), start=1):
        fields = line.strip().split("\t")
        if len(fields) != 2 or not all(fields):
            raise ValueError(f"{path}:{number}: expected 'src-id<TAB>tgt-id'")
        gold.add((fields[0], fields[1]))
    return frozenset(gold)


def bucc_files(bucc_dir: Path, pair: str = "de-en", split: str = "sample") -> tuple[Path, Path, Path]:
    """Paths of (source side, target side, gold) of ``pair`` (``src-tgt``) and ``split``."""
    src, _, tgt = pair.partition("-")
    if not src or not tgt:
        raise ValueError(f"language pair must look like 'de-en', got {pair!r}")
    folder, stem = Path(bucc_dir), f"{pair}.{split}"
    return folder / f"{stem}.{src}", folder / f"{stem}.{tgt}", folder / f"{stem}.gold"


def read_bucc(bucc_dir: Path, pair: str = "de-en", split: str = "sample") -> BuccCorpus:
    """Read one split; ``ValueError`` if a file is malformed or the gold names an id no file has."""
    src_path, tgt_path, gold_path = bucc_files(bucc_dir, pair, split)
    for path in (src_path, tgt_path, gold_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: BUCC file not found")
    src_ids, src_texts = read_bucc_side(src_path)
    tgt_ids, tgt_texts = read_bucc_side(tgt_path)
    gold = read_bucc_gold(gold_path)
    known_src, known_tgt = set(src_ids), set(tgt_ids)
    for s, t in sorted(gold):
        if s not in known_src or t not in known_tgt:
            raise ValueError(f"{gold_path}: gold pair {s}\t{t} names an id missing from {src_path} or {tgt_path}")
    return BuccCorpus(pair, src_ids, src_texts, tgt_ids, tgt_texts, gold)


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
