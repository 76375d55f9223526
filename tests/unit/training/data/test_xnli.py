"""XNLI as multi-way rows: premises deduplicated, hypotheses matched by (premise, label), misalignment named."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from data_paths import MINI

from xalign.training.data.errors import DataError
from xalign.training.data.xnli import load_xnli, read_xnli

XNLI = MINI / "xnli"


def test_dev_premises_are_deduplicated_and_hypotheses_aligned() -> None:
    rows = load_xnli(XNLI, "dev", ["en", "de", "fr", "zh"])
    assert len(rows.premises) == 4  # 12 lines, each premise on 3
    assert len(rows.hypotheses) == 12
    assert rows.premises[0].texts["en"] == "And he said, Mama, I'm home."
    assert rows.premises[0].texts["de"] == "und er hat gesagt, Mama ich bin daheim."
    said = next(row for row in rows.hypotheses if row.texts["en"] == "He didn't say a word.")
    assert said.texts["de"] == "Er sagte kein Wort."
    assert read_xnli(XNLI, "dev", ["en", "de", "fr", "zh"]) == rows.premises + rows.hypotheses


def test_test_ru_swapped_hypotheses_are_matched_by_label_not_line() -> None:
    # Lines 2806-2807 of test-ru hold the contradiction before the neutral hypothesis; en and de the reverse.
    rows = load_xnli(XNLI, "test", ["en", "de", "ru"])
    assert len(rows.premises) == 2
    perks = next(row for row in rows.hypotheses if row.texts["en"] == "Federal employees do get other perks though.")
    assert perks.texts["ru"] == "Однако федеральные служащие получают другие льготы."
    assert perks.texts["de"].startswith("Bundesangestellte erhalte")


def _with_german(folder: Path, lines: list[str]) -> Path:
    """``folder`` as an XNLI dev folder: the test English file and ``lines`` as the German one."""
    shutil.copy(XNLI / "dev-en.tsv", folder / "dev-en.tsv")
    (folder / "dev-de.tsv").write_text("".join(lines), encoding="utf-8")
    return folder


def _german_lines() -> list[str]:
    return (XNLI / "dev-de.tsv").read_text(encoding="utf-8").splitlines(keepends=True)


def test_shifted_rows_are_named_by_file_and_line(tmp_path: Path) -> None:
    lines = _german_lines()
    # Move one hypothesis line of premise 2 to premise 1: the groups no longer line up.
    lines[3] = lines[2].split("\t")[0] + "\t" + lines[3].split("\t", 1)[1]
    with pytest.raises(DataError, match=r"dev-de\.tsv:5: a premise starts at line 5 here but at line 4"):
        load_xnli(_with_german(tmp_path, lines), "dev", ["en", "de"])


def test_a_label_missing_from_its_group_is_named(tmp_path: Path) -> None:
    lines = _german_lines()
    lines[1] = lines[1].replace("\tcontradiction", "\tentailment")
    with pytest.raises(DataError, match=r"dev-de\.tsv:3: label 'entailment' \(occurrence 2\)"):
        load_xnli(_with_german(tmp_path, lines), "dev", ["en", "de"])


def test_short_file_and_missing_column_are_named(tmp_path: Path) -> None:
    lines = _german_lines()
    with pytest.raises(DataError, match=r"dev-de\.tsv: has 9 lines but .*dev-en\.tsv has 12"):
        load_xnli(_with_german(tmp_path, lines[:9]), "dev", ["en", "de"])
    with pytest.raises(DataError, match=r"dev-de\.tsv:4: expected 'premise<TAB>hypothesis<TAB>label'"):
        load_xnli(_with_german(tmp_path, [*lines[:3], "premise only\n"]), "dev", ["en", "de"])
