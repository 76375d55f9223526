"""TransformersEncoder on a tiny random BertModel and word-level tokenizer saved to a temporary folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from xalign.training.cli import main  # noqa: E402
from xalign.training.evaluate.encoder import TransformersEncoder  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture
def tiny_model(tiny_model_dir: Path) -> Path:
    """The session's tiny random BERT (tests/conftest.py)."""
    return tiny_model_dir


TEXTS = ["hello world", "the cat sat on the mat", "a dog", "dog ran far far away", "hello"]


def test_returns_unit_float32_rows_in_input_order(tiny_model: Path) -> None:
    enc = TransformersEncoder(tiny_model, batch_size=2, device="cpu")
    out = enc.encode(TEXTS)
    assert out.shape == (5, 32) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert enc.name == tiny_model.name
    # Length sorting must not reorder the output: each row is its own text's embedding.
    for i, text in enumerate(TEXTS):
        np.testing.assert_allclose(out[i], enc.encode([text])[0], atol=1e-5)


def test_batch_equals_single(tiny_model: Path) -> None:
    batched = TransformersEncoder(tiny_model, batch_size=8, device="cpu").encode(TEXTS)
    single = TransformersEncoder(tiny_model, batch_size=1, device="cpu").encode(TEXTS)
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_prefix_is_applied(tiny_model: Path) -> None:
    prefixed = TransformersEncoder(tiny_model, text_prefix="query: ", device="cpu").encode(["hello world"])
    manual = TransformersEncoder(tiny_model, text_prefix="", device="cpu").encode(["query: hello world"])
    bare = TransformersEncoder(tiny_model, text_prefix="", device="cpu").encode(["hello world"])
    np.testing.assert_allclose(prefixed, manual, atol=1e-6)
    assert not np.allclose(prefixed, bare, atol=1e-3)


@pytest.mark.parametrize("pooling", ["cls", "last"])
def test_other_poolings(tiny_model: Path, pooling: str) -> None:
    enc = TransformersEncoder(tiny_model, pooling=pooling, batch_size=3, device="cpu")  # type: ignore[arg-type]
    out = enc.encode(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(out[2], enc.encode([TEXTS[2]])[0], atol=1e-5)


def test_empty_input_and_bad_folder(tiny_model: Path, tmp_path: Path) -> None:
    assert TransformersEncoder(tiny_model, device="cpu").encode([]).shape == (0, 32)
    with pytest.raises(FileNotFoundError, match="not a model folder"):
        TransformersEncoder(tmp_path / "missing")


def test_cli_eval_with_a_model_dir(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, js = tmp_path / "report.md", tmp_path / "eval.json"
    code = main(
        [
            "eval",
            "--model-dir",
            str(tiny_model),
            "--device",
            "cpu",
            "--tatoeba-dir",
            str(DATA / "tatoeba_mini"),
            "--langs",
            "deu",
            "--bucc-dir",
            str(DATA / "bucc_mini"),
            "--bucc-max",
            "60",
            "--out",
            str(out),
            "--json",
            str(js),
        ]
    )
    assert code == 0
    evaluation = json.loads(js.read_text(encoding="utf-8"))
    assert set(evaluation) == {"tatoeba", "bucc2018-de-en"}
    assert set(evaluation["tatoeba"]) == {"deu-eng", "eng-deu", "mean"}
    assert set(evaluation["bucc2018-de-en"]) == {"f1", "precision", "recall", "threshold"}
    page = out.read_text(encoding="utf-8")
    assert "| deu | 60 |" in page and "capped at 60" in page
    assert capsys.readouterr().out == page
