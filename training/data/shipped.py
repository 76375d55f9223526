"""Where the shipped line-aligned corpora keep each language's file (layout of ``../shared/data``).

Every function takes the corpus's own folder (``…/multi30k``, ``…/ntrex128``, ``…/wmt_newstest``),
as ``read_bucc`` and ``read_tatoeba`` do, and returns language tag (ISO 639-1) -> path, ready for
``read_aligned`` and ``describe_corpus``. A missing file raises ``FileNotFoundError`` naming it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

MULTI30K_LANGS = ("en", "de", "fr", "cs")
MULTI30K_SPLITS = ("train", "val")

# NTREX-128 names files by ISO 639-3 (plus script/region); English is the source side.
NTREX_FILES = {
    "en": "newstest2019-src.eng.txt",
    **{
        iso1: f"newstest2019-ref.{code}.txt"
        for iso1, code in {
            "ar": "arb", "bg": "bul", "cs": "ces", "de": "deu", "el": "ell", "es": "spa", "fi": "fin",
            "fr": "fra", "he": "heb", "hi": "hin", "hu": "hun", "it": "ita", "ja": "jpn", "ko": "kor",
            "nl": "nld", "pl": "pol", "pt": "por", "ru": "rus", "sw": "swa", "tr": "tur", "uk": "ukr",
            "vi": "vie", "zh": "zho-CN",
        }.items()
    },
}  # fmt: skip
NTREX_LANGS = ("en", "de", "fr", "cs", "es", "ru")


def multi30k(multi30k_dir: Path, split: str = "train", langs: Sequence[str] = MULTI30K_LANGS) -> dict[str, Path]:
    """Files of a Multi30k split (``train`` 29,000 rows, ``val`` 1,014), 4-way en/de/fr/cs: ``{split}.{lang}``."""
    if split not in MULTI30K_SPLITS:
        raise ValueError(f"Multi30k split must be one of {MULTI30K_SPLITS}, got {split!r}")
    return _existing({lang: Path(multi30k_dir) / f"{split}.{lang}" for lang in langs})


def ntrex(ntrex_dir: Path, langs: Sequence[str] = NTREX_LANGS) -> dict[str, Path]:
    """Files of NTREX-128 (1,997 rows, all languages parallel) by ISO 639-1 code (``de`` -> ``…ref.deu.txt``)."""
    unknown = [lang for lang in langs if lang not in NTREX_FILES]
    if unknown:
        raise ValueError(f"no NTREX file known for {unknown}; known codes: {sorted(NTREX_FILES)}")
    return _existing({lang: Path(ntrex_dir) / NTREX_FILES[lang] for lang in langs})


def wmt_newstest(wmt_dir: Path, name: str = "newstest2013", langs: Sequence[str] | None = None) -> dict[str, Path]:
    """Files ``{name}.{lang}`` of a multi-way WMT test set (e.g. ``newstest2013``: cs de en es fr ru).

    ``langs=None`` takes every language present for ``name``, sorted.
    """
    folder = Path(wmt_dir)
    if langs is None:
        langs = sorted(path.suffix[1:] for path in folder.glob(f"{name}.*"))
        if not langs:
            raise FileNotFoundError(f"{folder}: no files {name}.<lang>")
    return _existing({lang: folder / f"{name}.{lang}" for lang in langs})


def _existing(files: dict[str, Path]) -> dict[str, Path]:
    for path in files.values():
        if not path.is_file():
            raise FileNotFoundError(f"{path}: corpus file not found")
    return files
