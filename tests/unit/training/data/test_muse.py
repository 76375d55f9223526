"""MUSE dictionaries: both formats detected by content, hunalign reversed, direction by name, NUL files refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from data_paths import MINI

from xalign.training.data.errors import DataError
from xalign.training.data.muse import detect_format, read_muse
from xalign.training.data.records import WordPair

MUSE = MINI / "muse"


def test_hunalign_lines_are_target_at_source() -> None:
    # en-fr.dict reads "le @ the": French @ English.
    pairs = read_muse(MUSE / "en-fr.dict", "en", "fr")
    assert pairs[0] == WordPair(src="the", tgt="le", src_lang="en", tgt_lang="fr")
    assert len(pairs) == 10
    # fr-en.dict reads "of @ des": English @ French.
    assert read_muse(MUSE / "fr-en.dict", "fr", "en")[0] == WordPair("des", "of", "fr", "en")


def test_asking_for_the_reverse_direction_swaps_entries() -> None:
    assert read_muse(MUSE / "en-fr.dict", "fr", "en")[0] == WordPair("le", "the", "fr", "en")
    assert read_muse(MUSE / "en-de.0-5000.txt", "de", "en")[0] == WordPair("die", "the", "de", "en")
    with pytest.raises(DataError, match=r"en-fr\.dict: file name says en-fr, but en-de was asked for"):
        read_muse(MUSE / "en-fr.dict", "en", "de")


def test_space_and_tab_pairs() -> None:
    assert read_muse(MUSE / "en-de.0-5000.txt", "en", "de")[:2] == [
        WordPair("the", "die", "en", "de"),
        WordPair("the", "der", "en", "de"),
    ]
    hindi = read_muse(MUSE / "hi-en.0-5000.txt", "hi", "en")
    assert hindi[0] == WordPair("के", "of", "hi", "en")
    assert len(hindi) == 10


def test_format_is_detected_from_content_not_name(tmp_path: Path) -> None:
    assert detect_format("le @ the") == "hunalign"
    assert detect_format("the\tle") == "pairs"
    renamed = tmp_path / "dictionary.txt"  # no .dict suffix, no language names
    shutil.copy(MUSE / "en-fr.dict", renamed)
    assert read_muse(renamed, "en", "fr")[0] == WordPair("the", "le", "en", "fr")


def test_a_line_of_the_other_format_is_named(tmp_path: Path) -> None:
    path = tmp_path / "en-fr.dict"
    path.write_text("le @ the\nles @ the\nthe la\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"en-fr\.dict:3: expected hunalign 'TARGET @ SOURCE'"):
        read_muse(path, "en", "fr")
    path = tmp_path / "en-de.txt"
    path.write_text("the die\nthe der dem\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"en-de\.txt:2: expected 'src tgt'"):
        read_muse(path, "en", "de")


def test_zero_filled_file_is_refused(tmp_path: Path) -> None:
    # Stand-in for ../shared/data/muse/de-en.0-5000.txt, which is all NUL bytes on this machine.
    path = tmp_path / "de-en.0-5000.txt"
    path.write_bytes(b"\0" * 200)
    with pytest.raises(DataError, match=r"de-en\.0-5000\.txt:1: all 200 bytes are NUL: the file is corrupt"):
        read_muse(path, "de", "en")


def test_empty_dictionary_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "en-de.txt"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="no dictionary entries"):
        read_muse(path, "en", "de")
