"""Parity of exported ONNX variants with the PyTorch module, on the inputs the service sends.

Texts go through the runtime tokenizer (``runtime/tokenization.py``: prefix, NFC, truncation to
``max_seq_length``, padding to the batch's longest text) with the tokenizer.json the version publishes, and both
sides get the same ``input_ids`` / ``attention_mask`` (torch as tensors, ONNX as the feed the service builds),
so any difference comes from the graph. Each family flattens its outputs into rows (``Family.rows``); per
variant and output the report gives the lowest row cosine and the largest absolute difference against PyTorch,
and a separate check runs texts alone and inside a padded batch, which must agree (padding must not leak).

Report keys are the manifest's: the variant for ``sentence_embedding``, ``<variant>.<output>`` for the others.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from xalign.export.family import Family, FloatArray, ModelT, Outputs
from xalign.modelstore import ParityReport
from xalign.modelstore.artifacts import INPUT_NAMES, SENTENCE_EMBEDDING
from xalign.runtime.session import feeds
from xalign.runtime.tokenization import Batch, TextTokenizer

log = logging.getLogger(__name__)

# ONNX fp32 against PyTorch on the same texts: the lowest cosine that may be published.
FP32_MIN_COSINE = 0.9999
# A text alone and the same text in a padded batch, largest difference relative to max(1, |row|).
BATCH_TOLERANCE = 1e-5


class ParityError(RuntimeError):
    """An exported variant does not reproduce the PyTorch model closely enough to publish."""


@dataclass(frozen=True)
class ParityResult:
    """Parity and batch-vs-single per manifest key, and how many of the texts were truncated."""

    texts: int
    truncated: int
    reports: dict[str, ParityReport]
    batch_vs_single: dict[str, float]

    @property
    def variants(self) -> list[str]:
        """The variants checked, sorted (the keys of their ``sentence_embedding`` reports)."""
        return sorted(key for key in self.reports if "." not in key)


def parity_key(variant: str, output: str) -> str:
    """The manifest's parity key of ``output`` of ``variant``: ``fp32``, ``int8``, ``fp32.alpha``..."""
    return variant if output == SENTENCE_EMBEDDING else f"{variant}.{output}"


def open_session(path: Path, threads: int = 0) -> ort.InferenceSession:
    """A CPU onnxruntime session (``threads`` 0: onnxruntime's default)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def run_onnx(session: ort.InferenceSession, batch: Batch, outputs: Sequence[str]) -> Outputs:
    """ONNX outputs by name for a padded batch, fed as the service feeds it."""
    values = session.run(list(outputs), feeds(batch, INPUT_NAMES))
    return {name: np.asarray(value, dtype=np.float32) for name, value in zip(outputs, values, strict=True)}


def run_torch(family: Family[Any, ModelT], model: ModelT, batch: Batch) -> Outputs:
    """PyTorch reference outputs by name for the same ids and mask, as tensors."""
    with torch.inference_mode():
        return family.forward(model, torch.from_numpy(batch.input_ids), torch.from_numpy(batch.attention_mask))


def compare(reference: FloatArray, candidate: FloatArray) -> ParityReport:
    """Lowest row cosine and largest absolute difference between two (n, dim) arrays."""
    ref = reference.astype(np.float64)
    cand = candidate.astype(np.float64)
    norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(cand, axis=1)  # (n,)
    cosine = (ref * cand).sum(axis=1) / np.maximum(norms, 1e-30)  # (n,)
    return ParityReport(texts=len(ref), min_cosine=float(cosine.min()), max_abs_diff=float(np.abs(ref - cand).max()))


def count_truncated(tokenizer: TextTokenizer, texts: Sequence[str]) -> int:
    """How many texts lose tokens to truncation."""
    return sum(1 for text in texts if tokenizer.encode_one(text)[1])


def check_parity(
    family: Family[Any, ModelT],
    model: ModelT,
    variants: Mapping[str, Path],
    tokenizer: TextTokenizer,
    texts: Sequence[str],
    *,
    batch_size: int = 16,
    batch_sample: int = 16,
) -> ParityResult:
    """Compare every output of every ONNX variant (name -> file) with ``model`` on ``texts``."""
    if not texts:
        raise ValueError("parity needs at least one text")
    ids = tokenizer.encode_ids(texts)
    width = max(len(seq) for seq in ids)
    sessions = {name: open_session(path) for name, path in variants.items()}
    reference: dict[str, list[FloatArray]] = {name: [] for name in family.outputs}
    candidates: dict[str, dict[str, list[FloatArray]]] = {v: {name: [] for name in family.outputs} for v in sessions}
    total = (len(ids) + batch_size - 1) // batch_size
    for index, start in enumerate(range(0, len(ids), batch_size), start=1):
        batch = tokenizer.pad(ids[start : start + batch_size])
        _collect(reference, family.rows(run_torch(family, model, batch), batch.attention_mask, width))
        for variant, session in sessions.items():
            outputs = run_onnx(session, batch, family.outputs)
            _collect(candidates[variant], family.rows(outputs, batch.attention_mask, width))
        if index % 4 == 0 or index == total:
            log.info("parity: batch %d/%d", index, total)
    reports: dict[str, ParityReport] = {}
    single: dict[str, float] = {}
    for variant, session in sessions.items():
        differences = batch_vs_single(family, session, tokenizer, ids, batch_sample)
        for name in family.outputs:
            report = compare(np.concatenate(reference[name]), np.concatenate(candidates[variant][name]))
            # ``texts`` counts texts for every output (compare() counted rows: tokens, for example).
            reports[parity_key(variant, name)] = report.model_copy(update={"texts": len(texts)})
            single[parity_key(variant, name)] = differences[name]
    return ParityResult(len(texts), count_truncated(tokenizer, texts), reports, single)


def _collect(into: dict[str, list[FloatArray]], rows: Outputs) -> None:
    for name, values in rows.items():
        into[name].append(values)


def batch_vs_single(
    family: Family[Any, Any],
    session: ort.InferenceSession,
    tokenizer: TextTokenizer,
    ids: Sequence[Sequence[int]],
    sample: int,
) -> dict[str, float]:
    """Per output, the largest difference between texts run alone and inside one padded batch.

    The batch holds up to ``sample`` evenly spread texts plus the longest, so the others are padded. The
    difference is relative to ``max(1, |row|)``: the plain absolute difference for normalised outputs.
    """
    longest = max(range(len(ids)), key=lambda i: len(ids[i]))
    step = max(1, len(ids) // max(1, sample))
    chosen = [ids[i] for i in range(0, len(ids), step)[:sample]] + [ids[longest]]
    together = tokenizer.pad(chosen)
    width = together.input_ids.shape[1]
    batched = family.rows(run_onnx(session, together, family.outputs), together.attention_mask, width)
    worst = dict.fromkeys(family.outputs, 0.0)
    offsets = dict.fromkeys(family.outputs, 0)
    for seq in chosen:
        alone = tokenizer.pad([seq])
        for name, rows in family.rows(run_onnx(session, alone, family.outputs), alone.attention_mask, width).items():
            mine = batched[name][offsets[name] : offsets[name] + len(rows)]
            offsets[name] += len(rows)
            scale = np.maximum(1.0, np.linalg.norm(rows, axis=1, keepdims=True))  # (rows, 1)
            worst[name] = max(worst[name], float((np.abs(mine - rows) / scale).max()))
    return worst


def require_parity(
    result: ParityResult,
    variant: str = "fp32",
    min_cosine: float = FP32_MIN_COSINE,
    batch_tolerance: float = BATCH_TOLERANCE,
) -> None:
    """Raise ``ParityError`` unless every output of ``variant`` reaches ``min_cosine`` and passes batch-vs-single."""
    keys = [key for key in result.reports if key == variant or key.startswith(f"{variant}.")]
    if not keys:
        raise ParityError(f"parity has no result for variant {variant!r} (has {sorted(result.reports)})")
    for key in keys:
        report = result.reports[key]
        if not report.min_cosine >= min_cosine:  # `not >=` also catches NaN
            raise ParityError(
                f"{key} ONNX does not match PyTorch: min cosine {report.min_cosine:.6f} < {min_cosine} "
                f"over {report.texts} texts (max abs diff {report.max_abs_diff:.3g})"
            )
        diff = result.batch_vs_single.get(key, float("nan"))
        if not diff <= batch_tolerance:
            raise ParityError(
                f"ONNX {key} differs alone and in a padded batch: max diff {diff:.3g} > {batch_tolerance}"
            )
