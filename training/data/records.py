"""The records readers produce: a multi-way parallel row of sentences, and one dictionary word pair."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations


@dataclass(frozen=True)
class ParallelRow:
    """Translations of one sentence, language tag -> text (a pair is a 2-language row).

    The mapping is copied (keys sorted) on construction; treat it as read-only. Rows are hashable and
    compare equal when they hold the same texts under the same tags, whatever the order given.
    """

    texts: Mapping[str, str]

    def __post_init__(self) -> None:
        if not self.texts:
            raise ValueError("a ParallelRow needs at least one language")
        for lang, text in self.texts.items():
            if not lang or not isinstance(lang, str) or not isinstance(text, str):
                raise ValueError(f"language tags and texts must be non-empty str / str, got {lang!r}: {text!r}")
        # A plain dict (not a MappingProxyType) so rows pickle into data-loader workers.
        object.__setattr__(self, "texts", dict(sorted(self.texts.items())))

    def __hash__(self) -> int:
        return hash(tuple(self.texts.items()))

    @property
    def langs(self) -> tuple[str, ...]:
        """Language tags of this row, sorted."""
        return tuple(self.texts)

    def pairs(self) -> list[tuple[str, str, str, str]]:
        """Every ``(lang_a, lang_b, text_a, text_b)`` with ``lang_a < lang_b``: n(n-1)/2 of them."""
        return [(a, b, self.texts[a], self.texts[b]) for a, b in combinations(self.langs, 2)]


@dataclass(frozen=True)
class WordPair:
    """One bilingual dictionary entry: ``src`` (in ``src_lang``) translates to ``tgt`` (in ``tgt_lang``)."""

    src: str
    tgt: str
    src_lang: str
    tgt_lang: str
