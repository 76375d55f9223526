"""TSV sentence pairs: chosen columns, skipped blanks, short lines named by file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_paths import MINI

from xalign.training.data.errors import DataError
from xalign.training.data.tsv import read_tsv_pairs


def test_columns_pick_the_two_sides() -> None:
    path = MINI / "muse" / "hi-en.0-5000.txt"  # a real TAB-separated file
    rows = read_tsv_pairs(path, "hi", "en")
    assert len(rows) == 10
    assert rows[0].texts == {"hi": "के", "en": "of"}
    flipped = read_tsv_pairs(path, "en", "hi", columns=(1, 0))
    assert flipped == rows


def test_xnli_premise_and_hypothesis_columns(tmp_path: Path) -> None:
    rows = read_tsv_pairs(MINI / "xnli" / "dev-en.tsv", "en", "en-hyp", columns=(0, 1))
    assert len(rows) == 12
    assert rows[1].texts["en-hyp"] == "He didn't say a word."


def test_blank_lines_and_empty_sides_are_skipped_short_lines_refused(tmp_path: Path) -> None:
    path = tmp_path / "pairs.tsv"
    path.write_text("a\tb\n\n \t c\nd\te\n", encoding="utf-8")
    assert [row.texts for row in read_tsv_pairs(path, "x", "y")] == [{"x": "a", "y": "b"}, {"x": "d", "y": "e"}]
    path.write_text("a\tb\nno tab here\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"pairs\.tsv:2: expected at least 2 TAB-separated columns, found 1"):
        read_tsv_pairs(path, "x", "y")
    with pytest.raises(ValueError, match="must differ"):
        read_tsv_pairs(path, "x", "x")
