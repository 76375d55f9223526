"""XNLI retrieval (training/evaluate/xnli_retrieval.py) and ``xalign-train eval --xnli-dir``.

Data: tests/data/training_mini/xnli/test-{en,de,ru}.tsv, lines 2803-2808 of the real test split, where
test-ru swaps two hypotheses: rows must still pair each Russian hypothesis with its English original.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from xalign.training.cli import main
from xalign.training.data.xnli import load_xnli
from xalign.training.evaluate.xnli_retrieval import evaluate_xnli, read_xnli_sentences

XNLI = Path(__file__).resolve().parents[2] / "data" / "training_mini" / "xnli"


class RowEncoder:
    """Embeds a text as the one-hot vector of its XNLI hypothesis row; the two ``swapped`` texts trade rows."""

    name = "rows"

    def __init__(self, swapped: tuple[str, str] | None = None) -> None:
        rows = load_xnli(XNLI, "test", ("en", "de", "ru")).hypotheses
        self.row = {text: i for i, row in enumerate(rows) for text in row.texts.values()}
        if swapped is not None:
            first, second = swapped
            self.row[first], self.row[second] = self.row[second], self.row[first]

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        out = np.zeros((len(texts), len(set(self.row.values()))), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i, self.row[text]] = 1.0
        return out


def test_rows_align_across_languages_despite_the_russian_swap() -> None:
    sentences = read_xnli_sentences(XNLI, "test", ("de", "en", "ru"))
    assert list(sentences.texts) == ["de", "ru"] and len(sentences.english) == 6
    # Line 2806 of test-ru holds what line 2807 of test-en translates: matched by label, not by line.
    en_lines = (XNLI / "test-en.tsv").read_text(encoding="utf-8").splitlines()
    ru_lines = (XNLI / "test-ru.tsv").read_text(encoding="utf-8").splitlines()
    row = sentences.english.index(en_lines[4].split("\t")[1])
    assert sentences.texts["ru"][row] == ru_lines[3].split("\t")[1]
    assert len(read_xnli_sentences(XNLI, "test", ("en", "de"), max_rows=4).english) == 4


def test_accuracy_both_directions_per_language() -> None:
    sentences = read_xnli_sentences(XNLI, "test", ("en", "de", "ru"))
    perfect = evaluate_xnli(RowEncoder(), sentences)
    assert [(r.lang, r.n, r.to_eng, r.from_eng) for r in perfect] == [("de", 6, 100.0, 100.0), ("ru", 6, 100.0, 100.0)]
    # Two Russian texts embedded as each other's row: both are wrong in both directions, German is untouched.
    swapped = evaluate_xnli(RowEncoder(swapped=(sentences.texts["ru"][3], sentences.texts["ru"][4])), sentences)
    assert (swapped[0].to_eng, swapped[0].from_eng) == (100.0, 100.0)
    assert swapped[1].to_eng == pytest.approx(400 / 6) and swapped[1].from_eng == pytest.approx(400 / 6)


def test_without_a_language_besides_english_is_an_error() -> None:
    with pytest.raises(ValueError, match="besides 'en'"):
        read_xnli_sentences(XNLI, "test", ("en",))


def test_eval_command_writes_the_xnli_task(tiny_model_dir: Path, tmp_path: Path) -> None:
    js, md = tmp_path / "eval.json", tmp_path / "eval.md"
    argv = ["eval", "--model-dir", str(tiny_model_dir), "--xnli-dir", str(XNLI), "--xnli-langs", "en,de,ru"]
    assert main([*argv, "--xnli-max", "5", "--json", str(js), "--out", str(md)]) == 0
    task = json.loads(js.read_text(encoding="utf-8"))["xnli-test"]
    assert set(task) == {"de-en", "en-de", "ru-en", "en-ru", "mean"}
    assert all(0.0 <= value <= 100.0 for value in task.values())
    assert "## XNLI test" in md.read_text(encoding="utf-8") and "| xxx→en acc % |" in md.read_text(encoding="utf-8")


def test_eval_refuses_a_non_positive_xnli_cap(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--model-dir", "m", "--xnli-dir", str(XNLI), "--xnli-max", "0"]) == 2
    assert capsys.readouterr().err == "xalign-train eval: --xnli-max must be positive\n"
