"""XNLI (Conneau et al. 2018) as multi-way parallel text: the same premises and hypotheses in 15 languages.

Files ``{split}-{lang}.tsv`` (``dev`` 2,490 rows, ``test`` 5,010) hold ``premise TAB hypothesis TAB label``.
Each premise comes on consecutive lines, once per label (three hypotheses: entailment, neutral,
contradiction), and the files are row-aligned across languages, with one known exception:
``test-ru.tsv`` swaps the hypotheses (and labels) of lines 2806-2807. Hypotheses are therefore matched
by (premise group, label), not by line, which is exact wherever a label occurs once in its group.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from xalign.training.data.aligned import check_equal_counts
from xalign.training.data.errors import DataError
from xalign.training.data.lines import read_lines
from xalign.training.data.records import ParallelRow

XNLI_LANGS = ("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh")

# (premise group, label, occurrence of that label within the group)
HypothesisKey = tuple[int, str, int]


@dataclass(frozen=True)
class XnliRows:
    """One XNLI split as parallel rows: one per premise (deduplicated) and one per hypothesis."""

    premises: list[ParallelRow]
    hypotheses: list[ParallelRow]


@dataclass(frozen=True)
class _XnliFile:
    path: Path
    lines: int
    group_starts: list[int]  # 1-based line where each premise group starts
    premises: list[str]  # one per group
    hypotheses: dict[HypothesisKey, str]
    key_lines: dict[HypothesisKey, int]


def xnli_files(xnli_dir: Path, split: str = "dev", langs: Sequence[str] = XNLI_LANGS) -> dict[str, Path]:
    """Paths ``{split}-{lang}.tsv`` per language; ``FileNotFoundError`` naming a missing one."""
    files = {lang: Path(xnli_dir) / f"{split}-{lang}.tsv" for lang in langs}
    for path in files.values():
        if not path.is_file():
            raise FileNotFoundError(f"{path}: XNLI file not found")
    return files


def load_xnli(xnli_dir: Path, split: str = "dev", langs: Sequence[str] = XNLI_LANGS) -> XnliRows:
    """Premise rows (one per premise group) and hypothesis rows (matched by group and label) of a split.

    ``DataError`` naming the file (and line) when files differ in length, premise groups, or labels.
    Hypothesis rows are sorted by (group, label); rows with an empty text in any language are skipped.
    """
    if len(langs) < 2:
        raise ValueError(f"XNLI rows need at least two languages, got {list(langs)}")
    files = xnli_files(xnli_dir, split, langs)
    parsed = {lang: _parse(path) for lang, path in files.items()}
    check_equal_counts(files, {lang: f.lines for lang, f in parsed.items()})
    reference = parsed[langs[0]]
    for lang in langs[1:]:
        _check_matches(reference, parsed[lang])
    premises = [_row({lang: f.premises[g] for lang, f in parsed.items()}) for g in range(len(reference.premises))]
    keys = sorted(reference.hypotheses)
    hypotheses = [_row({lang: f.hypotheses[key] for lang, f in parsed.items()}) for key in keys]
    return XnliRows(
        premises=[row for row in premises if row is not None],
        hypotheses=[row for row in hypotheses if row is not None],
    )


def read_xnli(xnli_dir: Path, split: str = "dev", langs: Sequence[str] = XNLI_LANGS) -> list[ParallelRow]:
    """Multi-way rows of a split: the premises (deduplicated), then the hypotheses; see ``load_xnli``."""
    rows = load_xnli(xnli_dir, split, langs)
    return rows.premises + rows.hypotheses


def _parse(path: Path) -> _XnliFile:
    lines = read_lines(path)
    starts: list[int] = []
    premises: list[str] = []
    hypotheses: dict[HypothesisKey, str] = {}
    key_lines: dict[HypothesisKey, int] = {}
    seen: Counter[str] = Counter()
    for number, line in enumerate(lines, start=1):
        fields = [field.strip() for field in line.split("\t")]
        if len(fields) != 3 or not fields[2]:
            raise DataError(path, "expected 'premise<TAB>hypothesis<TAB>label'", number)
        premise, hypothesis, label = fields
        if not premises or premise != premises[-1]:
            starts.append(number)
            premises.append(premise)
            seen.clear()
        key = (len(premises) - 1, label, seen[label])
        seen[label] += 1
        hypotheses[key] = hypothesis
        key_lines[key] = number
    return _XnliFile(path, len(lines), starts, premises, hypotheses, key_lines)


def _check_matches(reference: _XnliFile, other: _XnliFile) -> None:
    """``DataError`` unless ``other`` has the same premise groups and (group, label) keys as ``reference``."""
    for mine, theirs in zip(other.group_starts, reference.group_starts, strict=False):
        if mine != theirs:
            where = f"a premise starts at line {mine} here but at line {theirs} in {reference.path}"
            raise DataError(other.path, f"{where}; the files are not row-aligned", mine)
    if len(other.group_starts) != len(reference.group_starts):
        counts = f"{len(other.group_starts)} premises but {reference.path} has {len(reference.group_starts)}"
        raise DataError(other.path, counts)
    for key, number in other.key_lines.items():
        if key not in reference.hypotheses:
            where = f"label {key[1]!r} (occurrence {key[2] + 1}) is not in this premise group of {reference.path}"
            raise DataError(other.path, where, number)


def _row(texts: Mapping[str, str]) -> ParallelRow | None:
    return ParallelRow(texts) if all(texts.values()) else None
