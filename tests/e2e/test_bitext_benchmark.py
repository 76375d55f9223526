"""``benchmarks/bitext_http.py`` on the tiny store: HTTP mining gives the same Tatoeba accuracy as the harness."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from benchmarks import bitext_http
from xalign.runtime.onnx_encoder import OnnxEncoder
from xalign.training.evaluate.tatoeba import evaluate_tatoeba

MINI = Path(__file__).resolve().parents[1] / "data" / "tatoeba_mini"


def test_http_mining_equals_the_evaluation_harness(
    tiny_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tatoeba = tmp_path / "data" / "tatoeba"
    shutil.copytree(MINI, tatoeba)
    recorded: list[str] = []
    monkeypatch.setattr(bitext_http, "record", lambda name, *_: recorded.append(name))
    argv = ["--store", str(tiny_store), "--model", "tiny", "--data", str(tmp_path / "data"), "--langs", "deu"]
    results = bitext_http.main([*argv, "--log", str(tmp_path / "serve.log"), "--record-as", ""])
    assert recorded == []
    # The tiny model is far from perfect, so equal accuracies are a real check, not 100 == 100.
    for margin in ("absolute", "ratio"):
        expected = evaluate_tatoeba(OnnxEncoder.from_store(tiny_store, "tiny"), tatoeba, ["deu"], margin)[0]
        assert results["accuracy"][margin] == {
            "deu-eng": pytest.approx(expected.to_eng, abs=0.01),
            "eng-deu": pytest.approx(expected.from_eng, abs=0.01),
        }
        assert 0 < results["mean"][margin] < 100
