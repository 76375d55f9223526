"""BUCC-2018 files (Zweigenbaum et al. 2018): ``id TAB sentence`` per side and gold ``src-id TAB tgt-id``.

Files of one language pair and split: ``{pair}.{split}.{src}``, ``{pair}.{split}.{tgt}`` and
``{pair}.{split}.gold``. ``read_bucc`` gives the whole split (the mining evaluation in
``training.evaluate.bucc`` uses it); ``read_bucc_pairs`` gives just the gold pairs as parallel rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from xalign.training.data.errors import DataError
from xalign.training.data.lines import read_lines
from xalign.training.data.records import ParallelRow

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


def read_bucc_side(path: Path) -> tuple[list[str], list[str]]:
    """Read ``id TAB sentence`` lines; ``DataError`` naming file and line on a malformed or repeated id."""
    ids: list[str] = []
    texts: list[str] = []
    seen: set[str] = set()
    for number, line in enumerate(read_lines(path), start=1):
        sid, tab, text = line.partition("\t")
        if not tab or not sid:
            raise DataError(path, "expected 'id<TAB>sentence'", number)
        if sid in seen:
            raise DataError(path, f"id {sid!r} appears twice", number)
        seen.add(sid)
        ids.append(sid)
        texts.append(text.strip())  # LASER's bucc.py compares stripped sentences
    return ids, texts


def read_bucc_gold(path: Path) -> frozenset[IdPair]:
    """Read ``src-id TAB tgt-id`` lines; ``DataError`` naming file and line on a malformed one."""
    gold: set[IdPair] = set()
    for number, line in enumerate(read_lines(path), start=1):
        fields = line.strip().split("\t")
        if len(fields) != 2 or not all(fields):
            raise DataError(path, "expected 'src-id<TAB>tgt-id'", number)
        gold.add((fields[0], fields[1]))
    return frozenset(gold)


def bucc_langs(pair: str) -> tuple[str, str]:
    """(source, target) language of a pair written ``src-tgt``, e.g. ``de-en``."""
    src, _, tgt = pair.partition("-")
    if not src or not tgt:
        raise ValueError(f"language pair must look like 'de-en', got {pair!r}")
    return src, tgt


def bucc_files(bucc_dir: Path, pair: str = "de-en", split: str = "sample") -> tuple[Path, Path, Path]:
    """Paths of (source side, target side, gold) of ``pair`` (``src-tgt``) and ``split``."""
    src, tgt = bucc_langs(pair)
    folder, stem = Path(bucc_dir), f"{pair}.{split}"
    return folder / f"{stem}.{src}", folder / f"{stem}.{tgt}", folder / f"{stem}.gold"


def read_bucc(bucc_dir: Path, pair: str = "de-en", split: str = "sample") -> BuccCorpus:
    """Read one split; ``DataError`` if a file is malformed or the gold names an id no file has."""
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
            raise DataError(gold_path, f"gold pair {s}\t{t} names an id missing from {src_path} or {tgt_path}")
    return BuccCorpus(pair, src_ids, src_texts, tgt_ids, tgt_texts, gold)


def bucc_gold_rows(corpus: BuccCorpus) -> list[ParallelRow]:
    """The gold pairs as rows ``{src: text, tgt: text}``, sorted by (src-id, tgt-id); empty texts skipped."""
    src_lang, tgt_lang = bucc_langs(corpus.pair)
    src_text = dict(zip(corpus.src_ids, corpus.src_texts, strict=True))
    tgt_text = dict(zip(corpus.tgt_ids, corpus.tgt_texts, strict=True))
    pairs = [(src_text[s], tgt_text[t]) for s, t in sorted(corpus.gold)]
    return [ParallelRow({src_lang: s, tgt_lang: t}) for s, t in pairs if s and t]


def read_bucc_pairs(bucc_dir: Path, pair: str = "de-en", split: str = "sample") -> list[ParallelRow]:
    """Gold sentence pairs of one BUCC split as parallel rows (1,038 for the shipped de-en sample)."""
    return bucc_gold_rows(read_bucc(bucc_dir, pair, split))
