"""Strict reading of UTF-8 text files into lines, refusing NUL bytes and invalid UTF-8 with file and line."""

from __future__ import annotations

from pathlib import Path

from xalign.training.data.errors import DataError


def read_lines(path: Path) -> list[str]:
    """Lines of a UTF-8 file without their ``\\n`` / ``\\r\\n`` endings; a final newline adds no empty line.

    Only ``\\n`` ends a line (as for ``wc -l``): splitting also on ``\\r``, U+2028 or form feeds, as
    ``str.splitlines`` does, would shift line-aligned corpora against each other. A leading BOM is
    dropped. ``DataError`` naming file and line on a NUL byte or invalid UTF-8.
    """
    data = Path(path).read_bytes()
    nul = data.find(b"\0")
    if nul >= 0:
        raise DataError(path, _nul_reason(data, nul), line=data.count(b"\n", 0, nul) + 1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise DataError(path, f"invalid UTF-8 ({err.reason}) at byte {err.start}", line=line) from err
    lines = text.removeprefix("\ufeff").split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def _nul_reason(data: bytes, first: int) -> str:
    if data.count(b"\0") == len(data):
        return f"all {len(data)} bytes are NUL: the file is corrupt (never written or zero-filled); restore it"
    return f"NUL byte at byte {first}: not a text file"


def count_lines(path: Path) -> int:
    """Number of lines as ``read_lines`` counts them (a last line without newline counts), in bytes."""
    count, last = 0, b"\n"
    with Path(path).open("rb") as f:
        while chunk := f.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")
