"""Strict line reading: only LF splits lines, CRLF and BOM handled, NUL and bad UTF-8 named by file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from xalign.training.data.errors import DataError
from xalign.training.data.lines import count_lines, read_lines


def test_lines_split_on_lf_only(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    # CRLF endings go; a lone CR, U+2028 and a form feed stay inside their line (splitlines would split).
    path.write_bytes("\ufeffone\r\ntwo\rhalf\r\nthree\u2028more\x0cend\nlast".encode())
    assert read_lines(path) == ["one", "two\rhalf", "three\u2028more\x0cend", "last"]
    assert count_lines(path) == 4


def test_final_newline_adds_no_line_and_empty_file_has_none(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("a\n\nb\n", encoding="utf-8")
    assert read_lines(path) == ["a", "", "b"]
    assert count_lines(path) == 3
    path.write_bytes(b"")
    assert read_lines(path) == []
    assert count_lines(path) == 0


def test_invalid_utf8_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.de"
    path.write_bytes("erste\nzweite\ndritte \xfc".encode("latin-1") + b"\n")
    with pytest.raises(DataError, match=r"bad\.de:3: invalid UTF-8") as caught:
        read_lines(path)
    assert caught.value.path == path
    assert caught.value.line == 3


def test_nul_bytes_are_refused(tmp_path: Path) -> None:
    zeros = tmp_path / "zeros.txt"
    zeros.write_bytes(b"\0" * 64)
    with pytest.raises(DataError, match=r"zeros\.txt:1: all 64 bytes are NUL"):
        read_lines(zeros)
    stray = tmp_path / "stray.txt"
    stray.write_bytes(b"ok\nbad\0line\n")
    with pytest.raises(DataError, match=r"stray\.txt:2: NUL byte at byte 6"):
        read_lines(stray)
