"""``xalign-train eval``: argument checks, errors, and the store path through a stand-in OnnxEncoder."""

from __future__ import annotations

import json
import subprocess
import sys
import types
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from training.cli import build_parser, main

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / "tests" / "data"


class HashEncoder:
    """Embeds a text as a hashed unit vector: stable, needs no model, unrelated texts are near-orthogonal."""

    def __init__(self, name: str) -> None:
        self.name = name

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        rows = [np.random.default_rng(zlib.crc32(t.encode())).standard_normal(32) for t in texts]
        out = np.array(rows, dtype=np.float32).reshape(len(texts), 32)
        unit: np.ndarray = out / np.linalg.norm(out, axis=1, keepdims=True)
        return unit


@pytest.fixture
def fake_engine(monkeypatch: pytest.MonkeyPatch) -> list[tuple[object, ...]]:
    """Install a stand-in ``service.engine.onnx_encoder`` and record how ``from_store`` was called."""
    calls: list[tuple[object, ...]] = []

    class OnnxEncoder:
        @classmethod
        def from_store(
            cls, store_dir: Path, ref: str, variant: str = "fp32", threads: int | None = None
        ) -> HashEncoder:
            calls.append((store_dir, ref, variant, threads))
            return HashEncoder(f"{ref} ({variant})")

    module = types.ModuleType("service.engine.onnx_encoder")
    module.OnnxEncoder = OnnxEncoder  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "service.engine.onnx_encoder", module)
    return calls


def test_store_model_is_loaded_through_the_engine(
    fake_engine: list[tuple[object, ...]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    js = tmp_path / "eval.json"
    code = main(
        [
            "eval",
            "--store",
            str(tmp_path),
            "--model",
            "e5-small@production",
            "--variant",
            "int8",
            "--threads",
            "2",
            "--tatoeba-dir",
            str(DATA / "tatoeba_mini"),
            "--langs",
            "deu",
            "--json",
            str(js),
        ]
    )
    assert code == 0
    assert fake_engine == [(tmp_path, "e5-small@production", "int8", 2)]
    evaluation = json.loads(js.read_text(encoding="utf-8"))
    # Hashed vectors know nothing of translation: well below 100 % but a number in range.
    assert 0.0 <= evaluation["tatoeba"]["deu-eng"] < 50.0
    assert "# Evaluation of e5-small@production (int8)" in capsys.readouterr().out


def test_missing_engine_gives_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "service.engine.onnx_encoder", None)  # makes the import fail
    code = main(
        [
            "eval",
            "--store",
            str(tmp_path),
            "--model",
            "e5",
            "--tatoeba-dir",
            str(DATA / "tatoeba_mini"),
            "--langs",
            "deu",
        ]
    )
    assert code == 2
    assert "needs service.engine.onnx_encoder.OnnxEncoder" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tatoeba-dir", "x"], "either --model-dir or --store"),
        (["--model-dir", "m", "--store", "s", "--model", "e5", "--tatoeba-dir", "x"], "either --model-dir or --store"),
        (["--store", "s", "--tatoeba-dir", "x"], "--store needs --model"),
        (["--model-dir", "m", "--variant", "int8", "--tatoeba-dir", "x"], "apply to --store models only"),
        (["--model-dir", "m"], "nothing to evaluate"),
        (["--model-dir", "m", "--bucc-dir", "b", "--bucc-max", "0"], "--bucc-max must be positive"),
        (
            ["--store", "s", "--model", "bad/name", "--tatoeba-dir", str(DATA / "tatoeba_mini"), "--langs", "deu"],
            "bad/name",
        ),
        (
            ["--model-dir", "m", "--tatoeba-dir", str(DATA / "tatoeba_mini"), "--langs", "deu,fra"],
            "tatoeba.fra-eng.fra",
        ),
    ],
)
def test_usage_errors_exit_2_with_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("xalign-train eval: ") and err.count("\n") == 1


def test_help_documents_every_option() -> None:
    eval_parser = build_parser()._subparsers._group_actions[0].choices["eval"]  # type: ignore[union-attr, index]
    for action in eval_parser._actions:
        assert action.help, action.option_strings


def test_runs_as_a_module() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "training.cli", "eval", "--help"], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert result.returncode == 0
    for option in (
        "--model-dir",
        "--store",
        "--model",
        "--variant",
        "--tatoeba-dir",
        "--langs",
        "--bucc-dir",
        "--bucc-max",
        "--out",
        "--json",
    ):
        assert option in result.stdout
