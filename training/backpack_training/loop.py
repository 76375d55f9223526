"""The Backpack training loop: AdamW with warmup and decay, seeded batches, metrics, a final checkpoint.

``train_backpack(recipe)`` builds (or loads, from ``init``) the model and tokenizer, encodes the recipe's data
once, and takes ``steps`` optimizer steps. A language-model run minimises ``lm_loss`` on its texts; a SENSIA
run minimises ``sensia_losses`` on its pairs. Every ``log_every`` steps the mean of each loss term since the
last record goes to ``<output>/metrics.jsonl`` (with the learning rate and sequences per second); at the end
``<output>/loss_curve.png`` is drawn and ``<output>/final/`` holds the checkpoint (``save_backpack``) with its
``training_manifest.json``. Runs are single-process on the CPU (or one GPU); there is no resume.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer
from tqdm.auto import tqdm

from xalign.modelstore.integrity import sha256_file
from xalign.training.backpack_training.batches import batch_indices, encode_texts, pad_batch
from xalign.training.backpack_training.manifest import BackpackRunManifest
from xalign.training.backpack_training.recipe import BackpackRecipe, ParallelSource, TextSource
from xalign.training.backpack_training.texts import describe_sources, read_all_texts, read_pairs
from xalign.training.models.backpack import (
    WEIGHTS_FILE,
    Backpack,
    BackpackConfig,
    lm_loss,
    load_backpack,
    save_backpack,
)
from xalign.training.models.backpack_tokenizer import load_tokenizer, train_tokenizer
from xalign.training.objectives.sensia import SensiaLosses, sensia_losses
from xalign.training.recipes.base import recipe_to_dict
from xalign.training.run_manifest import library_versions
from xalign.training.trainer.metrics_log import METRICS_FILE, MetricsLog, redraw_loss_curve
from xalign.training.trainer.optim import build_optimizer, build_scheduler

log = logging.getLogger(__name__)

FINAL_DIR = "final"
# One training step: the model in, the named (unweighted) losses and the weighted total ("total") out.
StepFn = Callable[[Backpack], dict[str, torch.Tensor]]


@dataclass(frozen=True)
class TrainResult:
    """Where the final checkpoint went, the steps done, and the last logged record."""

    checkpoint: Path
    step: int
    metrics: dict[str, Any]


def prepare_model(recipe: BackpackRecipe) -> tuple[Backpack, Tokenizer]:
    """The model to train (loaded from ``init``, or fresh of ``[model]`` sizes, seeded) and its tokenizer."""
    torch.manual_seed(recipe.seed)
    if recipe.init is not None:
        model = load_backpack(recipe.init)
        return model.train(), load_tokenizer(recipe.init / "tokenizer.json")
    if recipe.tokenizer is not None:
        texts = read_all_texts(recipe.tokenizer.texts)
        tokenizer = train_tokenizer(texts, recipe.tokenizer.vocab_size, recipe.tokenizer.min_frequency)
    else:
        assert recipe.tokenizer_from is not None
        tokenizer = load_tokenizer(recipe.tokenizer_from)
    assert recipe.model is not None
    config = BackpackConfig(vocab_size=tokenizer.get_vocab_size(), **dataclasses.asdict(recipe.model))
    return Backpack(config).train(), tokenizer


def lm_step_fn(recipe: BackpackRecipe, tokenizer: Tokenizer) -> tuple[StepFn, int]:
    """A step function over the recipe's texts, and how many sequences it draws from."""
    sequences = encode_texts(tokenizer, read_all_texts(recipe.texts), recipe.max_len)
    indices = batch_indices(len(sequences), recipe.batch_size, recipe.seed)

    def step(model: Backpack) -> dict[str, torch.Tensor]:
        batch = pad_batch([sequences[i] for i in next(indices)])
        loss = lm_loss(model(batch.input_ids, batch.attention_mask).logits, batch.input_ids, batch.attention_mask)
        return {"total": loss, "lm": loss}

    return step, len(sequences)


def sensia_step_fn(recipe: BackpackRecipe, tokenizer: Tokenizer) -> tuple[StepFn, int]:
    """A step function over the recipe's pairs (SENSIA losses), and how many pairs it draws from."""
    pairs = [pair for source in recipe.parallel for pair in read_pairs(source)]
    src = encode_texts(tokenizer, [en for en, _ in pairs], recipe.max_len)
    tgt = encode_texts(tokenizer, [x for _, x in pairs], recipe.max_len)
    weights = recipe.objective
    assert weights is not None
    terms = [name for name in SensiaLosses._fields if name != "total" and getattr(weights, name) > 0]  # logged
    indices = batch_indices(len(pairs), recipe.batch_size, recipe.seed)

    def step(model: Backpack) -> dict[str, torch.Tensor]:
        picked = next(indices)
        losses = sensia_losses(model, pad_batch([src[i] for i in picked]), pad_batch([tgt[i] for i in picked]), weights)
        named = losses._asdict()
        return {"total": losses.total, **{name: named[name] for name in terms}}

    return step, len(pairs)


def _mean_record(
    step: int, lr: float, sums: dict[str, float], count: int, *, seconds: float, batch: int
) -> dict[str, Any]:
    losses = {name: value / count for name, value in sums.items() if name != "total"}
    return {
        "step": step,
        "lr": lr,
        "loss": sums["total"] / count,
        "losses": losses,
        "sequences_per_s": batch * count / max(seconds, 1e-9),
    }


def run_steps(model: Backpack, recipe: BackpackRecipe, step_fn: StepFn, progress: bool) -> Iterator[dict[str, Any]]:
    """Take ``recipe.steps`` optimizer steps; yield a metrics record every ``log_every`` steps and at the end."""
    optimizer = build_optimizer(model.named_parameters(), recipe.lr, recipe.weight_decay)
    scheduler = build_scheduler(optimizer, recipe.warmup_steps, recipe.steps, recipe.decay)
    sums: dict[str, float] = {}
    count, started = 0, time.perf_counter()
    with tqdm(total=recipe.steps, desc=recipe.name, disable=not progress) as bar:
        for step in range(1, recipe.steps + 1):
            losses = step_fn(model)
            optimizer.zero_grad(set_to_none=True)
            torch.autograd.backward(losses["total"])
            torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.max_grad_norm)
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            scheduler.step()
            for name, value in losses.items():
                sums[name] = sums.get(name, 0.0) + float(value.detach())
            count += 1
            bar.update(1)
            if step % recipe.log_every == 0 or step == recipe.steps:
                record = _mean_record(
                    step, lr, sums, count, seconds=time.perf_counter() - started, batch=recipe.batch_size
                )
                bar.set_postfix(loss=f"{record['loss']:.3f}")
                yield record
                sums, count, started = {}, 0, time.perf_counter()


def train_backpack(recipe: BackpackRecipe, progress: bool = True, recipe_file: Path | None = None) -> TrainResult:
    """Train as ``recipe`` says; write metrics, the loss curve and ``<output>/final`` (see the module doc)."""
    started = time.perf_counter()
    model, tokenizer = prepare_model(recipe)
    step_fn, rows = (sensia_step_fn if recipe.is_sensia else lm_step_fn)(recipe, tokenizer)
    log.info("%s: %d %s, %d steps of %d", recipe.name, rows, "pairs" if recipe.is_sensia else "texts",
             recipe.steps, recipe.batch_size)  # fmt: skip
    output = Path(recipe.output)
    metrics = MetricsLog(output / METRICS_FILE)
    metrics.truncate_after(0)  # a rerun into the same folder starts a fresh log
    last: dict[str, Any] = {}
    for record in run_steps(model, recipe, step_fn, progress):
        metrics.append(record)
        last = record
    redraw_loss_curve(output)
    folder = save_backpack(model, tokenizer, output / FINAL_DIR)
    manifest = _manifest(recipe, recipe_file, folder, last, time.perf_counter() - started)
    manifest.write(folder)
    return TrainResult(checkpoint=folder, step=recipe.steps, metrics=last)


def _manifest(
    recipe: BackpackRecipe, recipe_file: Path | None, folder: Path, last: dict[str, Any], elapsed: float
) -> BackpackRunManifest:
    sources: list[TextSource | ParallelSource] = [*recipe.texts, *recipe.parallel]
    sources += recipe.tokenizer.texts if recipe.tokenizer else ()
    init = None
    if recipe.init is not None:
        init = {"path": str(recipe.init), "weights_sha256": sha256_file(recipe.init / WEIGHTS_FILE)}
    return BackpackRunManifest(
        name=recipe.name,
        step=recipe.steps,
        steps=recipe.steps,
        recipe=recipe_to_dict(recipe),
        recipe_file=recipe_file.name if recipe_file is not None else None,
        recipe_text=recipe_file.read_text(encoding="utf-8") if recipe_file is not None else None,
        data=describe_sources(sources, recipe.data_root),
        tokenizer_sha256=sha256_file(folder / "tokenizer.json"),
        init=init,
        metrics=last,
        versions=library_versions("torch", "tokenizers"),
        elapsed_s=round(elapsed, 1),
    )
