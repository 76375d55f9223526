"""Parity of exported ONNX variants with the PyTorch module on the same tokenised texts.

Both sides get identical ``input_ids`` / ``attention_mask`` batches from the model's
``tokenizer.json`` (truncated to ``max_seq_length``, padded to the longest text of the
batch), so any difference comes from the graph, not from tokenisation. Per variant the
report gives the number of texts, the lowest cosine and the largest absolute difference
against PyTorch; a separate check embeds texts alone and inside a padded batch, which must
agree (padding must not leak into the pooled vector).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import torch
from tokenizers import Tokenizer

from xalign.export.dual_encoder import INPUT_NAMES, DualEncoder
from xalign.modelstore import ParityReport

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

# DESIGN.md §6: ONNX fp32 against PyTorch on the same texts.
FP32_MIN_COSINE = 0.9999
# A text alone and the same text in a padded batch, largest difference relative to max(1, |vector|).
BATCH_TOLERANCE = 1e-5
PARITY_TEXTS_FILE = "parity_texts.txt"


class ParityError(RuntimeError):
    """An exported variant does not reproduce the PyTorch model closely enough to publish."""


@dataclass(frozen=True)
class Batch:
    """One padded batch: ``input_ids`` and ``attention_mask``, both ``[batch, seq]`` int64."""

    input_ids: IntArray
    attention_mask: IntArray

    def feed(self) -> dict[str, IntArray]:
        """The ONNX feed dictionary."""
        return {INPUT_NAMES[0]: self.input_ids, INPUT_NAMES[1]: self.attention_mask}


@dataclass(frozen=True)
class ParityResult:
    """Parity of every variant, the batch-vs-single check per variant, and how many texts were truncated."""

    texts: int
    truncated: int
    variants: dict[str, ParityReport]
    batch_vs_single: dict[str, float]


def load_parity_texts(path: Path | None = None) -> list[str]:
    """Texts of a parity file (the packaged ``export/parity_texts.txt`` by default).

    One text per line; lines starting with ``#`` are comments and blank lines are skipped.
    """
    # Beside this module rather than importlib.resources: a stale editable install can make ``export``
    # a namespace package, which importlib.resources (Python 3.11) cannot read from.
    source = Path(__file__).with_name(PARITY_TEXTS_FILE) if path is None else Path(path)
    raw = source.read_text(encoding="utf-8")
    texts = [line for line in raw.splitlines() if line.strip() and not line.startswith("#")]
    if not texts:
        raise ValueError(f"parity text file {source} holds no texts")
    return texts


def load_tokenizer(path: Path, max_seq_length: int, pad_id: int) -> Tokenizer:
    """The model's tokenizer with truncation to ``max_seq_length`` and padding to the batch's longest text."""
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(max_length=max_seq_length)
    pad_token = tokenizer.id_to_token(pad_id)
    if pad_token is None:
        raise ValueError(f"{path}: pad id {pad_id} is not in the vocabulary")
    tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)
    return tokenizer


def encode(tokenizer: Tokenizer, texts: Sequence[str]) -> Batch:
    """Tokenise ``texts`` into one padded batch ``[len(texts), longest]``."""
    encodings = tokenizer.encode_batch(list(texts))
    return Batch(
        input_ids=np.array([e.ids for e in encodings], dtype=np.int64),
        attention_mask=np.array([e.attention_mask for e in encodings], dtype=np.int64),
    )


def count_truncated(tokenizer: Tokenizer, texts: Sequence[str]) -> int:
    """How many texts lose tokens to truncation (their encoding has an overflow)."""
    return sum(1 for e in tokenizer.encode_batch(list(texts)) if e.overflowing)


def batches(tokenizer: Tokenizer, texts: Sequence[str], batch_size: int) -> Iterator[Batch]:
    """Consecutive padded batches of ``texts`` (the order is kept, so padding varies within batches)."""
    for start in range(0, len(texts), batch_size):
        yield encode(tokenizer, texts[start : start + batch_size])


def embed_torch(module: DualEncoder, batch: Batch) -> FloatArray:
    """PyTorch reference embeddings ``[batch, dim]``."""
    with torch.inference_mode():
        out: torch.Tensor = module(torch.from_numpy(batch.input_ids), torch.from_numpy(batch.attention_mask))
    return out.numpy().astype(np.float32)


def embed_onnx(session: ort.InferenceSession, batch: Batch) -> FloatArray:
    """ONNX embeddings ``[batch, dim]``."""
    (out,) = session.run(None, batch.feed())
    return np.asarray(out, dtype=np.float32)


def open_session(path: Path, threads: int = 0) -> ort.InferenceSession:
    """A CPU onnxruntime session (``threads`` 0: onnxruntime's default)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def compare(reference: FloatArray, candidate: FloatArray) -> ParityReport:
    """Lowest row cosine and largest absolute difference between two ``[n, dim]`` arrays."""
    ref = reference.astype(np.float64)
    cand = candidate.astype(np.float64)
    norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(cand, axis=1)  # [n]
    cosine = (ref * cand).sum(axis=1) / np.maximum(norms, 1e-30)  # [n]
    return ParityReport(
        texts=len(ref),
        min_cosine=float(cosine.min()),
        max_abs_diff=float(np.abs(ref - cand).max()),
    )


def batch_vs_single(session: ort.InferenceSession, tokenizer: Tokenizer, texts: Sequence[str], sample: int) -> float:
    """Largest difference between texts embedded alone and inside one padded batch.

    The batch holds up to ``sample`` evenly spread texts plus the longest text, so every
    other row is padded. The difference is relative to ``max(1, |single vector|)``: the
    plain absolute difference for normalised outputs.
    """
    longest = max(range(len(texts)), key=lambda i: len(texts[i]))
    step = max(1, len(texts) // max(1, sample))
    chosen = [texts[i] for i in range(0, len(texts), step)[:sample]] + [texts[longest]]
    together = embed_onnx(session, encode(tokenizer, chosen))  # [len(chosen), dim]
    worst = 0.0
    for row, text in enumerate(chosen):
        alone = embed_onnx(session, encode(tokenizer, [text]))[0]  # [dim]
        scale = max(1.0, float(np.linalg.norm(alone)))
        worst = max(worst, float(np.abs(together[row] - alone).max()) / scale)
    return worst


def check_parity(
    module: DualEncoder,
    variants: Mapping[str, Path],
    tokenizer: Tokenizer,
    texts: Sequence[str],
    *,
    batch_size: int = 16,
    batch_sample: int = 16,
) -> ParityResult:
    """Compare every ONNX variant (name → file) with ``module`` on ``texts`` (already prefixed)."""
    if not texts:
        raise ValueError("parity needs at least one text")
    sessions = {name: open_session(path) for name, path in variants.items()}
    reference: list[FloatArray] = []
    outputs: dict[str, list[FloatArray]] = {name: [] for name in sessions}
    total = (len(texts) + batch_size - 1) // batch_size
    for index, batch in enumerate(batches(tokenizer, texts, batch_size), start=1):
        reference.append(embed_torch(module, batch))
        for name, session in sessions.items():
            outputs[name].append(embed_onnx(session, batch))
        if index % 4 == 0 or index == total:
            log.info("parity: batch %d/%d", index, total)
    ref = np.concatenate(reference)  # [n, dim]
    reports = {name: compare(ref, np.concatenate(parts)) for name, parts in outputs.items()}
    single = {name: batch_vs_single(s, tokenizer, texts, batch_sample) for name, s in sessions.items()}
    return ParityResult(
        texts=len(texts),
        truncated=count_truncated(tokenizer, texts),
        variants=reports,
        batch_vs_single=single,
    )


def require_parity(
    result: ParityResult,
    variant: str = "fp32",
    min_cosine: float = FP32_MIN_COSINE,
    batch_tolerance: float = BATCH_TOLERANCE,
) -> None:
    """Raise ``ParityError`` unless ``variant`` reaches ``min_cosine`` and passes batch-vs-single."""
    report = result.variants.get(variant)
    if report is None:
        raise ParityError(f"parity has no result for variant {variant!r} (has {sorted(result.variants)})")
    if not report.min_cosine >= min_cosine:  # `not >=` also catches NaN
        raise ParityError(
            f"{variant} ONNX does not match PyTorch: min cosine {report.min_cosine:.6f} < {min_cosine} "
            f"over {report.texts} texts (max abs diff {report.max_abs_diff:.3g})"
        )
    diff = result.batch_vs_single.get(variant, float("nan"))
    if not diff <= batch_tolerance:
        raise ParityError(
            f"{variant} ONNX gives a different vector for a text alone and in a padded batch: "
            f"max diff {diff:.3g} > {batch_tolerance}"
        )
