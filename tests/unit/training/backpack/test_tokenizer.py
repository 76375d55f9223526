"""The Backpack tokenizer: fixed special ids, byte-level round trips, determinism."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_backpack import tiny_texts

from xalign.training.models.backpack_tokenizer import SPECIAL_TOKENS, load_tokenizer, save_tokenizer, train_tokenizer

UNSEEN = ["Ein Hund läuft über die Straße.", "Привет, мир 🙂", "日本語のテキスト", "tab\tand  two spaces"]


def test_special_ids_are_fixed() -> None:
    tokenizer = train_tokenizer(tiny_texts(), vocab_size=320)
    assert [tokenizer.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3]
    assert SPECIAL_TOKENS == ("<pad>", "<unk>", "<s>", "</s>")


def test_vocab_size_and_merges() -> None:
    tokenizer = train_tokenizer(tiny_texts(), vocab_size=320)
    assert tokenizer.get_vocab_size() == 320
    # Frequent words became single tokens (a space, marked Ġ, starts every word).
    assert tokenizer.encode("man").tokens == ["<s>", "Ġman"]
    with pytest.raises(ValueError, match="at least"):
        train_tokenizer(tiny_texts(), vocab_size=100)


@pytest.mark.parametrize("text", [*tiny_texts()[::17], *UNSEEN])
def test_round_trip_without_unknown_words(text: str) -> None:
    tokenizer = train_tokenizer(tiny_texts(), vocab_size=320)
    encoding = tokenizer.encode(text)
    assert encoding.ids[0] == 2  # <s>
    assert 1 not in encoding.ids  # byte-level: nothing is unknown
    assert 3 not in encoding.ids  # no </s>: the last position is the last word
    assert tokenizer.decode(encoding.ids) == " " + text


def test_training_is_deterministic(tmp_path: Path) -> None:
    first = save_tokenizer(train_tokenizer(tiny_texts(), vocab_size=350), tmp_path / "a" / "tokenizer.json")
    second = save_tokenizer(train_tokenizer(tiny_texts(), vocab_size=350), tmp_path / "b" / "tokenizer.json")
    assert first.read_bytes() == second.read_bytes()
    other = train_tokenizer(list(reversed(tiny_texts()))[:40], vocab_size=350)
    assert other.to_str() != first.read_text(encoding="utf-8")


def test_save_and_load(tmp_path: Path) -> None:
    tokenizer = train_tokenizer(tiny_texts(), vocab_size=320)
    loaded = load_tokenizer(save_tokenizer(tokenizer, tmp_path / "tokenizer.json"))
    for text in UNSEEN:
        assert loaded.encode(text).ids == tokenizer.encode(text).ids


def test_loading_refuses_other_special_ids(tmp_path: Path) -> None:
    tokenizer = train_tokenizer(tiny_texts(), vocab_size=320)
    raw = tokenizer.to_str().replace('"<pad>"', '"[PAD]"')
    (tmp_path / "tokenizer.json").write_text(raw, encoding="utf-8")
    with pytest.raises(ValueError, match="special tokens"):
        load_tokenizer(tmp_path / "tokenizer.json")
