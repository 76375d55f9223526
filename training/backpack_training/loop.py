"""The Backpack training loop: AdamW with warmup and decay, seeded batches, metrics, a final checkpoint.

``train_backpack(recipe)`` builds (or loads, from ``init``) the model and tokenizer, encodes the recipe's data
once, and takes ``steps`` optimizer steps. A language-model run minimises ``lm_loss`` on its texts; a SENSIA
run minimises ``sensia_losses`` on its pairs. Every ``log_every`` steps the mean of each loss term since the
last record goes to ``<output>/metrics.jsonl`` (with the learning rate and sequences per second); at the end
``<output>/loss_curve.png`` is drawn and ``<output>/final/`` holds the checkpoint (``save_backpack``) with its
``training_manifest.json``. Runs are single-process on the CPU (or one GPU). With ``save_every`` a mid-run
checkpoint is written every that many steps (``checkpoints.py``), and ``resume`` continues from the newest one
exactly as the uninterrupted run would have gone on; ``stop_after`` ends a run early with a checkpoint.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer
from tqdm.auto import tqdm

from xalign.modelstore.integrity import sha256_file
from xalign.training.backpack_training.batches import IndexStream, batch_indices, encode_texts, pad_batch
from xalign.training.backpack_training.checkpoints import (
    CHECKPOINTS_DIR,
    TOKENIZER_FILE,
    latest_state,
    load_state,
    save_state,
)
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


@dataclass(frozen=True)
class StepSource:
    """A step function, how many rows it draws from, and the order it draws them in (saved by checkpoints)."""

    step: StepFn
    rows: int
    order: IndexStream


@dataclass
class RunState:
    """What changes as a run goes on: what a mid-run checkpoint saves and a resumed run restores."""

    model: Backpack
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    order: IndexStream
    step: int = 0
    sums: dict[str, float] = field(default_factory=dict)  # loss sums since the last metrics record
    count: int = 0

    def state_dict(self) -> dict[str, Any]:
        """Everything above, and the torch random state (dropout), as tensors and plain values."""
        return {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "order": self.order.state(), "sums": dict(self.sums),
            "count": self.count, "rng": torch.get_rng_state(),
        }  # fmt: skip

    def load(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint's ``state_dict``."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.order.restore(state["order"])
        self.step, self.sums, self.count = int(state["step"]), dict(state["sums"]), int(state["count"])
        torch.set_rng_state(state["rng"])


def prepare_model(recipe: BackpackRecipe, tokenizer_file: Path | None = None) -> tuple[Backpack, Tokenizer]:
    """The model to train (loaded from ``init``, or fresh of ``[model]`` sizes, seeded) and its tokenizer
    (from ``tokenizer_file`` when given: a resumed run's, never trained again)."""
    torch.manual_seed(recipe.seed)
    if recipe.init is not None:
        model = load_backpack(recipe.init)
        return model.train(), load_tokenizer(tokenizer_file or recipe.init / "tokenizer.json")
    if tokenizer_file is not None:
        tokenizer = load_tokenizer(tokenizer_file)
    elif recipe.tokenizer is not None:
        texts = read_all_texts(recipe.tokenizer.texts)
        tokenizer = train_tokenizer(texts, recipe.tokenizer.vocab_size, recipe.tokenizer.min_frequency)
    else:
        assert recipe.tokenizer_from is not None
        tokenizer = load_tokenizer(recipe.tokenizer_from)
    assert recipe.model is not None
    config = BackpackConfig(vocab_size=tokenizer.get_vocab_size(), **dataclasses.asdict(recipe.model))
    return Backpack(config).train(), tokenizer


def lm_step_fn(recipe: BackpackRecipe, tokenizer: Tokenizer) -> StepSource:
    """A step function over the recipe's texts, and how many sequences it draws from."""
    sequences = encode_texts(tokenizer, read_all_texts(recipe.texts), recipe.max_len)
    indices = batch_indices(len(sequences), recipe.batch_size, recipe.seed)

    def step(model: Backpack) -> dict[str, torch.Tensor]:
        batch = pad_batch([sequences[i] for i in next(indices)])
        loss = lm_loss(model(batch.input_ids, batch.attention_mask).logits, batch.input_ids, batch.attention_mask)
        return {"total": loss, "lm": loss}

    return StepSource(step, len(sequences), indices)


def sensia_step_fn(recipe: BackpackRecipe, tokenizer: Tokenizer) -> StepSource:
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

    return StepSource(step, len(pairs), indices)


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


def new_state(model: Backpack, recipe: BackpackRecipe, order: IndexStream) -> RunState:
    """Step 0 of a run: AdamW with the recipe's schedule."""
    optimizer = build_optimizer(model.named_parameters(), recipe.lr, recipe.weight_decay)
    scheduler = build_scheduler(optimizer, recipe.warmup_steps, recipe.steps, recipe.decay)
    return RunState(model, optimizer, scheduler, order)


def take_step(state: RunState, recipe: BackpackRecipe, step_fn: StepFn) -> float:
    """One optimizer step; adds its losses to ``state.sums`` and returns the learning rate it used."""
    losses = step_fn(state.model)
    state.optimizer.zero_grad(set_to_none=True)
    torch.autograd.backward(losses["total"])
    torch.nn.utils.clip_grad_norm_(state.model.parameters(), recipe.max_grad_norm)
    lr = float(state.optimizer.param_groups[0]["lr"])
    state.optimizer.step()
    state.scheduler.step()
    for name, value in losses.items():
        state.sums[name] = state.sums.get(name, 0.0) + float(value.detach())
    state.count += 1
    state.step += 1
    return lr


def run_steps(
    state: RunState,
    recipe: BackpackRecipe,
    step_fn: StepFn,
    progress: bool,
    save: Callable[[RunState], None],
    *,
    stop_at: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Step up to ``recipe.steps`` (or ``stop_at``); yield a metrics record every ``log_every`` steps and at the
    end, and ``save`` a mid-run checkpoint every ``save_every`` steps and at ``stop_at``."""
    stop_at = recipe.steps if stop_at is None else min(stop_at, recipe.steps)
    started = time.perf_counter()
    with tqdm(total=recipe.steps, initial=state.step, desc=recipe.name, disable=not progress) as bar:
        while state.step < stop_at:
            lr = take_step(state, recipe, step_fn)
            bar.update(1)
            if state.step % recipe.log_every == 0 or state.step == recipe.steps:
                seconds = time.perf_counter() - started
                record = _mean_record(state.step, lr, state.sums, state.count, seconds=seconds, batch=recipe.batch_size)
                bar.set_postfix(loss=f"{record['loss']:.3f}")
                yield record
                state.sums, state.count, started = {}, 0, time.perf_counter()
            cadence = recipe.save_every and state.step % recipe.save_every == 0
            if state.step < recipe.steps and (cadence or state.step == stop_at):
                save(state)


def _start(recipe: BackpackRecipe, resume: bool) -> tuple[RunState, Tokenizer, StepSource]:
    """The run's state at its start: step 0, or the newest mid-run checkpoint's when resuming."""
    output = Path(recipe.output)
    folder = latest_state(output) if resume else None
    if not resume:
        shutil.rmtree(output / CHECKPOINTS_DIR, ignore_errors=True)  # a fresh run: older checkpoints are stale
    model, tokenizer = prepare_model(recipe, folder / TOKENIZER_FILE if folder is not None else None)
    source = (sensia_step_fn if recipe.is_sensia else lm_step_fn)(recipe, tokenizer)
    state = new_state(model, recipe, source.order)
    if folder is not None:
        saved = load_state(folder)
        _check_resumable(saved["recipe"], recipe)
        state.load(saved)
        log.info("%s: resuming at step %d from %s", recipe.name, state.step, folder)
    return state, tokenizer, source


# Keys that may change between a checkpoint and its resumed run: they do not shape the trained weights.
_FREE_KEYS = frozenset({"output", "steps", "log_every", "save_every", "keep_checkpoints"})


def _check_resumable(saved: dict[str, Any], recipe: BackpackRecipe) -> None:
    now = recipe_to_dict(recipe)
    changed = sorted(key for key in now if key not in _FREE_KEYS and saved.get(key) != now[key])
    if changed:
        raise ValueError(f"cannot resume: the recipe changed {', '.join(changed)} since the checkpoint")


@dataclass(frozen=True)
class RunControl:
    """Where a run starts and stops: ``resume`` from the newest mid-run checkpoint (from step 0 when there is
    none); ``stop_after`` N steps with a mid-run checkpoint instead of ``final/`` (the schedule still runs to
    the recipe's ``steps``)."""

    resume: bool = False
    stop_after: int | None = None


FROM_START = RunControl()


def train_backpack(
    recipe: BackpackRecipe, progress: bool = True, recipe_file: Path | None = None, control: RunControl = FROM_START
) -> TrainResult:
    """Train as ``recipe`` says; write metrics, the loss curve and ``<output>/final`` (see the module doc)."""
    started = time.perf_counter()
    stop_after = control.stop_after
    state, tokenizer, source = _start(recipe, control.resume)
    log.info("%s: %d %s, steps %d -> %d of %d", recipe.name, source.rows, "pairs" if recipe.is_sensia else "texts",
             state.step, recipe.steps, recipe.batch_size)  # fmt: skip
    output = Path(recipe.output)
    metrics = MetricsLog(output / METRICS_FILE)
    metrics.truncate_after(state.step)  # a fresh run starts a fresh log; a resumed one drops what came after
    last: dict[str, Any] = {}

    def save(now: RunState) -> None:
        save_state(output, now.step, {**now.state_dict(), "recipe": recipe_to_dict(recipe)}, tokenizer.to_str(),
                   recipe.keep_checkpoints)  # fmt: skip

    for record in run_steps(state, recipe, source.step, progress, save, stop_at=stop_after):
        metrics.append(record)
        last = record
    redraw_loss_curve(output)
    if state.step < recipe.steps:  # stopped early: the mid-run checkpoint is the result
        return TrainResult(checkpoint=latest_state(output) or output, step=state.step, metrics=last)
    folder = save_backpack(state.model, tokenizer, output / FINAL_DIR)
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
