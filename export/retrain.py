"""A retraining job: train a recipe, export the checkpoint, publish it as the next version of a served model.

This is what the deployment's ``trainer`` service runs (``xalign-export retrain``). The run resumes from its
output folder when it has checkpoints, so a job that was stopped continues where it was. The new version keeps
the serving contract of the version it replaces (token limit, text prefix, languages, Matryoshka sizes,
licences, pooling): clients see the same model, better aligned. With nothing to replace, the recipe's pooling,
prefix and token limit are used. The manifest records the recipe file, every training file's sha256, the
steps, the code revision and the last dev evaluation of the checkpoint. ``promote`` moves ``production`` to the
new version, which a running service picks up; ``xalign-store rollback`` moves it back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from export.pipeline import Evaluation, ExportConfig, export_and_publish
from modelstore import Manifest, ModelStore
from modelstore.aliases import DEFAULT_ALIAS
from modelstore.errors import ModelNotFoundError
from modelstore.manifest import DataFile
from modelstore.refs import ModelRef
from training.data.licences import data_licences
from training.recipes.loader import Overrides, load_recipe
from training.recipes.recipe import Recipe
from training.trainer.checkpoint import CheckpointManifest, read_manifest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetrainJob:
    """One job: the recipe (with command-line ``overrides``), where to publish, and how to export."""

    recipe: Path
    store: Path
    name: str
    overrides: Overrides = field(default_factory=Overrides)
    promote: bool = True
    variants: tuple[str, ...] = ("fp32", "int8")
    tatoeba_dir: Path | None = None
    bucc_dir: Path | None = None
    work_dir: Path | None = None
    progress: bool = True


@dataclass(frozen=True)
class RetrainResult:
    """The published (or identical, reused) version and whether ``production`` now points at it."""

    manifest: Manifest
    promoted: bool


def retrain(job: RetrainJob) -> RetrainResult:
    """Train (resuming), export, publish and optionally promote; see the module docstring."""
    from training.trainer.loop import train  # noqa: PLC0415 - torch and the trainer load only for this command

    recipe = load_recipe(job.recipe, job.overrides)
    result = train(recipe, resume=True, progress=job.progress, recipe_file=job.recipe.name)
    if result.checkpoint is None:
        raise RuntimeError(f"{recipe.output}: the run ended without a checkpoint")
    store = ModelStore(job.store)
    serving = serving_version(store, job.name)
    manifest = export_and_publish(export_config(job, recipe, result.checkpoint, serving))
    if job.promote:
        promote(store, manifest, serving)
    return RetrainResult(manifest, store.aliases(job.name).get(DEFAULT_ALIAS) == manifest.version)


def promote(store: ModelStore, manifest: Manifest, serving: Manifest | None) -> None:
    """Point ``production`` at ``manifest``'s version, so that ``rollback`` returns to ``serving``.

    A store without a production alias serves its latest version; that version is first recorded as
    production, or a rollback would have nothing to go back to.
    """
    aliases = store.aliases(manifest.name)
    if aliases.get(DEFAULT_ALIAS) == manifest.version:
        return
    if DEFAULT_ALIAS not in aliases and serving is not None and serving.version != manifest.version:
        store.promote(manifest.name, serving.version)
    store.promote(manifest.name, manifest.version)
    log.info("%s: %s -> version %d", manifest.name, DEFAULT_ALIAS, manifest.version)


def export_config(job: RetrainJob, recipe: Recipe, checkpoint: Path, current: Manifest | None) -> ExportConfig:
    """The export of ``checkpoint``: the serving contract of ``current`` (else the recipe's), and provenance."""
    trained = read_manifest(checkpoint)
    config = ExportConfig(
        model_dir=checkpoint,
        store=job.store,
        name=job.name,
        base_model=trained.base_model,
        pooling=recipe.pooling,
        max_seq_length=recipe.max_seq_length,
        text_prefix=recipe.prefix,
        variants=job.variants,
        recipe=trained.recipe_file or str(job.recipe),
        data_files=data_files(trained),
        licenses=data_licences(f.path for f in data_files(trained)),
        steps=trained.step,
        code_revision=trained.code_revision,
        evaluation=dev_evaluation(trained),
        work_dir=job.work_dir,
        tatoeba_dir=job.tatoeba_dir,
        bucc_dir=job.bucc_dir,
    )
    if current is None:
        return config
    return replace(
        config,
        pooling=current.pooling,
        normalize=current.normalize,
        max_seq_length=current.max_seq_length,
        text_prefix=current.text_prefix,
        languages=tuple(current.languages),
        allowed_dimensions=tuple(current.allowed_dimensions),
        licenses=tuple(dict.fromkeys((*current.licenses, *config.licenses))),
    )


def serving_version(store: ModelStore, name: str) -> Manifest | None:
    """The manifest of the version ``name`` resolves to now (production, else latest); None if it has none."""
    try:
        return store.manifest(ModelRef(name=name))
    except ModelNotFoundError:
        return None


def data_files(trained: CheckpointManifest) -> tuple[DataFile, ...]:
    """Every training file of the checkpoint (dictionaries included), by path and sha256."""
    return tuple(DataFile(path=f.path, sha256=f.sha256) for corpus in trained.data for f in corpus.files)


def dev_evaluation(trained: CheckpointManifest) -> Evaluation:
    """The checkpoint's last dev evaluation as ``checkpoint-<task>`` metrics (numbers only)."""
    dev = trained.metrics.get("dev", {})
    tasks = {task: metrics for task, metrics in dev.items() if isinstance(metrics, dict)}
    return {
        f"checkpoint-{task}": {key: float(value) for key, value in metrics.items() if isinstance(value, int | float)}
        for task, metrics in tasks.items()
    }
