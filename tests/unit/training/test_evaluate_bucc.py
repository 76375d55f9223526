"""BUCC-2018 reader, capping, LASER's threshold optimisation and F1 on synthetic cases with known answers."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from table_encoder import TableEncoder

from xalign.training.evaluate.bucc import (
    BuccCorpus,
    cap_bucc,
    evaluate_bucc,
    optimize_threshold,
    read_bucc,
    score_at,
)

MINI = Path(__file__).resolve().parents[2] / "data" / "bucc_mini"
SEED = 4


def _unit_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    v = rng.standard_normal((n, d))
    out: np.ndarray = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def test_reads_the_mini_files() -> None:
    corpus = read_bucc(MINI)
    assert corpus.pair == "de-en"
    assert len(corpus.src_ids) == len(corpus.src_texts) == 140
    assert len(corpus.tgt_ids) == len(corpus.tgt_texts) == 140
    assert len(corpus.gold) == 40
    assert ("de-000000003", "en-000007818") in corpus.gold
    assert corpus.src_ids[0] == "de-000000001" and corpus.src_texts[0].startswith("Asien, Teil von Eurasien")


def test_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    for name in ("de-en.sample.en", "de-en.sample.gold"):
        shutil.copy(MINI / name, tmp_path)
    lines = (MINI / "de-en.sample.de").read_text(encoding="utf-8").splitlines()
    lines[4] = "no tab on this line"
    (tmp_path / "de-en.sample.de").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"de-en\.sample\.de:5: expected 'id<TAB>sentence'"):
        read_bucc(tmp_path)


def test_gold_with_unknown_id_is_refused(tmp_path: Path) -> None:
    for name in ("de-en.sample.de", "de-en.sample.en"):
        shutil.copy(MINI / name, tmp_path)
    (tmp_path / "de-en.sample.gold").write_text("de-999\ten-000007818\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"de-en\.sample\.gold: gold pair de-999"):
        read_bucc(tmp_path)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"fr-en\.sample\.fr"):
        read_bucc(tmp_path, pair="fr-en")


def test_cap_keeps_every_gold_sentence_and_file_order() -> None:
    corpus = read_bucc(MINI)
    capped = cap_bucc(corpus, 50)
    assert len(capped.src_ids) == len(capped.tgt_ids) == 50
    assert capped.gold == corpus.gold
    assert {s for s, _ in corpus.gold} <= set(capped.src_ids)
    assert {t for _, t in corpus.gold} <= set(capped.tgt_ids)
    assert capped.src_ids == [i for i in corpus.src_ids if i in set(capped.src_ids)]
    tiny = cap_bucc(corpus, 5)  # below the number of gold sentences: just those
    assert len(tiny.src_ids) == len(tiny.tgt_ids) == 40


def test_optimize_threshold_follows_laser_by_hand() -> None:
    candidates = {("a", "x"): 0.9, ("b", "y"): 0.8, ("c", "z"): 0.7, ("d", "w"): 0.6}
    gold = frozenset({("a", "x"), ("c", "z"), ("e", "v")})
    # Cuts: after 1 → F1 2·1/(1+3) = 0.5; after 2 → 0.4; after 3 → 2·2/(3+3) = 0.667 (best); after 4 → 0.571.
    result = optimize_threshold(candidates, gold)
    assert result.threshold == pytest.approx(0.65)
    assert (result.extracted, result.correct, result.gold) == (3, 2, 3)
    assert result.precision == pytest.approx(200 / 3)
    assert result.recall == pytest.approx(200 / 3)
    assert result.f1 == pytest.approx(200 / 3)


def test_optimize_threshold_edge_cases() -> None:
    gold = frozenset({("a", "x")})
    # Best cut keeps everything: the threshold is the lowest score (LASER would index past the end).
    last = optimize_threshold({("b", "y"): 0.9, ("a", "x"): 0.5}, gold)
    assert last.threshold == 0.5 and last.recall == 100.0 and last.precision == 50.0
    none = optimize_threshold({("b", "y"): 0.9}, gold)
    assert (none.f1, none.precision, none.recall, none.threshold) == (0.0, 0.0, 0.0, 0.0)
    assert score_at({}, gold, 1.0).f1 == 0.0


def _synthetic(rng: np.random.Generator) -> tuple[BuccCorpus, dict[str, np.ndarray]]:
    """10 source and 12 target sentences; 8 gold pairs of which 7 share a concept vector and 1 does not."""
    src_texts = [f"s{i}" for i in range(10)]
    tgt_texts = [f"t{j}" for j in range(12)]
    gold_map = {i: (5 * i + 3) % 12 for i in range(8)}  # source i translates target gold_map[i]
    concepts = _unit_rows(rng, 8, 64)
    table = dict(zip(src_texts + tgt_texts, _unit_rows(rng, 22, 64), strict=True))  # unrelated by default
    for i, j in gold_map.items():
        table[f"s{i}"] = concepts[i]
        noisy = concepts[i] + 0.1 * _unit_rows(rng, 1, 64)[0]
        table[f"t{j}"] = noisy / np.linalg.norm(noisy)
    # Gold pair 7 is a miss by construction: its target is the source's opposite (cosine -1), so neither
    # is among the other's 4 nearest and the pair can never be a candidate.
    table[f"t{gold_map[7]}"] = -concepts[7]
    # A shared component, as real embeddings have (anisotropy): unrelated sentences then sit at a cosine
    # of about 0.25 rather than 0, which keeps the ratio margin of chance pairs near 1.
    common = _unit_rows(rng, 1, 64)[0]
    table = {text: (v + 0.6 * common) / np.linalg.norm(v + 0.6 * common) for text, v in table.items()}
    corpus = BuccCorpus(
        pair="de-en",
        src_ids=[f"de-{i}" for i in range(10)],
        src_texts=src_texts,
        tgt_ids=[f"en-{j}" for j in range(12)],
        tgt_texts=tgt_texts,
        gold=frozenset((f"de-{i}", f"en-{j}") for i, j in gold_map.items()),
    )
    return corpus, table


def test_f1_on_a_synthetic_corpus_with_known_answer() -> None:
    corpus, table = _synthetic(np.random.default_rng(SEED))
    result = evaluate_bucc(TableEncoder(table), corpus)
    # 7 of 8 gold pairs found, nothing else above the threshold: P = 100, R = 87.5, F1 = 2·7/(7+8).
    assert (result.correct, result.extracted, result.gold) == (7, 7, 8)
    assert result.precision == 100.0
    assert result.recall == pytest.approx(87.5)
    assert result.f1 == pytest.approx(100 * 14 / 15)
    assert result.threshold > 1.0  # a ratio margin: real pairs stand out from their neighbourhood


def test_duplicate_sentences_are_mined_once_and_dropped_like_laser() -> None:
    corpus, table = _synthetic(np.random.default_rng(SEED))
    # Source 8 becomes a second copy of source 0 (a different id, identical text): LASER's bucc.py cannot
    # map "s0" back to one id, so gold pair 0 is lost and recall drops to 6/8.
    src_texts = [*corpus.src_texts[:8], "s0", corpus.src_texts[9]]
    corpus = BuccCorpus(corpus.pair, corpus.src_ids, src_texts, corpus.tgt_ids, corpus.tgt_texts, corpus.gold)
    encoder = TableEncoder(table)
    result = evaluate_bucc(encoder, corpus)
    assert encoder.seen.count("s0") == 1  # embedded once (mine_bitexts --unify)
    assert (result.correct, result.gold) == (6, 8)
    assert result.recall == pytest.approx(75.0)


def test_mini_corpus_with_an_oracle_encoder_scores_perfectly() -> None:
    corpus = read_bucc(MINI)
    rng = np.random.default_rng(9)
    table = dict(zip(corpus.src_texts + corpus.tgt_texts, _unit_rows(rng, 280, 64), strict=True))
    src_text = dict(zip(corpus.src_ids, corpus.src_texts, strict=True))
    tgt_text = dict(zip(corpus.tgt_ids, corpus.tgt_texts, strict=True))
    for s, t in corpus.gold:
        table[tgt_text[t]] = table[src_text[s]]
    result = evaluate_bucc(TableEncoder(table), corpus)
    assert (result.f1, result.correct, result.extracted) == (100.0, 40, 40)
