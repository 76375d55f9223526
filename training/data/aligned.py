"""Line-aligned corpora: one file per language, line i of every file a translation of the others.

Multi30k (``train.en`` …), NTREX-128 (``newstest2019-ref.deu.txt`` …) and WMT newstest
(``newstest2013.de`` …) all have this shape; ``training.data.shipped`` finds their files by language.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from xalign.training.data.errors import DataError
from xalign.training.data.lines import read_lines
from xalign.training.data.records import ParallelRow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlignedRead:
    """Rows read from line-aligned files: ``lines`` per file, ``dropped`` rows with an empty side."""

    rows: list[ParallelRow]
    lines: int
    dropped: int


def load_aligned(files: Mapping[str, Path]) -> AlignedRead:
    """Read line-aligned files (language tag -> path) into rows, with counts of lines and dropped rows.

    Texts are stripped of surrounding whitespace; a row where any language is empty is dropped (and
    counted). ``DataError`` naming the shortest file and its count when the files differ in length, or
    naming file and line on invalid UTF-8 / NUL bytes.
    """
    if len(files) < 2:
        raise ValueError(f"line-aligned reading needs at least two languages, got {sorted(files)}")
    columns = {lang: read_lines(Path(path)) for lang, path in files.items()}
    check_equal_counts(files, {lang: len(lines) for lang, lines in columns.items()})
    langs = list(columns)
    rows: list[ParallelRow] = []
    dropped = 0
    for texts in zip(*(columns[lang] for lang in langs), strict=True):
        stripped = [text.strip() for text in texts]
        if all(stripped):
            rows.append(ParallelRow(dict(zip(langs, stripped, strict=True))))
        else:
            dropped += 1
    return AlignedRead(rows=rows, lines=len(columns[langs[0]]), dropped=dropped)


def read_aligned(files: Mapping[str, Path]) -> list[ParallelRow]:
    """Rows of line-aligned files (language tag -> path); see ``load_aligned``. Logs how many rows were dropped."""
    result = load_aligned(files)
    if result.dropped:
        shown = ", ".join(str(path) for path in files.values())
        log.warning("dropped %d of %d rows with an empty side (%s)", result.dropped, result.lines, shown)
    return result.rows


def check_equal_counts(files: Mapping[str, Path], counts: Mapping[str, int]) -> None:
    """``DataError`` naming the shortest file and its count (and the longest) unless all counts are equal."""
    short = min(counts, key=lambda lang: counts[lang])
    long = max(counts, key=lambda lang: counts[lang])
    if counts[short] != counts[long]:
        raise DataError(
            files[short],
            f"has {counts[short]} lines but {files[long]} has {counts[long]}; line-aligned files need equal counts",
        )
