"""The one export pipeline: fingerprint, stage, parity, evaluate, publish, for any family (``export/family.py``).

``export_and_publish`` is idempotent: the fingerprint of every input (``export/fingerprint.py``) is stored in
the manifest, and a rerun with the same fingerprint returns the existing manifest without exporting. Otherwise
the family writes its graph(s) and files into a temporary staging folder, the service tokenizer joins them,
every output of every variant is checked against PyTorch on the texts as the service tokenizes them
(``export/parity.py``), the staged variants are evaluated, and the folder is published as the next version.

Before publishing, an ``evaluate`` (default: the family's own measurement) and a ``review`` may add to the
evaluation; the review may refuse the version by raising (the aligned default's gate, ``export/aligned.py``).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from tokenizers import Tokenizer

from xalign.export.config import Evaluation, PublishConfig
from xalign.export.family import Family, ModelT, Serving
from xalign.export.fingerprint import fingerprint
from xalign.export.parity import ParityResult, check_parity, require_parity
from xalign.export.parity_texts import load_parity_texts
from xalign.export.progress import step
from xalign.modelstore import Manifest, ModelSpec, ModelStore, OnnxInfo, SourceInfo
from xalign.modelstore.artifacts import INPUT_NAMES, TOKENIZER_FILE, VARIANT_FILES
from xalign.runtime.tokenization import TextTokenizer

log = logging.getLogger(__name__)

ConfigT = TypeVar("ConfigT", bound=PublishConfig)

# The evaluation about to be published -> the evaluation to publish; raises to publish nothing.
Review = Callable[[Evaluation], Evaluation]


def export_and_publish(
    config: ConfigT,
    family: Family[ConfigT, ModelT],
    *,
    evaluate: Callable[[ConfigT, Mapping[str, Path], Path, int], Evaluation] | None = None,
    review: Review | None = None,
) -> Manifest:
    """Export, check parity, and publish ``config.name`` as a new version; reuse an identical one.

    Raises ``ParityError`` (and publishes nothing) if an fp32 output misses cosine 0.9999 against PyTorch or a
    text gives a different result alone and in a padded batch. ``evaluate`` (config, staged variant -> file,
    service tokenizer.json, embedding dim) measures the staged variants (default: ``family.measure``);
    ``review`` sees the evaluation before publishing and may extend it or raise, which publishes nothing.
    Neither runs when an identical version already exists.
    """
    store = ModelStore(config.store)
    with step("fingerprinting inputs"):
        fp = fingerprint(config)
    existing = store.find_fingerprint(config.name, fp)
    if existing is not None:
        log.info("%s version %d has fingerprint %s: nothing to publish", existing.name, existing.version, fp[:12])
        return existing
    with step(f"loading {config.model_dir}"):
        model = family.load(config)
    serving = family.serving(config, model)
    if config.work_dir is not None:
        Path(config.work_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="xalign-export-", dir=config.work_dir) as tmp:
        staging = Path(tmp)
        staged = family.stage(config, model, staging)
        tokenizer = write_service_tokenizer(config.tokenizer_path, staging / TOKENIZER_FILE, serving.max_seq_length)
        text_tokenizer = TextTokenizer(tokenizer, serving.max_seq_length, serving.text_prefix)
        parity = run_parity(family, model, staged.variants, text_tokenizer, config.parity_texts)
        measured = (evaluate or family.measure)(config, staged.variants, tokenizer, serving.embedding_dim)
        evaluation = {**config.given_evaluation(), **measured}
        if review is not None:
            evaluation = review(evaluation)
        spec = build_spec(config, family, serving, parity, fp, evaluation=evaluation)
        with step(f"publishing {config.name} to {config.store}"):
            manifest = store.publish(config.name, spec, {**staged.files(), TOKENIZER_FILE: tokenizer})
    log.info("published %s version %d", manifest.name, manifest.version)
    return manifest


def run_parity(
    family: Family[Any, ModelT],
    model: ModelT,
    variants: Mapping[str, Path],
    tokenizer: TextTokenizer,
    parity_texts: Path | None,
) -> ParityResult:
    """Check every variant against PyTorch; raise ``ParityError`` if fp32 misses the bar."""
    texts = load_parity_texts(parity_texts)
    with step(f"parity of {', '.join(variants)} on {len(texts)} texts"):
        result = check_parity(family, model, variants, tokenizer, texts)
    for key, report in result.reports.items():
        log.info(
            "parity %s: min cosine %.6f, max abs diff %.3g, batch-vs-single %.3g",
            key,
            report.min_cosine,
            report.max_abs_diff,
            result.batch_vs_single[key],
        )
    log.info("parity: %d of %d texts were truncated to %d tokens", result.truncated, result.texts, tokenizer.max_length)
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
    config: PublishConfig,
    family: Family[Any, Any],
    serving: Serving,
    parity: ParityResult,
    fp: str,
    *,
    evaluation: Evaluation,
) -> ModelSpec:
    """The manifest content the exporter vouches for; the store adds name, version and checksums."""
    return ModelSpec(
        family=family.name,
        **serving.manifest_fields(),
        languages=list(config.languages),
        onnx=OnnxInfo(
            opset=config.opset,
            inputs=list(INPUT_NAMES),
            outputs=list(family.outputs),
            variants={name: VARIANT_FILES[name] for name in parity.variants},
        ),
        source=SourceInfo(
            base_model=config.base_model,
            recipe=config.recipe,
            data_files=list(config.data_files),
            steps=config.steps,
            code_revision=config.code_revision,
            fingerprint=fp,
        ),
        evaluation=evaluation,
        parity={
            key: report.model_copy(update={"batch_vs_single": parity.batch_vs_single[key]})
            for key, report in parity.reports.items()
        },
        licenses=list(config.licenses),
    )
