"""The texts a Backpack recipe names, read with the ``training.data`` readers, and the files they came from.

Rows are selected by position (``[start, stop)`` of the file's lines) before anything is dropped, so
``multi30k train de [0, 2000)`` and ``[0, 8000)`` are nested subsets of the same file; empty lines and empty
sides of a pair are then skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xalign.training.backpack_training.recipe import ParallelSource, TextSource
from xalign.training.data.aligned import read_aligned
from xalign.training.data.corpus import Corpus, describe_corpus
from xalign.training.data.lines import read_lines
from xalign.training.data.shipped import multi30k, ntrex, wmt_newstest
from xalign.training.data.xnli import read_xnli, xnli_files


def source_files(source: TextSource | ParallelSource) -> dict[str, Path]:
    """Language -> file of a source (XNLI: the ``{split}-{lang}.tsv`` file)."""
    langs = (source.lang,) if isinstance(source, TextSource) else (source.src, source.tgt)
    if source.kind == "lines":
        return {langs[0]: source.path}
    if source.kind == "multi30k":
        return multi30k(source.path, source.split or "", langs)
    if source.kind == "ntrex":
        return ntrex(source.path, langs)
    if source.kind == "wmt":
        return wmt_newstest(source.path, source.split or "", langs)
    return xnli_files(source.path, source.split or "", langs)


def read_texts(source: TextSource) -> list[str]:
    """The non-empty, stripped texts of rows ``[start, stop)`` of one monolingual source."""
    if source.kind == "xnli":
        other = "de" if source.lang == "en" else "en"  # the XNLI reader pairs languages; keep one side
        rows = read_xnli(source.path, source.split or "", (source.lang, other))
        texts = [row.texts[source.lang] for row in rows]
    else:
        texts = read_lines(source_files(source)[source.lang])
    picked = (text.strip() for text in texts[source.start : source.stop])
    return [text for text in picked if text]


def read_all_texts(sources: Sequence[TextSource]) -> list[str]:
    """The texts of every source, in recipe order."""
    return [text for source in sources for text in read_texts(source)]


def read_pairs(source: ParallelSource) -> list[tuple[str, str]]:
    """(English, target) pairs of rows ``[start, stop)``; rows with an empty side are dropped."""
    files = source_files(source)
    for path in files.values():
        length = len(read_lines(path))
        if source.stop is not None and source.stop > length:
            raise ValueError(f"{path}: rows [{source.start}, {source.stop}) asked for, but it has {length}")
    rows = read_aligned(files)  # Multi30k / NTREX / WMT have no empty lines, so row i is line i
    return [(row.texts[source.src], row.texts[source.tgt]) for row in rows[source.start : source.stop]]


def describe_sources(sources: Sequence[TextSource | ParallelSource], data_root: Path) -> list[Corpus]:
    """sha256 and line counts of every file behind ``sources`` (paths relative to ``data_root`` when inside)."""
    corpora: list[Corpus] = []
    for source in sources:
        files = source_files(source)
        inside = all(Path(path).resolve().is_relative_to(Path(data_root).resolve()) for path in files.values())
        rows = f"[{source.start}:{source.stop if source.stop is not None else ''}]"
        name = f"{source.kind}/{source.split or '-'}/{'-'.join(files)}{rows}"
        corpora.append(describe_corpus(name, files, root=data_root if inside else None))
    return corpora
