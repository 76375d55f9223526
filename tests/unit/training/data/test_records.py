"""ParallelRow and WordPair: language order, pairs, equality, hashing and pickling."""

from __future__ import annotations

import pickle

import pytest

from xalign.training.data.records import ParallelRow, WordPair


def test_row_langs_are_sorted_and_pairs_cover_every_language_pair_once() -> None:
    row = ParallelRow({"fr": "chat", "en": "cat", "de": "Katze"})
    assert row.langs == ("de", "en", "fr")
    assert row.pairs() == [
        ("de", "en", "Katze", "cat"),
        ("de", "fr", "Katze", "chat"),
        ("en", "fr", "cat", "chat"),
    ]
    assert ParallelRow({"en": "cat", "de": "Katze"}).pairs() == [("de", "en", "Katze", "cat")]


def test_rows_compare_and_hash_by_content_and_do_not_follow_the_callers_dict() -> None:
    texts = {"en": "cat", "de": "Katze"}
    row = ParallelRow(texts)
    texts["en"] = "dog"  # the row copied the mapping
    assert row.texts["en"] == "cat"
    same = ParallelRow({"de": "Katze", "en": "cat"})
    assert row == same
    assert hash(row) == hash(same)
    assert len({row, same, ParallelRow({"en": "cat", "fr": "chat"})}) == 2
    assert pickle.loads(pickle.dumps(row)) == row  # noqa: S301 (our own bytes)


def test_row_refuses_no_languages_and_non_text() -> None:
    with pytest.raises(ValueError, match="at least one language"):
        ParallelRow({})
    with pytest.raises(ValueError, match="non-empty str"):
        ParallelRow({"": "x"})


def test_word_pair_is_frozen() -> None:
    pair = WordPair(src="the", tgt="le", src_lang="en", tgt_lang="fr")
    with pytest.raises(AttributeError):
        pair.src = "a"  # type: ignore[misc]
