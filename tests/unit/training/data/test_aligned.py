"""Line-aligned corpora on real excerpts (Multi30k, NTREX with CRLF, WMT newstest) and their errors."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from data_paths import MINI

from xalign.training.data.aligned import load_aligned, read_aligned
from xalign.training.data.errors import DataError
from xalign.training.data.shipped import multi30k, ntrex, wmt_newstest


def test_multi30k_rows_are_four_way_and_line_aligned() -> None:
    rows = read_aligned(multi30k(MINI / "multi30k", "train"))
    assert len(rows) == 12
    assert all(row.langs == ("cs", "de", "en", "fr") for row in rows)
    assert rows[0].texts["en"] == "Two young, White males are outside near many bushes."
    assert rows[0].texts["de"] == "Zwei junge weiße Männer sind im Freien in der Nähe vieler Büsche."
    assert rows[2].texts["fr"] == "Une petite fille grimpe dans une maisonnette en bois."
    assert rows[2].texts["cs"] == "Malá dívka leze do dřevěného hračkového domu."


def test_ntrex_crlf_lines_lose_their_carriage_returns() -> None:
    files = ntrex(MINI / "ntrex128", ["en", "de", "fr"])
    assert files["de"].name == "newstest2019-ref.deu.txt"
    assert files["en"].name == "newstest2019-src.eng.txt"
    rows = read_aligned(files)
    assert len(rows) == 8
    assert rows[0].texts["en"] == "Welsh AMs worried about 'looking like muppets'"
    assert (
        rows[0].texts["de"] == "Mitglieder der Nationalversammlung für Wales befürchten Verwechslungen mit den Muppets"
    )
    assert not any("\r" in text for row in rows for text in row.texts.values())


def test_wmt_newstest_takes_every_language_of_the_set_by_default() -> None:
    files = wmt_newstest(MINI / "wmt_newstest", "newstest2013")
    assert list(files) == ["cs", "de", "en", "es", "fr", "ru"]
    rows = read_aligned(files)
    assert len(rows) == 8
    assert rows[0].texts["en"] == "A Republican strategy to counter the re-election of Obama"
    assert len(read_aligned(wmt_newstest(MINI / "wmt_newstest", "newstest2013", ["en", "ru"]))[0].texts) == 2


def test_unequal_line_counts_name_the_short_file_and_its_count(tmp_path: Path) -> None:
    for lang in ("en", "de", "fr"):
        shutil.copy(MINI / "multi30k" / f"train.{lang}", tmp_path / f"train.{lang}")
    lines = (tmp_path / "train.de").read_text(encoding="utf-8").splitlines(keepends=True)
    (tmp_path / "train.de").write_text("".join(lines[:9]), encoding="utf-8")
    with pytest.raises(DataError, match=r"train\.de: has 9 lines but .*train\.(en|fr) has 12") as caught:
        read_aligned(multi30k(tmp_path, "train", ["en", "de", "fr"]))
    assert caught.value.path == tmp_path / "train.de"
    assert caught.value.line is None


def test_bad_utf8_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "train.en").write_text("one\ntwo\nthree\n", encoding="utf-8")
    (tmp_path / "train.de").write_bytes(b"eins\nzwei\ndr\xc3\n")
    with pytest.raises(DataError, match=r"train\.de:3: invalid UTF-8"):
        read_aligned(multi30k(tmp_path, "train", ["en", "de"]))


def test_rows_with_an_empty_side_are_dropped_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "train.en").write_text(" one \ntwo\n\nfour\n", encoding="utf-8")
    (tmp_path / "train.de").write_text("eins\t\n   \ndrei\nvier\n", encoding="utf-8")
    files = multi30k(tmp_path, "train", ["en", "de"])
    result = load_aligned(files)
    assert (result.lines, result.dropped) == (4, 2)
    assert [row.texts for row in result.rows] == [{"de": "eins", "en": "one"}, {"de": "vier", "en": "four"}]
    with caplog.at_level(logging.WARNING, logger="xalign.training.data.aligned"):
        assert read_aligned(files) == result.rows
    assert "dropped 2 of 4 rows" in caplog.text


def test_one_language_is_not_a_parallel_corpus() -> None:
    with pytest.raises(ValueError, match="at least two languages"):
        read_aligned({"en": MINI / "multi30k" / "train.en"})
