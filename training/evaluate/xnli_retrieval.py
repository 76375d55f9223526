"""XNLI retrieval: the 15-way parallel XNLI sentences as a 1-NN retrieval test of each language against English.

XNLI (Conneau et al. 2018) translates the same sentences into 15 languages, 9 of which no training recipe of
this project uses besides English and de/es/fr/ru: retrieval on its test split checks the alignment of languages
a model was not trained on. The sentences are the hypotheses of a split (``test``: 5,010 per language), matched
across languages by (premise group, label) as ``training/data/xnli.py`` reads them. For every non-English
language both directions are scored as in ``tatoeba.py`` (exact cosine 1-NN; correct when it is the same row).
English is embedded once for all languages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from xalign.training.data.xnli import XNLI_LANGS, load_xnli
from xalign.training.evaluate.encoder import Encoder
from xalign.training.evaluate.tatoeba import TatoebaResult, retrieval_accuracy

PIVOT = "en"


@dataclass(frozen=True)
class XnliSentences:
    """Row-aligned hypotheses of one split: ``texts[lang][i]`` translates ``english[i]``."""

    split: str
    english: list[str]
    texts: dict[str, list[str]]  # by non-English language, in the order asked


def read_xnli_sentences(
    xnli_dir: Path, split: str = "test", langs: Sequence[str] = XNLI_LANGS, max_rows: int | None = None
) -> XnliSentences:
    """The hypotheses of ``split`` in English and every other language of ``langs`` (the first ``max_rows``).

    ``FileNotFoundError`` naming a missing file; ``DataError`` when the files disagree (``load_xnli``).
    """
    others = [lang for lang in langs if lang != PIVOT]
    if not others:
        raise ValueError(f"XNLI retrieval needs a language besides {PIVOT!r}, got {list(langs)}")
    rows = load_xnli(Path(xnli_dir), split, (PIVOT, *others)).hypotheses[:max_rows]
    return XnliSentences(
        split=split,
        english=[row.texts[PIVOT] for row in rows],
        texts={lang: [row.texts[lang] for row in rows] for lang in others},
    )


def evaluate_xnli(encoder: Encoder, sentences: XnliSentences) -> list[TatoebaResult]:
    """Retrieval accuracy of every non-English language against English, both directions, in percent."""
    english = encoder.encode(sentences.english)
    results = []
    for lang, texts in sentences.texts.items():
        other = encoder.encode(texts)
        results.append(
            TatoebaResult(
                lang=lang,
                n=len(texts),
                to_eng=retrieval_accuracy(other, english),
                from_eng=retrieval_accuracy(english, other),
            )
        )
    return results
