"""BUCC gold pairs as parallel rows, and the evaluation module's old names still reaching the moved readers."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_paths import BUCC_MINI

import xalign.training.data.bucc as data_bucc
import xalign.training.evaluate.bucc as eval_bucc
from xalign.training.data.bucc import read_bucc, read_bucc_pairs
from xalign.training.data.errors import DataError


def test_gold_pairs_become_rows_in_gold_id_order() -> None:
    rows = read_bucc_pairs(BUCC_MINI)
    assert len(rows) == 40
    assert all(row.langs == ("de", "en") for row in rows)
    corpus = read_bucc(BUCC_MINI)
    de = dict(zip(corpus.src_ids, corpus.src_texts, strict=True))
    en = dict(zip(corpus.tgt_ids, corpus.tgt_texts, strict=True))
    s, t = min(corpus.gold)
    assert rows[0].texts == {"de": de[s], "en": en[t]}
    assert {(row.texts["de"], row.texts["en"]) for row in rows} == {(de[s], en[t]) for s, t in corpus.gold}


def test_malformed_side_is_a_data_error_with_line(tmp_path: Path) -> None:
    for name in ("de-en.sample.de", "de-en.sample.en", "de-en.sample.gold"):
        (tmp_path / name).write_bytes((BUCC_MINI / name).read_bytes())
    lines = (tmp_path / "de-en.sample.en").read_text(encoding="utf-8").splitlines()
    lines[6] = "no tab on this line"
    (tmp_path / "de-en.sample.en").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"de-en\.sample\.en:7: expected 'id<TAB>sentence'") as caught:
        read_bucc_pairs(tmp_path)
    assert caught.value.line == 7


def test_old_evaluation_import_names_are_the_moved_readers() -> None:
    for name in ("BuccCorpus", "read_bucc", "read_bucc_side", "read_bucc_gold", "bucc_files"):
        assert getattr(eval_bucc, name) is getattr(data_bucc, name)
