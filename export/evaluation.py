"""Evaluate staged ONNX variants before they are published, so the manifest carries their accuracy.

Runs each variant through the serving engine (the same tokenizer, prefix and session the
service will use) on the Tatoeba files, and names the results ``tatoeba`` for fp32 and
``tatoeba-<variant>`` for the others.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from service.engine.onnx_encoder import OnnxEncoder
from service.engine.tokenization import TextTokenizer
from training.evaluate.report import tatoeba_evaluation
from training.evaluate.tatoeba import evaluate_tatoeba, tatoeba_files

log = logging.getLogger(__name__)


def task_name(variant: str) -> str:
    """Evaluation task key of a variant: the fp32 numbers are the model's, others are labelled."""
    return "tatoeba" if variant == "fp32" else f"tatoeba-{variant}"


def tatoeba_inputs(tatoeba_dir: Path, langs: Sequence[str]) -> list[Path]:
    """Every Tatoeba file an evaluation reads, so the fingerprint can cover them."""
    return [path for lang in langs for path in tatoeba_files(tatoeba_dir, lang)]


def evaluate_variants(
    variants: Mapping[str, Path],
    tokenizer: Path,
    *,
    max_seq_length: int,
    text_prefix: str,
    dim: int,
    tatoeba_dir: Path,
    langs: Sequence[str],
) -> dict[str, dict[str, float]]:
    """Tatoeba accuracy (both directions, per language, mean) of each staged variant."""
    evaluation: dict[str, dict[str, float]] = {}
    for variant, path in variants.items():
        encoder = OnnxEncoder(path, TextTokenizer(tokenizer, max_seq_length, text_prefix), dim, f"staged/{variant}")
        metrics = tatoeba_evaluation(evaluate_tatoeba(encoder, tatoeba_dir, langs))
        log.info("tatoeba %s: mean %.2f", variant, metrics.get("mean", float("nan")))
        evaluation[task_name(variant)] = metrics
    return evaluation
