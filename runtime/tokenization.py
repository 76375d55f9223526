"""Tokenisation for ONNX encoders: the published ``tokenizer.json``, truncation, and padding to a batch."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tokenizers import Encoding, Tokenizer

# Pad tokens of the tokenizer families we publish (XLM-R/E5, BERT, GPT-2 style); the first found wins.
_PAD_TOKENS = ("<pad>", "[PAD]", "<|pad|>")


@dataclass(frozen=True)
class Tokenized:
    """One text as the model sees it: ids and their token strings (prefix and special tokens included)."""

    ids: list[int]
    tokens: list[str]
    truncated: bool  # truncation to ``max_length`` cut the text


@dataclass(frozen=True)
class Batch:
    """Padded model inputs for one batch."""

    input_ids: npt.NDArray[np.int64]  # (batch, seq)
    attention_mask: npt.NDArray[np.int64]  # (batch, seq), 1 for real tokens
    token_counts: list[int]  # real tokens per text, for usage accounting


class TextTokenizer:
    """A ``tokenizers`` tokenizer that prefixes, truncates to ``max_length`` and pads batches."""

    def __init__(self, path: Path, max_length: int, prefix: str = "") -> None:
        self._tokenizer = Tokenizer.from_file(str(path))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length)
        self.max_length = max_length
        self.prefix = prefix
        self.pad_id = self._find_pad_id()

    def _find_pad_id(self) -> int:
        for token in _PAD_TOKENS:
            found = self._tokenizer.token_to_id(token)
            if found is not None:
                return found
        return 0

    def _encode(self, texts: Sequence[str], prefixes: Sequence[str] | None) -> list[Encoding]:
        """Encodings of ``texts``, each after its prefix (``prefixes[i]``; None: the tokenizer's own prefix)."""
        if prefixes is not None and len(prefixes) != len(texts):
            raise ValueError(f"{len(prefixes)} prefixes for {len(texts)} texts")
        heads = prefixes if prefixes is not None else [self.prefix] * len(texts)
        # NFC first: the tokenizers normaliser drops the second of two combining accents (tokenizers #2116).
        return self._tokenizer.encode_batch(
            [head + unicodedata.normalize("NFC", text) for head, text in zip(heads, texts, strict=True)]
        )

    def encode_ids(self, texts: Sequence[str], prefixes: Sequence[str] | None = None) -> list[list[int]]:
        """Token ids of each text: NFC-normalised, prefix applied, special tokens added, truncated.

        ``prefixes`` gives each text its own prefix (a query and passages in one batch); None: ``prefix``.
        """
        return [e.ids for e in self._encode(texts, prefixes)]

    def encode_counted(
        self, texts: Sequence[str], prefixes: Sequence[str] | None = None
    ) -> tuple[list[list[int]], list[int]]:
        """Token ids as ``encode_ids`` makes them, and the tokens each text takes untruncated.

        A text was cut where its count exceeds its ids; the count costs no second tokenisation.
        """
        encodings = self._encode(texts, prefixes)
        return [e.ids for e in encodings], [self._untruncated(e) for e in encodings]

    def tokenize(self, texts: Sequence[str], prefixes: Sequence[str] | None = None) -> list[Tokenized]:
        """Each text's ids and token strings as ``encode_ids`` makes them, and whether truncation cut it."""
        return [Tokenized(e.ids, e.tokens, bool(e.overflowing)) for e in self._encode(texts, prefixes)]

    def _untruncated(self, encoding: Encoding) -> int:
        """Tokens of the text before truncation (prefix and special tokens included)."""
        if not encoding.overflowing:
            return len(encoding.ids)
        # Each overflowing piece carries its own special tokens; the untruncated text has them once.
        processor = self._tokenizer.post_processor
        specials = processor.num_special_tokens_to_add(False) if processor is not None else 0
        return len(encoding.ids) + sum(len(piece.ids) - specials for piece in encoding.overflowing)

    def encode_one(self, text: str) -> tuple[list[int], bool]:
        """Token ids of one text exactly as ``encode_ids`` makes them, and whether truncation cut the text."""
        (encoding,) = self._encode([text], None)
        return encoding.ids, bool(encoding.overflowing)

    def encode_fragment(self, text: str) -> list[int]:
        """Token ids of a piece of text as it would continue another: no prefix, no special tokens."""
        return self._tokenizer.encode(unicodedata.normalize("NFC", text), add_special_tokens=False).ids

    @property
    def vocab_size(self) -> int:
        """Ids the tokenizer can produce, added (special) tokens included."""
        return int(self._tokenizer.get_vocab_size(with_added_tokens=True))

    def token_texts(self, size: int) -> list[str]:
        """The text of every id below ``size``, special tokens spelled out; ids unknown to the tokenizer: ""."""
        return self._tokenizer.decode_batch([[i] for i in range(size)], skip_special_tokens=False)

    def pad(self, ids: Sequence[Sequence[int]]) -> Batch:
        """Pad token-id lists to the longest one."""
        width = max((len(x) for x in ids), default=0)
        input_ids = np.full((len(ids), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for row, seq in enumerate(ids):
            input_ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        return Batch(input_ids=input_ids, attention_mask=mask, token_counts=[len(x) for x in ids])

    def __call__(self, texts: Sequence[str], prefixes: Sequence[str] | None = None) -> Batch:
        """Tokenise and pad ``texts`` in one step."""
        return self.pad(self.encode_ids(texts, prefixes))
