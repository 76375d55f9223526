"""A minimal valid spec, evaluation scores and a folder of files to publish, for the model-store tests."""

from __future__ import annotations

from pathlib import Path

from xalign.modelstore import ModelSpec, OnnxInfo, SourceInfo


def make_spec(fingerprint: str | None = None, evaluation: dict[str, dict[str, float]] | None = None) -> ModelSpec:
    """A small valid dual-encoder spec, with ``evaluation`` results if given."""
    return ModelSpec(
        family="dual-encoder",
        embedding_dim=8,
        max_seq_length=16,
        text_prefix="query: ",
        languages=["en", "de"],
        onnx=OnnxInfo(
            opset=17,
            inputs=["input_ids", "attention_mask"],
            outputs=["sentence_embedding"],
            variants={"fp32": "model.onnx"},
        ),
        source=SourceInfo(base_model="test", fingerprint=fingerprint),
        evaluation=evaluation or {},
    )


def scores(mean: float, deu_eng: float, eng_deu: float, f1: float) -> dict[str, dict[str, float]]:
    """A Tatoeba and BUCC evaluation as the export pipeline records it."""
    return {
        "tatoeba": {"deu-eng": deu_eng, "eng-deu": eng_deu, "mean": mean},
        "bucc2018-de-en": {"f1": f1, "precision": f1, "recall": f1, "threshold": 1.1},
    }


def make_files(folder: Path, payload: bytes = b"onnx-bytes") -> dict[str, Path]:
    """Two files to publish: a fake model and a tokenizer."""
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / "model.onnx"
    model.write_bytes(payload)
    tokenizer = folder / "tokenizer.json"
    tokenizer.write_text('{"version": "1.0"}', encoding="utf-8")
    return {"model.onnx": model, "tokenizer.json": tokenizer}
