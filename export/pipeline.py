"""Export a dual-encoder folder to ONNX variants, check parity, and publish one store version.

``export_and_publish`` is idempotent: the fingerprint of every input (model files,
tokenizer, parity texts, the settings that shape the published version, the export code
version and the library versions that produce the graph) is stored in the manifest, and a
rerun with the same fingerprint returns the existing manifest without exporting.

Before publishing, the staged variants are evaluated (``evaluate``: Tatoeba and BUCC when their folders are
set) and a ``review`` may add to the evaluation or refuse the version by raising (the aligned default's gate).
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx
import onnxruntime
import torch
import transformers
from tokenizers import Tokenizer

from xalign.export.dual_encoder import (
    DEFAULT_OPSET,
    INPUT_NAMES,
    MIN_OPSET,
    OUTPUT_NAME,
    POOLING_MODES,
    DualEncoder,
    PoolingMode,
    export_dual_encoder,
    load_dual_encoder,
)
from xalign.export.evaluation import bucc_inputs, evaluate_variants, tatoeba_inputs
from xalign.export.fp16 import convert_fp16
from xalign.export.parity import ParityResult, check_parity, load_parity_texts, load_tokenizer, require_parity
from xalign.export.quantize import quantize_int8
from xalign.modelstore import Manifest, ModelSpec, ModelStore, OnnxInfo, SourceInfo
from xalign.modelstore.integrity import sha256_file
from xalign.modelstore.manifest import DataFile
from xalign.modelstore.names import validate_name
from xalign.training.evaluate.bucc import BuccCorpus, cap_bucc, read_bucc

log = logging.getLogger(__name__)

# Bump when a change here changes what gets published for the same inputs (graph, variants, tokenizer).
EXPORT_CODE_VERSION = "1"
FAMILY = "dual-encoder"
TOKENIZER_FILE = "tokenizer.json"
# Variant → file name in the version folder (DESIGN.md §3); fp32 is always exported, the others derive from it.
VARIANT_FILES: dict[str, str] = {"fp32": "model.onnx", "int8": "model.int8.onnx", "fp16": "model.fp16.onnx"}

Evaluation = dict[str, dict[str, float]]


@dataclass(frozen=True)
class ExportConfig:
    """Everything ``export_and_publish`` needs; each field is also a ``xalign-export onnx`` option."""

    model_dir: Path
    store: Path
    name: str
    base_model: str
    pooling: PoolingMode = "mean"
    normalize: bool = True
    max_seq_length: int = 512
    text_prefix: str = ""
    languages: tuple[str, ...] = ()
    variants: tuple[str, ...] = ("fp32", "int8")
    opset: int = DEFAULT_OPSET
    quantize_embeddings: bool = True
    allowed_dimensions: tuple[int, ...] = ()
    tokenizer: Path | None = None
    recipe: str | None = None
    data_files: tuple[DataFile, ...] = ()
    steps: int = 0
    code_revision: str | None = None
    evaluation: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    licenses: tuple[str, ...] = ()
    parity_texts: Path | None = None
    work_dir: Path | None = None
    # When set, every variant is evaluated on these Tatoeba files before publishing (results in the manifest).
    tatoeba_dir: Path | None = None
    tatoeba_langs: tuple[str, ...] = ("deu", "fra", "ces", "spa", "rus")
    # When set, every variant's BUCC-2018 F1 on this pair's sample is recorded too, with at most ``bucc_max``
    # sentences per side (every gold pair kept; None: the whole sample).
    bucc_dir: Path | None = None
    bucc_pair: str = "de-en"
    bucc_max: int | None = 8000

    def __post_init__(self) -> None:
        validate_name(self.name)
        if self.pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {POOLING_MODES}, got {self.pooling!r}")
        unknown = sorted(set(self.variants) - set(VARIANT_FILES))
        if unknown or "fp32" not in self.variants:
            raise ValueError(f"variants must include fp32 and come from {sorted(VARIANT_FILES)}, got {self.variants}")
        if self.opset < MIN_OPSET:
            raise ValueError(f"opset must be at least {MIN_OPSET}, got {self.opset}")
        if self.max_seq_length < 1 or self.steps < 0:
            raise ValueError("max_seq_length must be positive and steps non-negative")
        if self.bucc_max is not None and self.bucc_max < 1:
            raise ValueError(f"bucc_max must be positive (or None for the whole sample), got {self.bucc_max}")

    @property
    def tokenizer_path(self) -> Path:
        """The tokenizer.json to publish: ``tokenizer`` if given, else the model folder's."""
        return Path(self.tokenizer) if self.tokenizer is not None else Path(self.model_dir) / TOKENIZER_FILE


def fingerprint(config: ExportConfig) -> str:
    """sha256 over the model folder, tokenizer, parity texts and every setting that shapes the version.

    Paths, the store, the model name and the work folder are left out: moving the inputs
    does not make a new model. Library versions are in: a different exporter makes a different graph.
    """
    digest = hashlib.sha256()
    for relative, sha in folder_hashes(Path(config.model_dir)):
        digest.update(f"file {relative} {sha}\n".encode())
    digest.update(f"tokenizer {sha256_file(config.tokenizer_path)}\n".encode())
    digest.update(f"parity {parity_texts_hash(config.parity_texts)}\n".encode())
    if config.tatoeba_dir is not None:
        for path in tatoeba_inputs(Path(config.tatoeba_dir), config.tatoeba_langs):
            digest.update(f"eval {path.name} {sha256_file(path)}\n".encode())
    if config.bucc_dir is not None:
        for path in bucc_inputs(Path(config.bucc_dir), config.bucc_pair):
            digest.update(f"eval {path.name} {sha256_file(path)}\n".encode())
    digest.update(json.dumps(_settings(config), sort_keys=True).encode())
    return digest.hexdigest()


def folder_hashes(folder: Path) -> list[tuple[str, str]]:
    """(relative path, sha256) of every visible file under ``folder``, sorted."""
    if not folder.is_dir():
        raise FileNotFoundError(f"model folder {folder} does not exist")
    files = [p for p in folder.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.parts)]
    return sorted((p.relative_to(folder).as_posix(), sha256_file(p)) for p in files)


def parity_texts_hash(path: Path | None) -> str:
    """sha256 of the parity texts (the packaged set when ``path`` is None), one per line."""
    return hashlib.sha256("\n".join(load_parity_texts(path)).encode()).hexdigest()


def _settings(config: ExportConfig) -> dict[str, Any]:
    """The settings that change the published files or manifest, as JSON-ready values."""
    settings = {
        "export_code_version": EXPORT_CODE_VERSION,
        "libraries": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
        "base_model": config.base_model,
        "pooling": config.pooling,
        "normalize": config.normalize,
        "max_seq_length": config.max_seq_length,
        "text_prefix": config.text_prefix,
        "languages": list(config.languages),
        "variants": sorted(config.variants),
        "opset": config.opset,
        "quantize_embeddings": config.quantize_embeddings,
        "allowed_dimensions": list(config.allowed_dimensions),
        "recipe": config.recipe,
        "data_files": [f.model_dump() for f in config.data_files],
        "steps": config.steps,
        "code_revision": config.code_revision,
        "evaluation": {task: dict(metrics) for task, metrics in config.evaluation.items()},
        "licenses": list(config.licenses),
        "tatoeba_langs": list(config.tatoeba_langs) if config.tatoeba_dir is not None else [],
    }
    if config.bucc_dir is not None:  # only then, so versions published before BUCC keep their fingerprints
        settings["bucc"] = {"pair": config.bucc_pair, "max": config.bucc_max}
    return settings


@contextmanager
def _step(what: str) -> Iterator[None]:
    """Log the start and duration of a long step."""
    log.info("%s …", what)
    start = time.perf_counter()
    yield
    log.info("%s done in %.1f s", what, time.perf_counter() - start)


# (config, staged variant → file, service tokenizer.json, embedding dim) → {task: {metric: value}}
Evaluate = Callable[[ExportConfig, Mapping[str, Path], Path, int], Evaluation]
# The evaluation about to be published → the evaluation to publish; raises to publish nothing.
Review = Callable[[Evaluation], Evaluation]


def export_and_publish(
    config: ExportConfig, *, evaluate: Evaluate | None = None, review: Review | None = None
) -> Manifest:
    """Export, check parity, and publish ``config.name`` as a new version; reuse an identical one.

    Raises ``ParityError`` (and publishes nothing) if fp32 ONNX misses cosine 0.9999 against
    PyTorch or a text embeds differently alone and in a padded batch. ``evaluate`` measures the staged
    variants (default: ``measure``); ``review`` sees the evaluation before publishing and may extend it or
    raise, which publishes nothing. Neither runs when an identical version already exists.
    """
    store = ModelStore(config.store)
    with _step("fingerprinting inputs"):
        fp = fingerprint(config)
    existing = store.find_fingerprint(config.name, fp)
    if existing is not None:
        log.info("%s version %d has fingerprint %s: nothing to publish", existing.name, existing.version, fp[:12])
        return existing
    with _step(f"loading {config.model_dir}"):
        module = load_dual_encoder(Path(config.model_dir), config.pooling, config.normalize)
    _check_fits(config, module)
    if config.work_dir is not None:
        Path(config.work_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="xalign-export-", dir=config.work_dir) as tmp:
        staging = Path(tmp)
        variants = _export_variants(config, module, staging)
        parity = _run_parity(config, module, variants)
        tokenizer = write_service_tokenizer(config.tokenizer_path, staging / TOKENIZER_FILE, config.max_seq_length)
        measured = (evaluate or measure)(config, variants, tokenizer, module.embedding_dim)
        evaluation = {**{task: dict(metrics) for task, metrics in config.evaluation.items()}, **measured}
        if review is not None:
            evaluation = review(evaluation)
        spec = build_spec(config, module, parity, fp, evaluation)
        files = {VARIANT_FILES[name]: path for name, path in variants.items()}
        files[TOKENIZER_FILE] = tokenizer
        with _step(f"publishing {config.name} to {config.store}"):
            manifest = store.publish(config.name, spec, files)
    log.info("published %s version %d", manifest.name, manifest.version)
    return manifest


def measure(config: ExportConfig, variants: Mapping[str, Path], tokenizer: Path, dim: int) -> Evaluation:
    """Tatoeba (when ``tatoeba_dir`` is set) and BUCC (when ``bucc_dir`` is set) of every staged variant."""
    bucc = load_bucc(config)
    tasks = [f"Tatoeba {' '.join(config.tatoeba_langs)}"] if config.tatoeba_dir is not None else []
    if bucc is not None:
        tasks.append(f"BUCC {bucc.pair} ({len(bucc.src_ids)} + {len(bucc.tgt_ids)} sentences)")
    if not tasks:
        return {}
    with _step(f"evaluating {', '.join(variants)}: {'; '.join(tasks)}"):
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


def _check_fits(config: ExportConfig, module: DualEncoder) -> None:
    if config.max_seq_length > module.max_positions:
        raise ValueError(f"max_seq_length {config.max_seq_length} exceeds the model's {module.max_positions} positions")
    too_big = [d for d in config.allowed_dimensions if not 0 < d <= module.embedding_dim]
    if too_big:
        raise ValueError(f"allowed_dimensions {too_big} are not in 1..{module.embedding_dim}")


def _export_variants(config: ExportConfig, module: DualEncoder, staging: Path) -> dict[str, Path]:
    """Write fp32 and the requested derived variants into ``staging``; variant → file."""
    fp32 = staging / VARIANT_FILES["fp32"]
    with _step(f"exporting fp32 ONNX (opset {config.opset})"):
        export_dual_encoder(module, fp32, opset=config.opset)
    variants = {"fp32": fp32}
    if "int8" in config.variants:
        with _step("quantising to int8"):
            variants["int8"] = quantize_int8(
                fp32, staging / VARIANT_FILES["int8"], quantize_embeddings=config.quantize_embeddings
            )
    if "fp16" in config.variants:
        with _step("converting to fp16"):
            variants["fp16"] = convert_fp16(fp32, staging / VARIANT_FILES["fp16"])
    return variants


def _run_parity(config: ExportConfig, module: DualEncoder, variants: Mapping[str, Path]) -> ParityResult:
    """Check every variant against PyTorch; raise ``ParityError`` if fp32 misses the bar."""
    tokenizer = load_tokenizer(config.tokenizer_path, config.max_seq_length, module.pad_id)
    # The service prepends the prefix to every text, so parity does too.
    texts = [config.text_prefix + text for text in load_parity_texts(config.parity_texts)]
    with _step(f"parity of {', '.join(variants)} on {len(texts)} texts"):
        result = check_parity(module, variants, tokenizer, texts)
    for name, report in result.variants.items():
        log.info(
            "parity %s: min cosine %.6f, max abs diff %.3g, batch-vs-single %.3g",
            name,
            report.min_cosine,
            report.max_abs_diff,
            result.batch_vs_single[name],
        )
    log.info(
        "parity: %d of %d texts were truncated to %d tokens", result.truncated, result.texts, config.max_seq_length
    )
    require_parity(result)
    return result


def write_service_tokenizer(source: Path, target: Path, max_seq_length: int) -> Path:
    """Save the tokenizer as the service uses it: truncation to ``max_seq_length``, no padding (the service pads)."""
    tokenizer = Tokenizer.from_file(str(source))
    tokenizer.enable_truncation(max_length=max_seq_length)
    tokenizer.no_padding()
    tokenizer.save(str(target))
    return target


def build_spec(
    config: ExportConfig,
    module: DualEncoder,
    parity: ParityResult,
    fp: str,
    evaluation: Mapping[str, Mapping[str, float]] | None = None,
) -> ModelSpec:
    """The manifest content the exporter vouches for; the store adds name, version and checksums."""
    return ModelSpec(
        family=FAMILY,
        embedding_dim=module.embedding_dim,
        pooling=config.pooling,
        normalize=config.normalize,
        max_seq_length=config.max_seq_length,
        text_prefix=config.text_prefix,
        languages=list(config.languages),
        allowed_dimensions=list(config.allowed_dimensions),
        onnx=OnnxInfo(
            opset=config.opset,
            inputs=list(INPUT_NAMES),
            outputs=[OUTPUT_NAME],
            variants={name: VARIANT_FILES[name] for name in sorted(parity.variants)},
        ),
        source=SourceInfo(
            base_model=config.base_model,
            recipe=config.recipe,
            data_files=list(config.data_files),
            steps=config.steps,
            code_revision=config.code_revision,
            fingerprint=fp,
        ),
        evaluation={task: dict(m) for task, m in (config.evaluation if evaluation is None else evaluation).items()},
        parity={
            name: report.model_copy(update={"batch_vs_single": parity.batch_vs_single.get(name)})
            for name, report in parity.variants.items()
        },
        licenses=list(config.licenses),
    )
