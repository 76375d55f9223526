"""MUSE bilingual dictionaries (Conneau et al. 2018) in their two shipped formats.

- ``X-Y.0-5000.txt`` / ``X-Y.5000-6500.txt``: one ``src tgt`` entry a line, separated by a space or a TAB
  (the MUSE train and test splits).
- ``X-Y.dict`` (hunalign): ``TARGET @ SOURCE``, the reverse order: ``en-fr.dict`` holds ``le @ the``.

The format is detected from the content (the first entry), and every line must then follow it. The
file name's ``X-Y`` gives the file's direction; asking for ``Y``->``X`` swaps each entry.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from xalign.training.data.errors import DataError
from xalign.training.data.lines import read_lines
from xalign.training.data.records import WordPair

MuseFormat = Literal["pairs", "hunalign"]

_HUNALIGN_SEP = " @ "
_NAME_LANGS = re.compile(r"^([a-z]{2,3})-([a-z]{2,3})\.")


def read_muse(path: Path, src_lang: str, tgt_lang: str) -> list[WordPair]:
    """Dictionary entries ``src_lang`` -> ``tgt_lang`` in file order.

    ``DataError`` naming file and line for a line of the wrong shape, for NUL bytes (a zero-filled file)
    or invalid UTF-8, for a file with no entries, and when the name's languages are not these two.
    """
    path = Path(path)
    swap = _needs_swap(path, src_lang, tgt_lang)
    numbered = [(n, line.strip()) for n, line in enumerate(read_lines(path), start=1) if line.strip()]
    if not numbered:
        raise DataError(path, "no dictionary entries")
    fmt = detect_format(numbered[0][1])
    entries: list[WordPair] = []
    for number, line in numbered:
        src, tgt = _parse(path, number, line, fmt)
        if swap:
            src, tgt = tgt, src
        entries.append(WordPair(src=src, tgt=tgt, src_lang=src_lang, tgt_lang=tgt_lang))
    return entries


def detect_format(line: str) -> MuseFormat:
    """``hunalign`` when an entry reads ``TARGET @ SOURCE``, else ``pairs`` (``src tgt``)."""
    return "hunalign" if _HUNALIGN_SEP in line else "pairs"


def _parse(path: Path, number: int, line: str, fmt: MuseFormat) -> tuple[str, str]:
    """(entry in the file's first language, entry in its second) of one non-blank line."""
    if fmt == "hunalign":
        target, sep, source = line.partition(_HUNALIGN_SEP)
        if not sep or _HUNALIGN_SEP in source or not target.strip() or not source.strip():
            raise DataError(path, f"expected hunalign 'TARGET @ SOURCE' like the first entry, got {line!r}", number)
        return source.strip(), target.strip()
    fields = line.split()
    if len(fields) != 2:
        raise DataError(path, f"expected 'src tgt' (space or TAB) like the first entry, got {line!r}", number)
    return fields[0], fields[1]


def _needs_swap(path: Path, src_lang: str, tgt_lang: str) -> bool:
    """Whether the file, named ``X-Y.…``, is the reverse direction; files named otherwise are taken as given."""
    match = _NAME_LANGS.match(path.name)
    if match is None:
        return False
    named = (match.group(1), match.group(2))
    if named == (src_lang, tgt_lang):
        return False
    if named == (tgt_lang, src_lang):
        return True
    raise DataError(path, f"file name says {named[0]}-{named[1]}, but {src_lang}-{tgt_lang} was asked for")
