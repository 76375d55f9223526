"""Everything a run needs, built from a recipe: model, tasks, optimizer, data order, and a resumed state.

A fresh run loads the base (a transformers folder, or the offline multilingual-e5-small converted into the
recipe's ``cache_dir``); a resumed run loads the newest checkpoint of ``output`` instead and restores
optimizer, scheduler, heads, step and data cursor. It refuses to resume when the data files (by sha256) or
the settings that shape training differ from the checkpoint's.
"""

from __future__ import annotations

import functools
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModel, AutoTokenizer

from xalign.training.data.corpus import Corpus
from xalign.training.evaluate.tatoeba import TatoebaPair
from xalign.training.models.offline_e5 import MODEL_ID, ensure_offline_base
from xalign.training.recipes.base import recipe_to_dict
from xalign.training.recipes.recipe import OFFLINE_E5, Recipe
from xalign.training.trainer.batches import Collator, Needs, TextTokenizer
from xalign.training.trainer.checkpoint import (
    CheckpointManifest,
    latest_checkpoint,
    list_checkpoints,
    load_training_state,
    read_manifest,
)
from xalign.training.trainer.dev_eval import LiveEncoder, load_dev_pairs
from xalign.training.trainer.distributed import DistContext
from xalign.training.trainer.epoch_mining import EpochMining
from xalign.training.trainer.frozen_cache import StateCache
from xalign.training.trainer.frozen_states import FrozenStates, cache_folder
from xalign.training.trainer.optim import build_optimizer, build_scheduler
from xalign.training.trainer.order import Cursor, DataOrder, visited
from xalign.training.trainer.sources import TrainingData, describe, dev_files, load_training_data
from xalign.training.trainer.tasks import Task, TaskSetup, build_task
from xalign.training.trainer.train_module import TrainModule, freeze

log = logging.getLogger(__name__)

# Recipe keys a resumed run must share with its checkpoint: they shape the model, the loss or the data order.
# (steps, output, cadences, dev and paths may change; the data itself is compared by sha256.)
TRAINING_KEYS = (
    "pooling", "prefix", "max_seq_length", "objectives", "pairing", "pivot", "min_chars", "max_chars",
    "deduplicate", "batch_size", "grad_accum", "lr", "warmup_steps", "decay", "weight_decay", "max_grad_norm",
    "freeze_embeddings", "train_top_layers", "seed",
)  # fmt: skip
# Keys added later, with the value a checkpoint that lacks them was trained with (a changed one refuses resume).
TRAINING_KEY_DEFAULTS = {
    "cache_frozen_layers": False, "gather_negatives": False, "hard_negatives": None, "group_batches": False,
}  # fmt: skip


@dataclass
class TrainingRun:
    """The pieces of one run; ``step`` and ``cursor`` are where it starts (0 and the start of epoch 0 if fresh)."""

    recipe: Recipe
    context: DistContext
    module: TrainModule
    tokenizer: Any
    text_tokenizer: TextTokenizer
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    data: TrainingData
    order: DataOrder
    collator: Collator
    base_model: str
    recipe_file: str | None
    dev_pairs: list[TatoebaPair] = field(default_factory=list)
    dev_data: list[Corpus] = field(default_factory=list)
    step: int = 0
    cursor: Cursor = field(default_factory=Cursor)
    metrics: dict[str, Any] = field(default_factory=dict)
    resumed_from: Path | None = None
    frozen: FrozenStates | None = None


def resolve_base(recipe: Recipe) -> Path:
    """The transformers folder of the recipe's base (converting the offline e5 into ``cache_dir`` once)."""
    if recipe.base == OFFLINE_E5:
        return ensure_offline_base(recipe.cache_dir)
    folder = Path(recipe.base)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder}: base is not a transformers folder (no config.json)")
    return folder


def base_model_name(recipe: Recipe) -> str:
    """How the manifest names the base: the hub id of the offline e5, else the folder's name."""
    return f"{MODEL_ID} (offline e5s1 conversion)" if recipe.base == OFFLINE_E5 else Path(recipe.base).name


def find_resume_point(recipe: Recipe, resume: bool) -> Path | None:
    """The checkpoint to resume from; refuses to start over a run that has checkpoints unless resuming."""
    if resume:
        return latest_checkpoint(recipe.output)
    if list_checkpoints(recipe.output):
        raise ValueError(f"{recipe.output} already holds checkpoints: pass --resume, or choose another --output")
    return None


def check_resumable(manifest: CheckpointManifest, recipe: Recipe, data: TrainingData) -> None:
    """``ValueError`` naming what differs when ``recipe`` and ``data`` cannot continue ``manifest``'s run."""
    now = recipe_to_dict(recipe)
    changed = [key for key in TRAINING_KEYS if manifest.recipe.get(key) != now[key]]
    changed += [key for key, old in TRAINING_KEY_DEFAULTS.items() if manifest.recipe.get(key, old) != now[key]]
    if changed:
        raise ValueError(f"cannot resume: the recipe changed {', '.join(changed)} since the checkpoint")
    then = {(f.path, f.sha256) for corpus in manifest.data for f in corpus.files}
    current = {(f.path, f.sha256) for corpus in data.corpora for f in corpus.files}
    if then != current:
        differing = sorted(path for path, _ in then ^ current)
        raise ValueError(f"cannot resume: the data files differ from the checkpoint's: {', '.join(differing)}")


def build_module(recipe: Recipe, encoder: Any) -> TrainModule:
    """The encoder with its objectives' tasks; heads are initialised from the recipe's seed."""
    config = encoder.config
    top = recipe.train_top_layers
    if top is not None and not 1 <= top <= int(config.num_hidden_layers):
        raise ValueError(f"train_top_layers: must be in 1..{config.num_hidden_layers} (the model's layers), not {top}")
    frozen = freeze(encoder, embeddings=recipe.freeze_embeddings or top is not None, top_layers=top)
    if recipe.freeze_embeddings and not any(name.startswith("embeddings.") for name in frozen):
        raise ValueError("freeze_embeddings: the base model has no 'embeddings' layer to freeze")
    if top is not None and all(name in frozen for name, _ in encoder.named_parameters()):
        raise ValueError("train_top_layers: the base model has no 'encoder.layer.N' parameters to train")
    setup = TaskSetup(
        hidden=int(config.hidden_size),
        num_heads=int(config.num_attention_heads),
        max_positions=max_length(recipe, config),
        word_embeddings=encoder.get_input_embeddings(),
        load_base=lambda: AutoModel.from_pretrained(str(resolve_base(recipe))),
        gather=recipe.gather_negatives,
    )
    torch.manual_seed(recipe.seed)
    tasks: dict[str, Task] = {objective.name: build_task(objective, setup) for objective in recipe.objectives}
    cached = int(config.num_hidden_layers) - top if recipe.cache_frozen_layers and top is not None else None
    return TrainModule(encoder, tasks, recipe.pooling, frozen_layers=cached)


def max_length(recipe: Recipe, config: Any) -> int:
    """The recipe's token limit, never above the model's positions."""
    return min(recipe.max_seq_length, int(getattr(config, "max_position_embeddings", recipe.max_seq_length)))


def build_run(
    recipe: Recipe, context: DistContext, *, resume: bool = False, recipe_file: str | None = None
) -> TrainingRun:
    """Load data and model and set everything up, restoring the newest checkpoint when resuming."""
    start = find_resume_point(recipe, resume)
    data = load_training_data(recipe)
    manifest = read_manifest(start) if start is not None else None
    if manifest is not None:
        check_resumable(manifest, recipe, data)
    source = start if start is not None else resolve_base(recipe)
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    encoder = AutoModel.from_pretrained(str(source))
    module = build_module(recipe, encoder).to(context.device)
    module.train()
    optimizer = build_optimizer(module.named_parameters(), recipe.lr, recipe.weight_decay)
    scheduler = build_scheduler(optimizer, recipe.warmup_steps, recipe.steps, recipe.decay)
    text_tokenizer = TextTokenizer(tokenizer, recipe.prefix, max_length(recipe, encoder.config))
    frozen = frozen_states(recipe, module, text_tokenizer, data)
    mining = epoch_mining(recipe, context, module, text_tokenizer, data)
    run = TrainingRun(
        recipe=recipe,
        context=context,
        module=module,
        tokenizer=tokenizer,
        text_tokenizer=text_tokenizer,
        optimizer=optimizer,
        scheduler=scheduler,
        data=data,
        order=DataOrder(
            len(data.examples),
            recipe.seed,
            recipe.batch_size,
            recipe.grad_accum * context.world_size,
            permute=mining.permutation if mining is not None and recipe.group_batches else None,
        ),
        collator=_collator(
            recipe,
            text_tokenizer,
            encoder,
            module.needs(),
            data,
            frozen=frozen,
            mining=mining if recipe.hard_negatives is not None else None,
        ),
        base_model=manifest.base_model if manifest is not None else base_model_name(recipe),
        recipe_file=recipe_file,
        frozen=frozen,
    )
    _load_dev(run)
    if start is not None and manifest is not None:
        _restore(run, start, manifest)
    return run


def frozen_states(
    recipe: Recipe, module: TrainModule, text_tokenizer: TextTokenizer, data: TrainingData
) -> FrozenStates | None:
    """The frozen layers' cache of this model, tokenizer and data (None unless ``cache_frozen_layers``)."""
    if module.frozen_layers is None:
        return None
    root = recipe.frozen_cache_dir or recipe.cache_dir / "frozen-layers"
    folder = cache_folder(root, module.encoder, text_tokenizer, module.frozen_layers, data.corpora)
    encoder: Any = module.encoder
    cache = StateCache(folder, int(encoder.config.hidden_size))
    log.info("frozen-layer cache %s: %d texts cached", folder, len(cache))
    return FrozenStates(cache, module.encoder, text_tokenizer, module.frozen_layers)


def epoch_mining(
    recipe: Recipe, context: DistContext, module: TrainModule, text_tokenizer: TextTokenizer, data: TrainingData
) -> EpochMining | None:
    """The per-epoch miner of hard negatives and grouped batches (None when the recipe asks for neither)."""
    if recipe.hard_negatives is None and not recipe.group_batches:
        return None
    embed_batch = recipe.hard_negatives.embed_batch_size if recipe.hard_negatives is not None else 64
    encoder = LiveEncoder(module.encoder, text_tokenizer, recipe.pooling, embed_batch)
    slots = recipe.grad_accum * context.world_size
    # Without grouped batches the order is random and fixed in advance: mine only what the run will reach.
    size, window = len(data.examples), recipe.batch_size * slots
    visits = None if recipe.group_batches else functools.partial(visited, size, recipe.seed, window, recipe.steps)
    return EpochMining(
        data.examples, encoder, context, recipe.output, seed=recipe.seed, pivot=recipe.pivot,
        batch_size=recipe.batch_size, slots=slots, hard=recipe.hard_negatives, visits=visits,
    )  # fmt: skip


def _collator(
    recipe: Recipe,
    text_tokenizer: TextTokenizer,
    encoder: Any,
    needs: Needs,
    data: TrainingData,
    *,
    frozen: FrozenStates | None = None,
    mining: EpochMining | None = None,
) -> Collator:
    return Collator(
        text_tokenizer,
        needs,
        seed=recipe.seed,
        pivot=recipe.pivot,
        mask_token_id=text_tokenizer.tokenizer.mask_token_id,
        vocab_size=int(encoder.config.vocab_size),
        dictionary=data.dictionary,
        frozen_states=frozen,
        negatives=mining,
    )


def _load_dev(run: TrainingRun) -> None:
    dev = run.recipe.dev
    if dev is not None and run.context.is_main:
        run.dev_pairs = load_dev_pairs(dev)
        run.dev_data = [describe("tatoeba-dev", dev_files(dev), run.recipe.data_root)]


def _restore(run: TrainingRun, folder: Path, manifest: CheckpointManifest) -> None:
    """Load optimizer, scheduler, heads, step, cursor and RNG states saved in ``folder``."""
    state = load_training_state(folder, run.context.device)
    run.module.load_heads_state(state["heads"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.step = int(state["step"])
    run.cursor = Cursor(**state["cursor"])
    torch.set_rng_state(state["rng"]["torch"].cpu())
    random.setstate(state["rng"]["python"])
    run.metrics = dict(manifest.metrics)
    run.resumed_from = folder
    if int(state.get("world_size", 1)) != run.context.world_size:
        log.warning("resuming with %d processes, saved with %s: the data order differs from here on",
                    run.context.world_size, state.get("world_size"))  # fmt: skip
