"""Row transforms: length filter, exact dedupe, seeded shuffle (same order in another process), projections."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from data_paths import MINI, REPO

from xalign.training.data.aligned import read_aligned
from xalign.training.data.processing import deduplicate, english_centric, filter_length, restrict, shuffled
from xalign.training.data.records import ParallelRow
from xalign.training.data.shipped import multi30k


def _rows() -> list[ParallelRow]:
    return read_aligned(multi30k(MINI / "multi30k", "train"))


def test_filter_length_bounds_and_ratio() -> None:
    rows = [
        ParallelRow({"en": "a cat", "de": "eine Katze"}),  # 5 / 10 chars: ratio 2
        ParallelRow({"en": "x", "de": "ein viel zu langer Satz"}),  # ratio 23
        ParallelRow({"en": "long " * 30, "de": "lang " * 30}),  # 150 chars
    ]
    assert filter_length(rows) == rows  # defaults: 1..1000 chars, no ratio
    assert filter_length(rows, max_chars=100) == rows[:2]
    assert filter_length(rows, min_chars=2) == [rows[0], rows[2]]
    assert filter_length(rows, max_ratio=2.0) == [rows[0], rows[2]]
    assert filter_length(rows, max_ratio=1.9) == [rows[2]]
    with pytest.raises(ValueError, match="max_ratio"):
        filter_length(rows, max_ratio=0.5)


def test_deduplicate_keeps_first_occurrence_of_full_row_duplicates() -> None:
    a, b = ParallelRow({"en": "a", "de": "A"}), ParallelRow({"en": "b", "de": "B"})
    same_en_other_de = ParallelRow({"en": "a", "de": "AA"})
    assert deduplicate([a, b, ParallelRow({"de": "A", "en": "a"}), same_en_other_de, b]) == [a, b, same_en_other_de]


def test_shuffle_is_a_permutation_fixed_by_the_seed() -> None:
    rows = _rows()
    first = shuffled(rows, seed=13)
    assert first == shuffled(rows, seed=13)
    assert first != rows
    assert first != shuffled(rows, seed=14)
    assert sorted(first, key=rows.index) == rows
    assert rows == _rows()  # input untouched


_CHILD = """
import json
from pathlib import Path
from xalign.training.data.aligned import read_aligned
from xalign.training.data.processing import shuffled
from xalign.training.data.shipped import multi30k
rows = read_aligned(multi30k(Path({mini!r}) / "multi30k", "train"))
print(json.dumps([row.texts["en"] for row in shuffled(rows, seed=13)]))
"""


def test_shuffle_order_is_the_same_in_a_fresh_process_with_other_hash_seed() -> None:
    code = _CHILD.format(mini=str(MINI))
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [row.texts["en"] for row in shuffled(_rows(), seed=13)]


def test_restrict_projects_and_drops_rows_missing_a_language() -> None:
    rows = [*_rows()[:3], ParallelRow({"en": "only", "fr": "seulement"})]
    projected = restrict(rows, ["en", "de"])
    assert len(projected) == 3
    assert all(row.langs == ("de", "en") for row in projected)
    assert projected[0].texts["en"] == rows[0].texts["en"]
    loose = restrict(rows, ["en", "de", "fr"], require_all=False)
    assert [row.langs for row in loose] == [("de", "en", "fr")] * 3 + [("en", "fr")]


def test_english_centric_turns_n_way_rows_into_n_minus_1_pairs() -> None:
    rows = _rows()  # 12 four-way rows
    pairs = english_centric([*rows, ParallelRow({"de": "ohne", "fr": "sans"})])
    assert len(pairs) == 12 * 3
    assert all("en" in pair.langs and len(pair.langs) == 2 for pair in pairs)
    assert [pair.langs for pair in pairs[:3]] == [("cs", "en"), ("de", "en"), ("en", "fr")]
    assert pairs[1].texts == {"en": rows[0].texts["en"], "de": rows[0].texts["de"]}
    assert len(english_centric(rows, pivot="de")) == 36
