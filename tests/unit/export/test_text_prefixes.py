"""Per-type text prefixes from the export config into the manifest, the fingerprint and ``xalign-export``."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_models import publish_tiny

from xalign.export.cli import parse_text_prefix
from xalign.export.default_model import default_config

E5 = (("query", "query: "), ("passage", "passage: "))


def test_the_manifest_gets_them_and_they_change_the_fingerprint(tiny_model_dir: Path, tmp_path: Path) -> None:
    plain = publish_tiny(tiny_model_dir, tmp_path, name="plain")
    typed = publish_tiny(tiny_model_dir, tmp_path, name="typed", text_prefixes=E5)
    assert plain.text_prefixes == {}
    assert typed.text_prefixes == {"query": "query: ", "passage": "passage: "}
    assert typed.text_prefix == plain.text_prefix == "query: "
    assert typed.source.fingerprint != plain.source.fingerprint


def test_the_default_model_declares_e5s_prefixes(tmp_path: Path) -> None:
    config = default_config(tmp_path, tmp_path / "cache", base_dir=tmp_path)
    assert dict(config.text_prefixes) == {"query": "query: ", "passage": "passage: "}
    assert config.text_prefix == "query: "  # requests without input_type embed as before


def test_the_option_parses_type_equals_prefix() -> None:
    assert parse_text_prefix("query=query: ") == ("query", "query: ")
    assert parse_text_prefix("passage=a=b") == ("passage", "a=b")
    assert parse_text_prefix("none=") == ("none", "")
    with pytest.raises(ValueError, match="TYPE=PREFIX"):
        parse_text_prefix("query")
