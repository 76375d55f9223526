"""Evaluate staged ONNX variants before they are published, so the manifest carries their accuracy.

Runs each variant through the serving engine (the same tokenizer, prefix and session the
service will use) on the Tatoeba files and a BUCC-2018 split; the results are named ``tatoeba`` and
``bucc2018-<pair>`` for fp32, ``tatoeba-<variant>`` and ``bucc2018-<pair>-<variant>`` for the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from xalign.export.config import Evaluation
from xalign.export.progress import step
from xalign.runtime.onnx_encoder import OnnxEncoder
from xalign.runtime.tokenization import TextTokenizer
from xalign.training.evaluate.bucc import BuccCorpus, bucc_files, cap_bucc, evaluate_bucc, read_bucc
from xalign.training.evaluate.report import bucc_evaluation, tatoeba_evaluation
from xalign.training.evaluate.tatoeba import evaluate_tatoeba, tatoeba_files

if TYPE_CHECKING:
    from xalign.export.dual_encoder_config import ExportConfig

log = logging.getLogger(__name__)

# (config, staged variant -> file, service tokenizer.json, embedding dim) -> {task: {metric: value}}
Evaluate = Callable[["ExportConfig", Mapping[str, Path], Path, int], Evaluation]


def task_name(variant: str) -> str:
    """Evaluation task key of a variant: the fp32 numbers are the model's, others are labelled."""
    return "tatoeba" if variant == "fp32" else f"tatoeba-{variant}"


def bucc_task_name(pair: str, variant: str = "fp32") -> str:
    """Evaluation task key of BUCC ``pair`` (``de-en``) for a variant, labelled as ``task_name`` does."""
    return f"bucc2018-{pair}" if variant == "fp32" else f"bucc2018-{pair}-{variant}"


def bucc_inputs(bucc_dir: Path, pair: str) -> list[Path]:
    """The BUCC files an evaluation reads (both sides and the gold), so the fingerprint can cover them."""
    return list(bucc_files(bucc_dir, pair))


def tatoeba_inputs(tatoeba_dir: Path, langs: Sequence[str]) -> list[Path]:
    """Every Tatoeba file an evaluation reads, so the fingerprint can cover them."""
    return [path for lang in langs for path in tatoeba_files(tatoeba_dir, lang)]


def measure(config: ExportConfig, variants: Mapping[str, Path], tokenizer: Path, dim: int) -> Evaluation:
    """Tatoeba (when ``tatoeba_dir`` is set) and BUCC (when ``bucc_dir`` is set) of every staged variant."""
    bucc = load_bucc(config)
    tasks = [f"Tatoeba {' '.join(config.tatoeba_langs)}"] if config.tatoeba_dir is not None else []
    if bucc is not None:
        tasks.append(f"BUCC {bucc.pair} ({len(bucc.src_ids)} + {len(bucc.tgt_ids)} sentences)")
    if not tasks:
        return {}
    with step(f"evaluating {', '.join(variants)}: {'; '.join(tasks)}"):
        return evaluate_variants(
            variants,
            tokenizer,
            max_seq_length=config.max_seq_length,
            text_prefix=config.text_prefix,
            dim=dim,
            tatoeba_dir=Path(config.tatoeba_dir) if config.tatoeba_dir is not None else None,
            langs=config.tatoeba_langs,
            bucc=bucc,
        )


def load_bucc(config: ExportConfig) -> BuccCorpus | None:
    """The BUCC split the evaluation mines, capped to ``bucc_max`` sentences per side; None without ``bucc_dir``."""
    if config.bucc_dir is None:
        return None
    corpus = read_bucc(Path(config.bucc_dir), config.bucc_pair)
    return cap_bucc(corpus, config.bucc_max) if config.bucc_max is not None else corpus


def evaluate_variants(
    variants: Mapping[str, Path],
    tokenizer: Path,
    *,
    max_seq_length: int,
    text_prefix: str,
    dim: int,
    tatoeba_dir: Path | None,
    langs: Sequence[str],
    bucc: BuccCorpus | None = None,
) -> Evaluation:
    """Tatoeba accuracy (both directions, per language, mean) and BUCC F1 of each staged variant."""
    evaluation: Evaluation = {}
    for variant, path in variants.items():
        encoder = OnnxEncoder(path, TextTokenizer(tokenizer, max_seq_length, text_prefix), dim, f"staged/{variant}")
        if tatoeba_dir is not None:
            metrics = tatoeba_evaluation(evaluate_tatoeba(encoder, tatoeba_dir, langs))
            log.info("tatoeba %s: mean %.2f", variant, metrics.get("mean", float("nan")))
            evaluation[task_name(variant)] = metrics
        # Every variant: the gate reads fp32's, but an operator choosing int8 needs its mining F1 too (minutes
        # per variant on a CPU for ~16k sentences; int8 takes about half fp32's time).
        if bucc is not None:
            metrics = bucc_evaluation(evaluate_bucc(encoder, bucc))
            log.info("bucc %s %s: F1 %.2f", bucc.pair, variant, metrics["f1"])
            evaluation[bucc_task_name(bucc.pair, variant)] = metrics
    return evaluation
