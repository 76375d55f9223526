"""The step loop: micro-batches with gradient accumulation, logging, dev evaluation and checkpoints.

One optimizer step runs ``grad_accum`` micro-steps; micro-step ``m`` of process ``r`` is slot
``m * world_size + r`` of the step's window of the data order (``order.py``). It builds its batch, reseeds torch
from ``(seed, step, slot)`` (so dropout does not depend on what ran before: an interrupted and resumed run
computes exactly what an uninterrupted one does), and backpropagates the weighted total loss divided by
``grad_accum``. Under DDP the gradients are averaged across processes on the last micro-step only. Then:
gradient clipping, AdamW, the schedule. N processes with ``grad_accum`` 1 thus compute the same update as one
process with ``grad_accum`` N (up to float rounding). With ``grad_cache_chunk`` the micro-step's backward is
gradient caching's (``training/objectives/grad_cache.py``): the same gradients, a chunk's activations at a time.

Rank 0 logs a JSON line per step (``metrics.jsonl``), draws the progress bar, evaluates on the Tatoeba dev
files every ``eval_every`` steps, saves a checkpoint every ``save_every`` steps and at the end (or at
``stop_after``), and redraws ``loss_curve.png`` at each save.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from xalign.training.objectives.grad_cache import grad_cache_step
from xalign.training.recipes.base import recipe_to_dict
from xalign.training.recipes.recipe import Recipe
from xalign.training.run_manifest import library_versions
from xalign.training.trainer.batches import Batch
from xalign.training.trainer.build import TrainingRun, build_run
from xalign.training.trainer.checkpoint import CheckpointManifest, latest_checkpoint, save_checkpoint
from xalign.training.trainer.dev_eval import LiveEncoder, evaluate_dev
from xalign.training.trainer.distributed import init_distributed, mean_across, no_sync, process_group, wrap
from xalign.training.trainer.distributed_gather import shared_chunks
from xalign.training.trainer.metrics_log import METRICS_FILE, MetricsLog, redraw_loss_curve
from xalign.training.trainer.provenance import code_revision

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """Where a run ended: optimizer ``step``, its last ``checkpoint`` folder, and the last ``metrics``."""

    step: int
    checkpoint: Path | None
    metrics: dict[str, Any]


def train(
    recipe: Recipe,
    *,
    resume: bool = False,
    stop_after: int | None = None,
    progress: bool = True,
    recipe_file: str | None = None,
) -> TrainResult:
    """Train as ``recipe`` says (resuming from the newest checkpoint in its output when ``resume``).

    ``stop_after`` ends the run after that many optimizer steps with a checkpoint, while the schedule still
    runs to ``recipe.steps``: resuming later continues exactly. Joins the torchrun process group if any.
    """
    context = init_distributed(recipe.device)
    with process_group(context):
        run = build_run(recipe, context, resume=resume, recipe_file=recipe_file)
        return Loop(run).run(stop_after=stop_after, progress=progress)


def step_seed(seed: int, step: int, slot: int) -> int:
    """The torch seed of one micro-batch: depends only on these three numbers."""
    return int(np.random.SeedSequence([seed, step, slot]).generate_state(1, np.uint64)[0] >> 1)


class Loop:
    """Runs a ``TrainingRun`` from its current step (see the module docstring)."""

    def __init__(self, run: TrainingRun) -> None:
        self.training_run = run
        self.recipe: Recipe = run.recipe
        self.model = wrap(run.module, run.context)
        self.metrics_log = MetricsLog(self.recipe.output / METRICS_FILE) if run.context.is_main else None
        self.last_checkpoint: Path | None = run.resumed_from
        self.next_cursor = run.cursor
        self.revision = code_revision() if run.context.is_main else None

    def run(self, stop_after: int | None = None, progress: bool = True) -> TrainResult:
        """Train up to ``recipe.steps`` (or ``stop_after``) optimizer steps; returns where it ended."""
        run, recipe = self.training_run, self.recipe
        target = recipe.steps if stop_after is None else min(stop_after, recipe.steps)
        if self.metrics_log is not None:
            self.metrics_log.truncate_after(run.step)
            self._log_start(target)
        bar = tqdm(total=recipe.steps, initial=run.step, desc="train", disable=not (progress and run.context.is_main))
        try:
            while run.step < target:
                record = self._optimizer_step()
                bar.update(1)
                bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['lr']:.2e}")
                self._after_step(record, final=run.step == target)
        finally:
            bar.close()
            if run.frozen is not None:
                run.frozen.cache.flush()
        return TrainResult(run.step, self.last_checkpoint or latest_checkpoint(recipe.output), dict(run.metrics))

    def _log_start(self, target: int) -> None:
        run = self.training_run
        trainable = sum(p.numel() for p in run.module.parameters() if p.requires_grad)
        log.info(
            "training %s: %d examples, steps %d -> %d of %d, %d processes, %d trainable parameters%s",
            run.base_model, len(run.data.examples), run.step, target, self.recipe.steps, run.context.world_size,
            trainable, f", resumed from {run.resumed_from}" if run.resumed_from else "",
        )  # fmt: skip

    def _micro_step(self, micro: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        run = self.training_run
        slot = micro * run.context.world_size + run.context.rank
        window, self.next_cursor = run.order.take(run.cursor, slot)
        batch = run.collator([run.data.examples[i] for i in window.indices], window).to(run.context.device)
        torch.manual_seed(step_seed(self.recipe.seed, run.step, slot))
        last = micro == self.recipe.grad_accum - 1
        if self.recipe.grad_cache_chunk:
            return self._cached_micro_step(batch, last)
        with no_sync(self.model, skip=not last):
            total, losses = self.model(batch)
            (total / self.recipe.grad_accum).backward()
        return total.detach(), losses

    def _cached_micro_step(self, batch: Batch, last: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The micro-step by gradient caching: chunks embedded through the DDP wrapper, synced on the last."""
        if batch.texts is None:
            raise RuntimeError("gradient caching needs a batch of texts")
        rows = int(batch.texts.ids.shape[0])
        chunks = shared_chunks(rows, self.recipe.grad_cache_chunk, self.training_run.context.device)
        return grad_cache_step(
            len(chunks),
            lambda index: self.model(batch.text_rows(chunks[index]), embed_only=True)[0],
            lambda pooled: self.training_run.module(batch, pooled=pooled),
            lambda last_chunk: no_sync(self.model, skip=not (last and last_chunk)),
            scale=1 / self.recipe.grad_accum,
        )

    def _optimizer_step(self) -> dict[str, Any]:
        """One optimizer step over ``grad_accum`` micro-steps; returns its metrics record."""
        run, accum = self.training_run, self.recipe.grad_accum
        started = time.perf_counter()
        sums: dict[str, float] = {}
        for micro in range(accum):
            total, losses = self._micro_step(micro)
            for name, value in {"loss": total, **losses}.items():
                sums[name] = sums.get(name, 0.0) + float(value) / accum
        if self.recipe.max_grad_norm > 0:
            trainable = [p for p in run.module.parameters() if p.requires_grad]
            torch.nn.utils.clip_grad_norm_(trainable, self.recipe.max_grad_norm)
        run.cursor = self.next_cursor
        lr = float(run.optimizer.param_groups[0]["lr"])
        run.optimizer.step()
        run.scheduler.step()
        run.optimizer.zero_grad(set_to_none=True)
        run.step += 1
        means = mean_across(sums, run.context)
        examples = self.recipe.batch_size * accum * run.context.world_size
        loss = means.pop("loss")
        return {
            "step": run.step,
            "epoch": run.cursor.epoch,
            "lr": lr,
            "loss": loss,
            "losses": means,
            "examples_per_s": round(examples / max(time.perf_counter() - started, 1e-9), 2),
        }

    def _after_step(self, record: dict[str, Any], final: bool) -> None:
        run, recipe = self.training_run, self.recipe
        if not run.context.is_main or self.metrics_log is None:
            return
        self.metrics_log.append(record)
        run.metrics["train"] = record
        if recipe.dev is not None and recipe.eval_every and run.step % recipe.eval_every == 0:
            self._evaluate()
        if final or (recipe.save_every and run.step % recipe.save_every == 0):
            self._save()

    def _evaluate(self) -> None:
        run = self.training_run
        batch_size = run.recipe.dev.batch_size if run.recipe.dev is not None else 64
        encoder = LiveEncoder(run.module.encoder, run.text_tokenizer, self.recipe.pooling, batch_size)
        tatoeba = evaluate_dev(encoder, run.dev_pairs)
        run.metrics["dev"] = {"step": run.step, "tatoeba": tatoeba}
        if self.metrics_log is not None:
            self.metrics_log.append({"step": run.step, "dev": {"tatoeba": tatoeba}})
        log.info("step %d: dev Tatoeba mean accuracy %.2f%%", run.step, tatoeba.get("mean", float("nan")))

    def _save(self) -> None:
        run = self.training_run
        manifest = CheckpointManifest(
            step=run.step,
            steps=self.recipe.steps,
            base_model=run.base_model,
            recipe=recipe_to_dict(self.recipe),
            recipe_file=run.recipe_file,
            data=run.data.corpora,
            dev_data=run.dev_data,
            metrics=dict(run.metrics),
            code_revision=self.revision,
            versions=library_versions("torch", "transformers"),
            world_size=run.context.world_size,
        )
        self.last_checkpoint = save_checkpoint(
            self.recipe.output,
            run.module.encoder,
            run.tokenizer,
            self._state(),
            manifest,
            keep=self.recipe.keep_checkpoints,
        )
        redraw_loss_curve(self.recipe.output)
        log.info("step %d: saved %s", run.step, self.last_checkpoint)

    def _state(self) -> dict[str, Any]:
        run = self.training_run
        rng: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "format": 1,
            "step": run.step,
            "cursor": {"epoch": run.cursor.epoch, "position": run.cursor.position},
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            "heads": run.module.heads_state(),
            "rng": rng,
            "world_size": run.context.world_size,
        }
