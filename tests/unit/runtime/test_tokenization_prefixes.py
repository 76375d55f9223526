"""``TextTokenizer``: a prefix per text, untruncated counts from one tokenisation, ids and token strings."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_models import build_tokenizer

from xalign.runtime.tokenization import TextTokenizer

LIMIT = 12
LONG = " ".join("abcdefghijklmnopqrst")  # 20 one-token words


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> TextTokenizer:
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    build_tokenizer().save(str(path))
    return TextTokenizer(path, LIMIT, "query: ")


def _untruncated(text: str) -> list[int]:
    return build_tokenizer().encode(text).ids


def test_each_text_gets_its_own_prefix(tokenizer: TextTokenizer) -> None:
    ids = tokenizer.encode_ids(["hi", "hi", "hi"], ["", "passage: ", "query: "])
    assert ids == [_untruncated("hi"), [*_untruncated("passage: hi")[: LIMIT - 1], 3], _untruncated("query: hi")]
    assert tokenizer.encode_ids(["hi"]) == tokenizer.encode_ids(["hi"], ["query: "])
    with pytest.raises(ValueError, match="1 prefixes for 2 texts"):
        tokenizer.encode_ids(["a", "b"], ["x"])


@pytest.mark.parametrize("prefix", ["", "query: "])
def test_counts_are_the_untruncated_lengths(tokenizer: TextTokenizer, prefix: str) -> None:
    texts = [LONG, "hi", LONG[:13]]
    ids, counts = tokenizer.encode_counted(texts, [prefix] * 3)
    assert ids == tokenizer.encode_ids(texts, [prefix] * 3)
    assert counts == [len(_untruncated(prefix + text)) for text in texts]
    assert max(len(x) for x in ids) == LIMIT < counts[0]


def test_tokenize_gives_the_same_ids_with_their_strings(tokenizer: TextTokenizer) -> None:
    first, second = tokenizer.tokenize([LONG, "ab"], ["", ""])
    assert (first.truncated, second.truncated) == (True, False)
    assert second.ids == _untruncated("ab") and second.tokens == ["[CLS]", "a", "##b", "[SEP]"]
    assert first.ids == tokenizer.encode_ids([LONG], [""])[0] and len(first.tokens) == LIMIT
    assert tokenizer.encode_one(LONG) == (tokenizer.encode_ids([LONG])[0], True)


def test_a_tokenizer_without_post_processor_counts_plainly(tmp_path: Path) -> None:
    bare = build_tokenizer()
    bare.post_processor = None
    bare.save(str(tmp_path / "tokenizer.json"))
    plain = TextTokenizer(tmp_path / "tokenizer.json", LIMIT)
    _, counts = plain.encode_counted([LONG])
    assert counts == [20]
