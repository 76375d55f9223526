"""Sentence pairs from a tab-separated file, two of its columns chosen as the two languages."""

from __future__ import annotations

from pathlib import Path

from xalign.training.data.errors import DataError
from xalign.training.data.lines import read_lines
from xalign.training.data.records import ParallelRow


def read_tsv_pairs(path: Path, src_lang: str, tgt_lang: str, columns: tuple[int, int] = (0, 1)) -> list[ParallelRow]:
    """Rows ``{src_lang: line[columns[0]], tgt_lang: line[columns[1]]}`` of a TAB-separated file.

    Texts are stripped; blank lines and rows with an empty side are skipped. ``DataError`` naming file
    and line when a line has too few columns.
    """
    if src_lang == tgt_lang:
        raise ValueError(f"source and target language must differ, both are {src_lang!r}")
    if len(columns) != 2 or min(columns) < 0 or columns[0] == columns[1]:
        raise ValueError(f"columns must be two different non-negative indices, got {columns}")
    needed = max(columns) + 1
    rows: list[ParallelRow] = []
    for number, line in enumerate(read_lines(Path(path)), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < needed:
            raise DataError(path, f"expected at least {needed} TAB-separated columns, found {len(fields)}", number)
        src, tgt = fields[columns[0]].strip(), fields[columns[1]].strip()
        if src and tgt:
            rows.append(ParallelRow({src_lang: src, tgt_lang: tgt}))
    return rows
