"""One side of a mining job as read from disk: its files, their sentences and the distinct texts among them.

A side is one or more UTF-8 text files, or folders of shard files (every visible file, sorted by name), read
in the order given; ``.gz`` files are decompressed on the fly. Only ``\\n`` ends a line (``\\r\\n`` too, its
``\\r`` dropped); a leading BOM is dropped; lines that are blank after stripping hold no sentence and are
skipped. Two formats:

* ``plain``: one sentence per line, kept as written (LASER's ``mine_bitexts.py`` keys its texts the same way);
* ``ids``: ``id TAB sentence`` per line, as the BUCC-2018 files (``training/data/bucc.py``); the sentence is
  stripped, as LASER's ``bucc.py`` compares it, and an id may occur once per side.

Duplicates are unified as LASER's ``--unify`` does: each distinct text is embedded and mined once, and the
distinct texts are numbered in order of first occurrence (the order ``training/evaluate/bucc.py`` mines
them in). A text found under several ids cannot be mapped back to one id, so with ``ids`` such a text keeps
no id (:attr:`Side.single_ids` holds ``None``) and the job drops its pairs, as ``training/evaluate/bucc.py``
(after LASER's ``bucc.py``) drops them.

Reading streams: a side keeps one byte per sentence (is it the first occurrence of its text), a 16-byte
digest per distinct text while unifying, and with ``ids`` one id per distinct text; the texts themselves
are read again from the files when shards are embedded and when the mined pairs are written.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, get_args

import numpy as np
import numpy.typing as npt

TextFormat = Literal["plain", "ids"]
TEXT_FORMATS: tuple[str, ...] = get_args(TextFormat)

_CHUNK = 1 << 20
# Lines between two progress reports while unifying (a report per line would cost more than the hashing).
PROGRESS_EVERY = 4096


class CorpusError(ValueError):
    """A side cannot be mined: a file is missing, unreadable or malformed, or the side holds no sentence."""


@dataclass(frozen=True)
class InputFile:
    """One input file as found at the start of a job: absolute path, sha256 and size as stored, line count."""

    path: Path
    sha256: str
    bytes: int
    lines: int


@dataclass(frozen=True)
class Sentence:
    """A sentence of a side and, in the ``ids`` format, its id."""

    text: str
    id: str | None = None


def side_files(paths: Sequence[Path | str], side: str) -> list[Path]:
    """The files of one side: each path a file, or a folder whose visible files are taken sorted by name.

    ``CorpusError`` naming the side and the path when a path does not exist or a folder holds no file.
    """
    if not paths:
        raise CorpusError(f"{side}: no input file given")
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted((p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")), key=str)
            if not found:
                raise CorpusError(f"{side}: folder {path} holds no file")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise CorpusError(f"{side}: {path} does not exist")
    return files


def open_bytes(path: Path) -> BinaryIO:
    """The bytes of a file, decompressed when its name ends in ``.gz``."""
    if path.suffix == ".gz":
        return gzip.GzipFile(path, "rb")  # type: ignore[return-value]  # a binary file object as open() gives
    return path.open("rb")


def describe_file(path: Path, advance: Callable[[int], object] = lambda _: None) -> InputFile:
    """Checksum and size of a file as stored, and its line count (a last line without newline counts).

    ``advance(bytes)`` is called as the stored bytes are read. A plain file is read once; a ``.gz`` file
    once as stored and once decompressed, for its lines.
    """
    digest, size, lines = hashlib.sha256(), 0, _LineCount()
    packed = path.suffix == ".gz"
    with _reading(path), path.open("rb") as stored:
        while block := stored.read(_CHUNK):
            digest.update(block)
            size += len(block)
            if not packed:
                lines.add(block)
            advance(len(block))
    if packed:
        with _reading(path), open_bytes(path) as content:
            while block := content.read(_CHUNK):
                lines.add(block)
    return InputFile(path.resolve(), digest.hexdigest(), size, lines.total)


class _LineCount:
    """Lines in a stream of blocks, as ``read_sentences`` splits them: at ``\\n``, a last open line counting."""

    def __init__(self) -> None:
        self.newlines = 0
        self.ends_open = False

    def add(self, block: bytes) -> None:
        self.newlines += block.count(b"\n")
        self.ends_open = not block.endswith(b"\n")

    @property
    def total(self) -> int:
        return self.newlines + self.ends_open


def read_sentences(files: Sequence[Path], fmt: TextFormat) -> Iterator[Sentence]:
    """The sentences of a side's files in order, blank lines skipped; ``CorpusError`` on a malformed line."""
    for _, sentence in _records(files, fmt):
        if sentence is not None:
            yield sentence


def _records(files: Sequence[Path], fmt: TextFormat) -> Iterator[tuple[str, Sentence | None]]:
    """Every line of the files as (``path:line``, its sentence or ``None`` when blank)."""
    for path in files:
        with _reading(path), open_bytes(path) as handle:
            for number, raw in enumerate(handle, start=1):
                where = f"{path}:{number}"
                line = _decode(raw, where)
                yield where, _parse(line.removeprefix("\ufeff") if number == 1 else line, fmt, where)


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn an unreadable or corrupt file (a bad gzip stream included) into ``CorpusError`` naming it."""
    try:
        yield
    except (OSError, EOFError) as exc:
        raise CorpusError(f"{path}: cannot be read ({exc})") from exc


def _decode(raw: bytes, where: str) -> str:
    line = raw.removesuffix(b"\n").removesuffix(b"\r")
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{where}: invalid UTF-8 ({exc.reason}) at byte {exc.start} of the line") from exc


def _parse(line: str, fmt: TextFormat, where: str) -> Sentence | None:
    if fmt == "plain":
        return Sentence(line) if line.strip() else None
    sid, tab, text = line.partition("\t")
    if not tab or not sid:
        if not line.strip():
            return None
        raise CorpusError(f"{where}: expected 'id<TAB>sentence' (the ids format)")
    text = text.strip()
    return Sentence(text, sid) if text else None


@dataclass(frozen=True)
class Side:
    """One side after unification: its files, how many sentences and distinct texts it holds, and how to
    read the distinct texts back.

    ``first`` (sentences,) bool marks the sentences whose text occurs for the first time: the distinct text
    number u is the u-th such sentence. ``single_ids`` (ids format only) holds, per distinct text, its id,
    or ``None`` when the text occurs under several ids.
    """

    name: str
    files: tuple[InputFile, ...]
    fmt: TextFormat
    first: npt.NDArray[np.bool_]
    single_ids: tuple[str | None, ...] | None

    @property
    def sentences(self) -> int:
        """Non-blank lines read."""
        return int(self.first.shape[0])

    @property
    def unique(self) -> int:
        """Distinct texts: what is embedded and mined."""
        return int(self.first.sum())

    @property
    def lines(self) -> int:
        """Lines of all files, blank ones included."""
        return sum(f.lines for f in self.files)

    def texts(self) -> Iterator[str]:
        """The distinct texts in order, read again from the files; ``CorpusError`` if a file changed since."""
        count = 0
        for count, sentence in enumerate(read_sentences([f.path for f in self.files], self.fmt), start=1):
            if count > self.sentences:
                break
            if self.first[count - 1]:
                yield sentence.text
        if count != self.sentences:
            raise CorpusError(f"{self.name}: the files changed while the job read them; start the job again")

    def texts_at(self, wanted: Collection[int]) -> dict[int, str]:
        """Distinct text number → text for the numbers in ``wanted`` (one pass, stops once all are found)."""
        found: dict[int, str] = {}
        needed = set(wanted)
        if not needed:
            return found
        for number, text in enumerate(self.texts()):
            if number in needed:
                found[number] = text
                if len(found) == len(needed):
                    break
        return found


def unify(name: str, files: Sequence[InputFile], fmt: TextFormat, advance: Callable[[int], object]) -> Side:
    """Read a side once and number its distinct texts; ``advance(lines)`` is called as lines are read.

    ``CorpusError`` on a malformed line, an id repeated within the side, or a side without any sentence.
    """
    digests: dict[bytes, int] = {}
    first = bytearray()
    ids = _IdsOfTexts() if fmt == "ids" else None
    pending = 0
    for where, sentence in _records([f.path for f in files], fmt):
        pending += 1
        if pending == PROGRESS_EVERY:
            advance(pending)
            pending = 0
        if sentence is None:
            continue
        before = len(digests)
        number = digests.setdefault(hashlib.blake2b(sentence.text.encode(), digest_size=16).digest(), before)
        first.append(len(digests) > before)
        if ids is not None:
            ids.add(number, sentence, where)
    advance(pending)
    if not first:
        raise CorpusError(f"{name}: no sentence in {', '.join(str(f.path) for f in files)}")
    single = tuple(ids.single) if ids is not None else None
    return Side(name, tuple(files), fmt, np.frombuffer(bytes(first), dtype=np.bool_), single)


class _IdsOfTexts:
    """Per distinct text, its id while it has been seen under one id only; refuses an id seen twice."""

    def __init__(self) -> None:
        self.single: list[str | None] = []
        self._seen: set[str] = set()

    def add(self, number: int, sentence: Sentence, where: str) -> None:
        sid = sentence.id
        if sid is None or sid in self._seen:
            raise CorpusError(f"{where}: id {sid!r} appears twice in this side")
        self._seen.add(sid)
        if number == len(self.single):
            self.single.append(sid)
        else:
            self.single[number] = None
