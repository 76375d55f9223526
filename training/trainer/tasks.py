"""One adapter per objective name: from a ``Batch`` to that objective's (unweighted) loss.

A task is an ``nn.Module`` so that its head (the RTL decoder, the MLM head) trains and is saved with it; tasks
without a head have no parameters. All tasks of a step share one ``StepContext``, which runs the encoder over
the batch's texts once, however many tasks use the sentence embeddings (or takes them ready-made: gradient
caching, ``training/objectives/grad_cache.py``), and runs only the top layers when the batch carries the frozen
layers' states. With ``gather`` the contrastive tasks rank against every process's batch
(``distributed_gather.py``). ``TASKS`` maps each objective name of a recipe to its adapter class.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar

import torch
from torch import Tensor, nn

from xalign.training.evaluate.encoder import Pooling, pool
from xalign.training.models.bert_split import top_states
from xalign.training.objectives.align_mlm import MlmHead, dictionary_alignment_loss, mlm_loss
from xalign.training.objectives.embedding_distillation import embedding_distillation_loss
from xalign.training.objectives.multiway_contrastive import multiway_contrastive_loss
from xalign.training.objectives.representation_translation import RepresentationTranslation, TokenSide
from xalign.training.objectives.translation_ranking import translation_ranking_loss
from xalign.training.recipes.recipe import Objective
from xalign.training.trainer.batches import Batch, Needs, Tokenized
from xalign.training.trainer.distributed_gather import gather_multiway, gather_rows


@dataclass(frozen=True)
class TaskSetup:
    """What heads are built from: the encoder's sizes and its (tied) word embedding.

    ``load_base`` loads a fresh copy of the run's base model (the teacher of ``embedding_distillation``); it
    is the base even when a run resumes from a checkpoint. ``gather``: the contrastive tasks rank against the
    batches of all processes.
    """

    hidden: int
    num_heads: int
    max_positions: int
    word_embeddings: nn.Embedding
    load_base: Callable[[], nn.Module] | None = None
    gather: bool = False


@dataclass
class TaskOutput:
    """An objective's unweighted ``loss`` and, for logging only, named ``parts`` of it."""

    loss: Tensor
    parts: dict[str, Tensor] = field(default_factory=dict)


class StepContext:
    """The encoder and the batch of one micro-step; the sentence encoding is computed at most once.

    ``frozen_layers``: how many bottom layers ``batch.frozen`` has already run. ``pooled`` (N, H): the batch's
    sentence embeddings computed elsewhere (gradient caching); then ``sentences`` is never computed.
    """

    def __init__(
        self,
        encoder: nn.Module,
        batch: Batch,
        pooling: Pooling,
        frozen_layers: int | None = None,
        pooled: Tensor | None = None,
    ) -> None:
        self.encoder = encoder
        self.batch = batch
        self.pooling = pooling
        self.frozen_layers = frozen_layers
        self.given_pooled = pooled

    def hidden(self, ids: Tensor, mask: Tensor) -> Tensor:
        """Last-layer token states (N, S, H) of token ids (N, S) with attention mask (N, S)."""
        states: Tensor = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        return states

    @cached_property
    def sentences(self) -> tuple[Tensor, Tensor]:
        """(token states (N, S, H), pooled embeddings (N, H)) of the batch's text table."""
        texts = self.batch.texts
        if texts is None:
            raise RuntimeError("this batch has no texts: no objective asked for sentence pairs")
        if self.batch.frozen is None:
            states = self.hidden(texts.ids, texts.mask)
        elif self.frozen_layers is None:
            raise RuntimeError("the batch carries frozen-layer states, but the module has no frozen_layers")
        else:
            states = top_states(self.encoder, self.batch.frozen, texts.mask, self.frozen_layers)
        return states, pool(states, texts.mask, self.pooling)

    @cached_property
    def pooled(self) -> Tensor:
        """Pooled embeddings (N, H) of the batch's text table."""
        return self.given_pooled if self.given_pooled is not None else self.sentences[1]


class Task(nn.Module):
    """Base of the adapters: the objective's name, its weight in the total loss, and what it needs."""

    needs: ClassVar[Needs] = Needs()

    def __init__(self, objective: Objective, setup: TaskSetup) -> None:
        super().__init__()
        self.objective = objective
        self.weight = objective.weight
        self.hidden_size = setup.hidden
        self.gather = setup.gather

    def batch_needs(self) -> Needs:
        """What this task needs from every batch."""
        return self.needs

    def forward(self, batch: Batch, context: StepContext) -> TaskOutput:
        """The unweighted loss of this objective on ``batch``."""
        raise NotImplementedError


def _pairs(batch: Batch) -> Tensor:
    if batch.pairs is None:
        raise RuntimeError("batch has no pairs")
    return batch.pairs  # (B, 2)


class TranslationRankingTask(Task):
    """In-batch translation ranking of each row's (source, target) pair."""

    needs = Needs(pairs=True)

    def forward(self, batch: Batch, context: StepContext) -> TaskOutput:
        """Symmetric InfoNCE over the pooled embeddings of the pairs (and the hard negatives, if any)."""
        pairs = _pairs(batch)
        pooled = context.pooled  # (N, H)
        src, tgt = pooled[pairs[:, 0]], pooled[pairs[:, 1]]  # (B, H) each
        extra = pooled[batch.negatives[batch.negatives >= 0]] if batch.negatives is not None else None  # (M, H)
        if self.gather:
            src, tgt = gather_rows(src), gather_rows(tgt)
            extra = gather_rows(extra) if extra is not None else None
        loss = translation_ranking_loss(
            src,
            tgt,
            float(self.objective.param("temperature")),
            bool(self.objective.param("symmetric")),
            float(self.objective.param("margin")),
            extra_tgt=extra,
        )
        return TaskOutput(loss)


class MultiwayContrastiveTask(Task):
    """Translation ranking over every language pair of each row."""

    needs = Needs(multiway=True)

    def forward(self, batch: Batch, context: StepContext) -> TaskOutput:
        """All-pairs InfoNCE over the (rows, languages) table of pooled embeddings."""
        if batch.multiway is None:
            raise RuntimeError("batch has no multiway table")
        pooled = context.pooled  # (N, H)
        present = batch.multiway >= 0  # (B, L)
        emb = pooled[batch.multiway.clamp(min=0)]  # (B, L, H); absent slots hold a placeholder row
        if self.gather:
            emb, present = gather_multiway(emb, present, batch.languages)
        loss = multiway_contrastive_loss(
            emb, present, float(self.objective.param("temperature")), float(self.objective.param("margin"))
        )
        return TaskOutput(loss)


class RepresentationTranslationTask(Task):
    """DAP's RTL: a small head reconstructs the target sentence from the source's token states."""

    needs = Needs(pairs=True)

    def __init__(self, objective: Objective, setup: TaskSetup) -> None:
        super().__init__(objective, setup)
        heads = int(objective.param("num_heads")) or setup.num_heads
        self.head = RepresentationTranslation(
            setup.hidden,
            num_layers=int(objective.param("num_layers")),
            num_heads=heads,
            max_positions=setup.max_positions,
            output_embedding=setup.word_embeddings,
        )
        self.bidirectional = bool(objective.param("bidirectional"))

    def forward(self, batch: Batch, context: StepContext) -> TaskOutput:
        """Cross-entropy of the target's content tokens (not specials, not the prefix)."""
        pairs, texts = _pairs(batch), batch.texts
        if texts is None:
            raise RuntimeError("batch has no texts")
        states, _ = context.sentences  # (N, S, H)
        src, tgt = (self._side(states, texts, pairs[:, i]) for i in (0, 1))
        if self.bidirectional:
            return TaskOutput(self.head.bidirectional(src, tgt))
        return TaskOutput(self.head(src.hidden, src.mask, tgt.ids, tgt.mask, tgt.predict))

    @staticmethod
    def _side(states: Tensor, texts: Tokenized, rows: Tensor) -> TokenSide:
        return TokenSide(states[rows], texts.mask[rows], texts.ids[rows], texts.content[rows])


class MlmTask(Task):
    """Masked language modelling with a BERT head tied to the word embedding."""

    def __init__(self, objective: Objective, setup: TaskSetup) -> None:
        super().__init__(objective, setup)
        self.head = MlmHead(setup.hidden, setup.word_embeddings)

    def batch_needs(self) -> Needs:
        """Masked texts at the objective's masking rate."""
        return Needs(mask_prob=float(self.objective.param("mask_prob")))

    def mlm(self, batch: Batch, context: StepContext) -> Tensor:
        """Mean cross-entropy at the masked positions."""
        if batch.masked is None:
            raise RuntimeError("batch has no masked texts")
        states = context.hidden(batch.masked.ids, batch.masked.mask)  # (N, S, H)
        chosen = batch.masked.labels != -100  # (N, S)
        return mlm_loss(self.head(states[chosen]), batch.masked.labels[chosen])  # logits (M, vocab)

    def forward(self, batch: Batch, context: StepContext) -> TaskOutput:
        """The MLM loss."""
        return TaskOutput(self.mlm(batch, context))


class AlignMlmTask(MlmTask):
    """ALIGN-MLM: MLM plus ``dictionary_weight`` times the dictionary alignment of word embeddings."""

    def __init__(self, objective: Objective, setup: TaskSetup) -> None:
        super().__init__(objective, setup)
        self.dictionary_weight = float(objective.param("dictionary_weight"))

    def batch_needs(self) -> Needs:
        """Masked texts and ``word_pairs`` dictionary pairs per micro-step."""
        return Needs(
            mask_prob=float(self.objective.param("mask_prob")), word_pairs=int(self.objective.param("word_pairs"))
        )

    def forward(self, batch: Batch, context: StepContext) -> TaskOutput:
        """MLM + weighted ``mean(1 - cos)`` over the drawn dictionary pairs."""
        if batch.dictionary is None:
            raise RuntimeError("batch has no dictionary pairs")
        masked = self.mlm(batch, context)
        aligned = dictionary_alignment_loss(self.head.embedding, *batch.dictionary)
        return TaskOutput(masked + self.dictionary_weight * aligned, {"mlm": masked, "dictionary": aligned})


class FrozenTeacher:
    """The base model, frozen, in eval mode, and kept out of the training module's tree on purpose.

    A plain attribute holder rather than an ``nn.Module``: the teacher must not appear in checkpoints, in the
    optimizer, or among the parameters DDP synchronises. It follows the student's device on first use.
    """

    def __init__(self, model: nn.Module, pooling: Pooling) -> None:
        self.model = model.eval().requires_grad_(False)
        self.pooling = pooling

    @torch.no_grad()
    def embed(self, ids: Tensor, mask: Tensor) -> Tensor:
        """Pooled embeddings (N, H) of token ids (N, S) with attention mask (N, S)."""
        self.model.to(ids.device)
        states = self.model(input_ids=ids, attention_mask=mask).last_hidden_state  # (N, S, H)
        return pool(states, mask, self.pooling)


class EmbeddingDistillationTask(Task):
    """Pull each pair's target (the pivot, English) and its source onto the base model's target embedding."""

    needs = Needs(pairs=True)

    def __init__(self, objective: Objective, setup: TaskSetup) -> None:
        super().__init__(objective, setup)
        if setup.load_base is None:
            raise ValueError("embedding_distillation needs the base model as its teacher (TaskSetup.load_base)")
        self.load_base = setup.load_base
        self.teacher: FrozenTeacher | None = None

    def forward(self, batch: Batch, context: StepContext) -> TaskOutput:
        """Cosine distillation loss of the pairs against the teacher's embedding of their targets."""
        pairs, texts = _pairs(batch), batch.texts
        if texts is None:
            raise RuntimeError("batch has no texts")
        if self.teacher is None:
            self.teacher = FrozenTeacher(self.load_base(), context.pooling)
        pooled = context.pooled  # (N, H)
        targets = pairs[:, 1]  # (B,)
        teacher = self.teacher.embed(texts.ids[targets], texts.mask[targets])  # (B, H)
        loss = embedding_distillation_loss(
            pooled[pairs[:, 0]], pooled[targets], teacher, float(self.objective.param("anchor_weight"))
        )
        return TaskOutput(loss)


TASKS: dict[str, type[Task]] = {
    "translation_ranking": TranslationRankingTask,
    "multiway_contrastive": MultiwayContrastiveTask,
    "representation_translation": RepresentationTranslationTask,
    "mlm": MlmTask,
    "align_mlm": AlignMlmTask,
    "embedding_distillation": EmbeddingDistillationTask,
}


def build_task(objective: Objective, setup: TaskSetup) -> Task:
    """The adapter of ``objective``, with a freshly initialised head where it has one."""
    return TASKS[objective.name](objective, setup)


def combined_needs(tasks: list[Task]) -> Needs:
    """What a batch must hold for all of ``tasks``."""
    needs = [task.batch_needs() for task in tasks]
    return Needs(
        pairs=any(n.pairs for n in needs),
        multiway=any(n.multiway for n in needs),
        mask_prob=max((n.mask_prob for n in needs), default=0.0),
        word_pairs=max((n.word_pairs for n in needs), default=0),
    )
