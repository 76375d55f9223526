"""A retraining job: train a recipe, export the checkpoint, publish it as the next version of a served model.

This is what the deployment's ``trainer`` service runs (``xalign-export retrain``). The run resumes from its
output folder when it has checkpoints, so a job that was stopped continues where it was. The new version keeps
the serving contract of the version it replaces (token limit, text prefix, languages, Matryoshka sizes,
licences, pooling): clients see the same model, better aligned. With nothing to replace, the recipe's pooling,
prefix and token limit are used. The manifest records the recipe file, every training file's sha256, the
steps, the code revision and the last dev evaluation of the checkpoint (and Tatoeba/BUCC numbers of the exported
model when their folders are given, on the Tatoeba languages production was measured on unless told otherwise).

Releasing goes through the release gate (``modelstore.release``): before publishing, a store without a
``production`` alias gets the version it serves pinned as production (``initial``), so the new version is neither
served unmeasured as the latest nor left without a rollback target; after publishing, the new version becomes
production only if it passes the gate against production (or ``force``). A running service picks the move up;
``xalign-store rollback`` undoes it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from xalign.export.config import Evaluation
from xalign.export.dual_encoder import DUAL_ENCODER
from xalign.export.dual_encoder_config import ExportConfig
from xalign.export.pipeline import export_and_publish
from xalign.modelstore import Manifest, ModelStore
from xalign.modelstore.errors import ModelNotFoundError
from xalign.modelstore.gc import collect_at_start
from xalign.modelstore.manifest import DataFile
from xalign.modelstore.refs import ModelRef
from xalign.modelstore.release import GatePolicy, Release, pin_initial, release
from xalign.training.data.licences import data_licences
from xalign.training.recipes.loader import Overrides, load_recipe
from xalign.training.recipes.recipe import Recipe
from xalign.training.trainer.checkpoint import CheckpointManifest, read_manifest

log = logging.getLogger(__name__)

# The manifest fields a new version keeps from the version it replaces: clients see the same model.
SERVING_CONTRACT = (
    "pooling",
    "normalize",
    "max_seq_length",
    "text_prefix",
    "text_prefixes",
    "languages",
    "allowed_dimensions",
)


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
    # None: the Tatoeba languages production's manifest was measured on (so the gate compares like with like).
    tatoeba_langs: tuple[str, ...] | None = None
    bucc_dir: Path | None = None
    work_dir: Path | None = None
    progress: bool = True
    policy: GatePolicy = field(default_factory=GatePolicy)
    force: bool = False
    actor: str | None = None


@dataclass(frozen=True)
class RetrainResult:
    """The published (or identical, reused) version, and the release decision (None with ``promote`` off)."""

    manifest: Manifest
    release: Release | None = None

    @property
    def promoted(self) -> bool:
        """Whether ``production`` names the new version now."""
        return self.release is not None and self.release.promoted


def retrain(job: RetrainJob) -> RetrainResult:
    """Train (resuming), export, publish and, with ``promote``, release; see the module docstring."""
    from xalign.training.trainer.loop import train  # noqa: PLC0415 - torch and the trainer load only for this command

    recipe = load_recipe(job.recipe, job.overrides)
    result = train(recipe, resume=True, progress=job.progress, recipe_file=job.recipe.name)
    if result.checkpoint is None:
        raise RuntimeError(f"{recipe.output}: the run ended without a checkpoint")
    store = ModelStore(job.store)
    # The writer collects: in compose the api mounts the store read-only, so a trainer killed mid-publish
    # would leave its temp folder for good.
    collect_at_start(job.store)
    serving = serving_version(store, job.name)
    if serving is not None:
        pin_initial(store, job.name, serving.version, job.actor)
    manifest = export_and_publish(export_config(job, recipe, result.checkpoint, serving), DUAL_ENCODER)
    if not job.promote:
        return RetrainResult(manifest)
    outcome = release(store, job.name, manifest.version, policy=job.policy, force=job.force, actor=job.actor)
    log.info("%s", outcome.summary())
    return RetrainResult(manifest, outcome)


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
        tatoeba_langs=job.tatoeba_langs or measured_langs(current) or ExportConfig.tatoeba_langs,
        bucc_dir=job.bucc_dir,
    )
    if current is None:
        return config
    kept = {name: getattr(current, name) for name in SERVING_CONTRACT}
    # Config fields are tuples: lists as they are, mappings as (key, value) pairs.
    kept |= {name: tuple(value) for name, value in kept.items() if isinstance(value, list)}
    kept |= {name: tuple(value.items()) for name, value in kept.items() if isinstance(value, dict)}
    licenses = tuple(dict.fromkeys((*current.licenses, *config.licenses)))
    return replace(config, **kept, licenses=licenses)


def measured_langs(manifest: Manifest | None) -> tuple[str, ...]:
    """The Tatoeba languages ``manifest`` was measured on (``deu`` from ``deu-eng``), in its order."""
    if manifest is None:
        return ()
    keys = manifest.evaluation.get("tatoeba", {})
    return tuple(key.removesuffix("-eng") for key in keys if key.endswith("-eng") and not key.startswith("eng-"))


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
