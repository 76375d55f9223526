"""``xalign-train eval``: argument checks, errors, and a real store model through the serving engine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from xalign.training.cli import build_parser, main

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / "tests" / "data"


def test_store_model_is_evaluated_through_the_serving_engine(
    tiny_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    js = tmp_path / "eval.json"
    argv = ["eval", "--store", str(tiny_store), "--model", "tiny@latest", "--variant", "int8", "--threads", "1"]
    code = main([*argv, "--tatoeba-dir", str(DATA / "tatoeba_mini"), "--langs", "deu", "--json", str(js)])
    assert code == 0
    evaluation = json.loads(js.read_text(encoding="utf-8"))
    # A random tiny model knows nothing of translation: a number in range, far from perfect.
    assert 0.0 <= evaluation["tatoeba"]["deu-eng"] < 60.0
    assert "tiny:1/int8" in capsys.readouterr().out


def test_unknown_store_model_exits_2(tiny_store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["eval", "--store", str(tiny_store), "--model", "nope", "--tatoeba-dir", str(DATA / "tatoeba_mini")]
    assert main([*argv, "--langs", "deu"]) == 2
    assert "no model named 'nope'" in capsys.readouterr().err


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
        [sys.executable, "-m", "xalign.training.cli", "eval", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
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
