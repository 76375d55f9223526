"""Export a Backpack LM checkpoint (``training.models.backpack``) to ONNX, check parity, publish it.

The graph (``BackpackGraph``) takes ``input_ids`` and ``attention_mask`` (int64, (batch, seq), right padding,
dynamic batch and sequence axes) and returns four float32 outputs:

    sentence_embedding  (batch, d)             masked mean of ``contextual``, L2-normalised (the service's
                                               dual-encoder path runs only this output)
    contextual          (batch, seq, d)        o, the sense-weighted sums
    senses              (batch, seq, k, d)     C(x) of every token
    alpha               (batch, k, seq, seq)   the sense weights, 0 above the diagonal and for padded j

Logits are left out of the graph: a (batch, seq, vocab) output would dominate every request, and the service
computes the few logits it needs from ``senses.npz``'s ``output_embedding`` (no final LayerNorm: the model's
logits are exactly ``contextual @ output_embedding.T``).

``senses.npz`` holds, for every vocabulary token t and sense l, the ``n_top`` words w with the largest
C(t)[l] . E_w (``top_ids`` int32 and ``top_scores`` float32, (vocab, k, n_top), best first), the output
embedding E (vocab, d) and ``n_senses`` / ``n_top``. It is computed a few tokens at a time, so no
(vocab, k, vocab) tensor is ever held whole.

A published version (family ``backpack``) holds ``model.onnx``, ``tokenizer.json`` and ``senses.npz``; its
manifest's ``parity`` has ``fp32`` (``sentence_embedding``, with batch-vs-single) and ``fp32.<output>`` for the
other three outputs. Publishing is idempotent like the dual-encoder pipeline: the same inputs and settings
return the existing version.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import torch
from tokenizers import Tokenizer
from torch import nn

from xalign.export.dual_encoder import DEFAULT_OPSET, INPUT_NAMES, MIN_OPSET, check_interface, pool
from xalign.export.parity import (
    BATCH_TOLERANCE,
    FP32_MIN_COSINE,
    Batch,
    FloatArray,
    IntArray,
    ParityError,
    compare,
    count_truncated,
    encode,
    load_parity_texts,
    load_tokenizer,
    open_session,
)
from xalign.export.pipeline import folder_hashes, parity_texts_hash, write_service_tokenizer
from xalign.modelstore import Manifest, ModelSpec, ModelStore, OnnxInfo, ParityReport, SourceInfo
from xalign.modelstore.artifacts import (
    BACKPACK_OUTPUTS,
    ONNX_FILE,
    OUTPUT_RANKS,
    SENSES_FILE,
    SenseTable,
    write_senses,
)
from xalign.modelstore.manifest import DataFile
from xalign.modelstore.names import validate_name
from xalign.training.models.backpack import TOKENIZER_FILE, Backpack, load_backpack

log = logging.getLogger(__name__)

# Bump when a change here changes what gets published for the same inputs.
EXPORT_CODE_VERSION = "1"
FAMILY = "backpack"
OUTPUT_NAMES = BACKPACK_OUTPUTS
DEFAULT_N_TOP = 10
# Largest (tokens, k, vocab) score block held at once while building senses.npz (float32: 64 MB).
SENSE_CHUNK_ELEMENTS = 1 << 24

Outputs = dict[str, FloatArray]


class BackpackGraph(nn.Module):
    """What gets exported: the Backpack's contextual states, senses and alpha plus a pooled sentence vector."""

    def __init__(self, model: Backpack) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Ids and mask (batch, seq) -> (sentence_embedding, contextual, senses, alpha)."""
        contextual, senses, alpha = self.model.represent(input_ids, attention_mask)
        pooled = pool(contextual, attention_mask, "mean")  # (batch, d)
        return nn.functional.normalize(pooled, p=2.0, dim=-1), contextual, senses, alpha


def example_inputs(graph: BackpackGraph) -> tuple[torch.Tensor, torch.Tensor]:
    """A padded example batch (2, 8) for tracing; sizes > 1 so both axes stay symbolic."""
    config = graph.model.config
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(
        low=min(4, config.vocab_size - 1), high=config.vocab_size, size=(2, 8), generator=generator
    )
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 5:] = 0  # the second row is padded, as in a real batch
    return input_ids, attention_mask


def export_backpack(graph: BackpackGraph, path: Path, opset: int = DEFAULT_OPSET) -> Path:
    """Write ``graph`` as one self-contained ONNX file and check its four-output interface."""
    if opset < MIN_OPSET:
        raise ValueError(f"opset must be at least {MIN_OPSET}, got {opset}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    axes = {0: torch.export.Dim("batch"), 1: torch.export.Dim("sequence", max=graph.model.config.max_positions)}
    graph.eval()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"# The axis name")
        warnings.filterwarnings("ignore", message=r".*LeafSpec", category=FutureWarning)
        torch.onnx.export(
            graph,
            example_inputs(graph),
            str(path),
            input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES),
            opset_version=opset,
            dynamo=True,
            external_data=False,
            dynamic_shapes={INPUT_NAMES[0]: axes, INPUT_NAMES[1]: axes},
            verbose=False,
        )
    check_backpack_interface(path, graph.model.config.n_embd, opset)
    log.info("wrote %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return path


def check_backpack_interface(path: Path, dim: int, opset: int) -> None:
    """Raise ``ValueError`` unless the graph has the dual-encoder inputs and the four float32 outputs."""
    check_interface(path, dim, opset)  # inputs, opset and sentence_embedding (batch, dim)
    outputs = {value.name: value.type.tensor_type for value in onnx.load(str(path)).graph.output}
    for name, rank in OUTPUT_RANKS.items():
        found = outputs.get(name)
        if found is None or found.elem_type != onnx.TensorProto.FLOAT or len(found.shape.dim) != rank:
            raise ValueError(f"{path}: output {name} must be float32 of rank {rank}")


# --- parity --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackpackParity:
    """Per output: agreement of ONNX with PyTorch, and the ONNX alone-vs-padded-batch difference."""

    texts: int
    truncated: int
    outputs: dict[str, ParityReport]
    batch_vs_single: dict[str, float]


def run_torch(graph: BackpackGraph, batch: Batch) -> Outputs:
    """PyTorch reference outputs by name."""
    with torch.inference_mode():
        values = graph(torch.from_numpy(batch.input_ids), torch.from_numpy(batch.attention_mask))
    return {name: value.numpy().astype(np.float32) for name, value in zip(OUTPUT_NAMES, values, strict=True)}


def run_onnx(session: onnxruntime.InferenceSession, batch: Batch) -> Outputs:
    """ONNX outputs by name."""
    values = session.run(list(OUTPUT_NAMES), batch.feed())
    return {name: np.asarray(value, dtype=np.float32) for name, value in zip(OUTPUT_NAMES, values, strict=True)}


def real_rows(outputs: Outputs, mask: IntArray, width: int) -> Outputs:
    """Each output as rows over real tokens only, so padding and batch shape drop out.

    sentence_embedding (texts, d); contextual (tokens, d); senses (tokens, k*d); alpha (tokens*k, ``width``):
    the row alpha[l, i, :] of each real token i, zero-padded to ``width`` positions.
    """
    real = mask.astype(bool)  # (batch, seq)
    alpha = outputs["alpha"].transpose(0, 2, 1, 3)[real]  # (tokens, k, seq)
    alpha = np.pad(alpha, ((0, 0), (0, 0), (0, width - alpha.shape[-1])))  # (tokens, k, width)
    return {
        "sentence_embedding": outputs["sentence_embedding"],
        "contextual": outputs["contextual"][real],
        "senses": outputs["senses"][real].reshape(int(real.sum()), -1),
        "alpha": alpha.reshape(-1, width),
    }


def check_backpack_parity(
    graph: BackpackGraph,
    onnx_path: Path,
    tokenizer: Tokenizer,
    texts: Sequence[str],
    *,
    batch_size: int = 16,
    batch_sample: int = 16,
) -> BackpackParity:
    """Compare all four ONNX outputs with PyTorch on ``texts`` (tokenizer truncates and pads)."""
    if not texts:
        raise ValueError("parity needs at least one text")
    session = open_session(onnx_path)
    width = max(len(e.ids) for e in tokenizer.encode_batch(list(texts)))
    reference: dict[str, list[FloatArray]] = {name: [] for name in OUTPUT_NAMES}
    candidate: dict[str, list[FloatArray]] = {name: [] for name in OUTPUT_NAMES}
    for start in range(0, len(texts), batch_size):
        batch = encode(tokenizer, texts[start : start + batch_size])
        for store, outputs in ((reference, run_torch(graph, batch)), (candidate, run_onnx(session, batch))):
            for name, rows in real_rows(outputs, batch.attention_mask, width).items():
                store[name].append(rows)
    reports = {name: compare(np.concatenate(reference[name]), np.concatenate(candidate[name])) for name in OUTPUT_NAMES}
    return BackpackParity(
        texts=len(texts),
        truncated=count_truncated(tokenizer, texts),
        outputs=reports,
        batch_vs_single=backpack_batch_vs_single(session, tokenizer, texts, batch_sample),
    )


def backpack_batch_vs_single(
    session: onnxruntime.InferenceSession, tokenizer: Tokenizer, texts: Sequence[str], sample: int
) -> dict[str, float]:
    """Per output, the largest difference between texts run alone and inside one padded batch.

    The batch holds up to ``sample`` evenly spread texts plus the longest, so the others are padded;
    differences are relative to max(1, |row|) as in ``export.parity.batch_vs_single``.
    """
    longest = max(range(len(texts)), key=lambda i: len(texts[i]))
    step = max(1, len(texts) // max(1, sample))
    chosen = [texts[i] for i in range(0, len(texts), step)[:sample]] + [texts[longest]]
    together = encode(tokenizer, chosen)
    width = together.input_ids.shape[1]
    batched = real_rows(run_onnx(session, together), together.attention_mask, width)
    worst = dict.fromkeys(OUTPUT_NAMES, 0.0)
    offsets = dict.fromkeys(OUTPUT_NAMES, 0)
    for text in chosen:
        alone = encode(tokenizer, [text])
        for name, rows in real_rows(run_onnx(session, alone), alone.attention_mask, width).items():
            mine = batched[name][offsets[name] : offsets[name] + len(rows)]
            offsets[name] += len(rows)
            scale = np.maximum(1.0, np.linalg.norm(rows, axis=1, keepdims=True))  # (rows, 1)
            worst[name] = max(worst[name], float((np.abs(mine - rows) / scale).max()))
    return worst


def require_backpack_parity(
    result: BackpackParity, min_cosine: float = FP32_MIN_COSINE, batch_tolerance: float = BATCH_TOLERANCE
) -> None:
    """Raise ``ParityError`` unless every output reaches ``min_cosine`` and passes batch-vs-single."""
    for name in OUTPUT_NAMES:
        report = result.outputs[name]
        if not report.min_cosine >= min_cosine:  # `not >=` also catches NaN
            raise ParityError(
                f"ONNX output {name} does not match PyTorch: min cosine {report.min_cosine:.6f} < {min_cosine} "
                f"(max abs diff {report.max_abs_diff:.3g})"
            )
        diff = result.batch_vs_single[name]
        if not diff <= batch_tolerance:
            raise ParityError(f"ONNX output {name} differs alone and in a padded batch: {diff:.3g} > {batch_tolerance}")


# --- senses.npz ----------------------------------------------------------------------------------------------


def build_senses_table(
    model: Backpack, n_top: int = DEFAULT_N_TOP, chunk_elements: int = SENSE_CHUNK_ELEMENTS
) -> SenseTable:
    """Top words of every (token, sense): C(t)[l] . E_w, a chunk of tokens at a time."""
    vocab, k = model.config.vocab_size, model.config.n_senses
    if not 1 <= n_top <= vocab:
        raise ValueError(f"n_top must be in 1..{vocab}, got {n_top}")
    rows = max(1, chunk_elements // (k * vocab))  # tokens per chunk
    ids_parts: list[torch.Tensor] = []
    score_parts: list[torch.Tensor] = []
    with torch.inference_mode():
        embedding = model.embed.weight  # (vocab, d)
        for start in range(0, vocab, rows):
            senses = model.senses(torch.arange(start, min(start + rows, vocab)))  # (chunk, k, d)
            top = (senses @ embedding.T).topk(n_top, dim=-1)  # (chunk, k, n_top), best first
            ids_parts.append(top.indices)
            score_parts.append(top.values)
        output_embedding = embedding.numpy().astype(np.float32)
    return SenseTable(
        top_ids=torch.cat(ids_parts).numpy().astype(np.int32),
        top_scores=torch.cat(score_parts).numpy().astype(np.float32),
        output_embedding=output_embedding,
    )


# --- publishing ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackpackExportConfig:
    """What ``export_and_publish_backpack`` needs; ``max_seq_length`` None means the model's positions."""

    model_dir: Path
    store: Path
    name: str
    base_model: str = "Backpack LM trained from scratch"
    max_seq_length: int | None = None
    languages: tuple[str, ...] = ()
    n_top: int = DEFAULT_N_TOP
    opset: int = DEFAULT_OPSET
    recipe: str | None = None
    data_files: tuple[DataFile, ...] = ()
    steps: int = 0
    code_revision: str | None = None
    evaluation: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    licenses: tuple[str, ...] = ()
    parity_texts: Path | None = None
    work_dir: Path | None = None

    def __post_init__(self) -> None:
        validate_name(self.name)
        if self.opset < MIN_OPSET:
            raise ValueError(f"opset must be at least {MIN_OPSET}, got {self.opset}")
        if (self.max_seq_length is not None and self.max_seq_length < 1) or self.n_top < 1 or self.steps < 0:
            raise ValueError("max_seq_length and n_top must be positive and steps non-negative")


def backpack_fingerprint(config: BackpackExportConfig) -> str:
    """sha256 over the checkpoint folder, parity texts, library versions and every publishing setting."""
    digest = hashlib.sha256()
    for relative, sha in folder_hashes(Path(config.model_dir)):
        digest.update(f"file {relative} {sha}\n".encode())
    digest.update(f"parity {parity_texts_hash(config.parity_texts)}\n".encode())
    settings = {
        "family": FAMILY,
        "export_code_version": EXPORT_CODE_VERSION,
        "libraries": {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__},
        "base_model": config.base_model,
        "max_seq_length": config.max_seq_length,
        "languages": list(config.languages),
        "n_top": config.n_top,
        "opset": config.opset,
        "recipe": config.recipe,
        "data_files": [f.model_dump() for f in config.data_files],
        "steps": config.steps,
        "code_revision": config.code_revision,
        "evaluation": {task: dict(metrics) for task, metrics in config.evaluation.items()},
        "licenses": list(config.licenses),
    }
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()


def export_and_publish_backpack(config: BackpackExportConfig) -> Manifest:
    """Export, check parity, build ``senses.npz`` and publish ``config.name``; reuse an identical version.

    Raises ``ParityError`` (publishing nothing) when an output misses cosine 0.9999 against PyTorch or
    differs alone and in a padded batch.
    """
    store = ModelStore(config.store)
    fp = backpack_fingerprint(config)
    existing = store.find_fingerprint(config.name, fp)
    if existing is not None:
        log.info("%s version %d has fingerprint %s: nothing to publish", existing.name, existing.version, fp[:12])
        return existing
    graph = BackpackGraph(load_backpack(Path(config.model_dir)))
    max_len = _max_seq_length(config, graph.model)
    if config.work_dir is not None:
        Path(config.work_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="xalign-backpack-", dir=config.work_dir) as tmp:
        files = _stage(config, graph, max_len, Path(tmp))
        parity = _run_parity(config, graph, files[ONNX_FILE], max_len)
        spec = build_backpack_spec(config, graph.model, parity, fp, max_len)
        manifest = store.publish(config.name, spec, files)
    log.info("published %s version %d", manifest.name, manifest.version)
    return manifest


def _max_seq_length(config: BackpackExportConfig, model: Backpack) -> int:
    limit = model.config.max_positions
    if config.max_seq_length is not None and config.max_seq_length > limit:
        raise ValueError(f"max_seq_length {config.max_seq_length} exceeds the model's {limit} positions")
    return limit if config.max_seq_length is None else config.max_seq_length


def _stage(config: BackpackExportConfig, graph: BackpackGraph, max_len: int, staging: Path) -> dict[str, Path]:
    """Write model.onnx, the service tokenizer.json and senses.npz into ``staging``; file name -> path."""
    source_tokenizer = Path(config.model_dir) / TOKENIZER_FILE
    return {
        ONNX_FILE: export_backpack(graph, staging / ONNX_FILE, opset=config.opset),
        TOKENIZER_FILE: write_service_tokenizer(source_tokenizer, staging / TOKENIZER_FILE, max_len),
        SENSES_FILE: write_senses(build_senses_table(graph.model, config.n_top), staging / SENSES_FILE),
    }


def _run_parity(config: BackpackExportConfig, graph: BackpackGraph, onnx_path: Path, max_len: int) -> BackpackParity:
    tokenizer = load_tokenizer(Path(config.model_dir) / TOKENIZER_FILE, max_len, graph.model.config.pad_id)
    result = check_backpack_parity(graph, onnx_path, tokenizer, load_parity_texts(config.parity_texts))
    for name, report in result.outputs.items():
        log.info(
            "parity %s: min cosine %.6f, max abs diff %.3g, batch-vs-single %.3g",
            name,
            report.min_cosine,
            report.max_abs_diff,
            result.batch_vs_single[name],
        )
    require_backpack_parity(result)
    return result


def build_backpack_spec(
    config: BackpackExportConfig, model: Backpack, parity: BackpackParity, fp: str, max_len: int
) -> ModelSpec:
    """The manifest content for a Backpack version (DESIGN.md §3)."""
    reports = {
        # ``texts`` counts texts for every output (compare() counted rows: tokens, or tokens x senses for alpha).
        ("fp32" if name == OUTPUT_NAMES[0] else f"fp32.{name}"): report.model_copy(
            update={"texts": parity.texts, "batch_vs_single": parity.batch_vs_single[name]}
        )
        for name, report in parity.outputs.items()
    }
    return ModelSpec(
        family=FAMILY,
        embedding_dim=model.config.n_embd,
        pooling="mean",
        normalize=True,
        max_seq_length=max_len,
        text_prefix="",
        languages=list(config.languages),
        onnx=OnnxInfo(
            opset=config.opset, inputs=list(INPUT_NAMES), outputs=list(OUTPUT_NAMES), variants={"fp32": ONNX_FILE}
        ),
        source=SourceInfo(
            base_model=config.base_model,
            recipe=config.recipe,
            data_files=list(config.data_files),
            steps=config.steps,
            code_revision=config.code_revision,
            fingerprint=fp,
        ),
        evaluation={task: dict(metrics) for task, metrics in config.evaluation.items()},
        parity=reports,
        licenses=list(config.licenses),
    )
