"""File names of the shipped corpora by ISO 639-1 code; unknown codes and missing files are named."""

from __future__ import annotations

import pytest
from data_paths import MINI

from xalign.training.data.shipped import NTREX_FILES, multi30k, ntrex


def test_ntrex_maps_iso1_codes_to_its_file_names() -> None:
    expected = {"de": "deu", "fr": "fra", "cs": "ces", "es": "spa", "ru": "rus", "zh": "zho-CN"}
    for iso1, code in expected.items():
        assert NTREX_FILES[iso1] == f"newstest2019-ref.{code}.txt"
    assert NTREX_FILES["en"] == "newstest2019-src.eng.txt"


def test_unknown_code_and_missing_file_are_named() -> None:
    with pytest.raises(ValueError, match=r"no NTREX file known for \['xx'\]"):
        ntrex(MINI / "ntrex128", ["en", "xx"])
    with pytest.raises(FileNotFoundError, match=r"newstest2019-ref\.ces\.txt"):
        ntrex(MINI / "ntrex128", ["en", "cs"])  # the excerpt has no Czech
    with pytest.raises(FileNotFoundError, match=r"val\.en"):
        multi30k(MINI / "multi30k", "val")
    with pytest.raises(ValueError, match="split must be one of"):
        multi30k(MINI / "multi30k", "test")
