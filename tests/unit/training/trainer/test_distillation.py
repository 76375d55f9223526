"""The embedding-distillation anchor in training: the teacher is the base, stays out of every saved state, and
keeps the pivot language where the base put it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import transformers
from resume_checks import interrupted_equals_uninterrupted
from trainer_recipes import DATA, make_recipe

from xalign.training.evaluate.encoder import TransformersEncoder
from xalign.training.trainer.build import build_module
from xalign.training.trainer.loop import train

ENGLISH = DATA / "multi30k" / "train.en"


def _english(count: int) -> list[str]:
    return ENGLISH.read_text(encoding="utf-8").splitlines()[:count]


def test_teacher_is_not_a_parameter_of_the_trained_module(mlm_model_dir: Path, tmp_path: Path) -> None:
    recipe = make_recipe(mlm_model_dir, tmp_path / "run", "en_x_distill")
    encoder = transformers.AutoModel.from_pretrained(str(mlm_model_dir))
    module = build_module(recipe, encoder)
    assert module.heads_state() == {}  # nothing of the teacher would be saved with the heads
    result = train(recipe, progress=False)
    assert result.checkpoint is not None
    # The module's parameters are the encoder's, once: no second copy of the model came in with the teacher.
    assert sum(1 for _ in module.parameters()) == sum(1 for _ in encoder.parameters())


def test_resume_is_exact_because_the_teacher_is_always_the_base(mlm_model_dir: Path, tmp_path: Path) -> None:
    # A resumed run loads the encoder from its checkpoint; were the teacher taken from there too, the losses
    # after the resume would differ from the uninterrupted run's.
    recipe = make_recipe(mlm_model_dir, tmp_path / "whole", "en_x_distill", train_top_layers=1, steps=4)
    interrupted_equals_uninterrupted(recipe, tmp_path)


def test_anchor_keeps_english_nearer_the_base_than_ranking_alone(mlm_model_dir: Path, tmp_path: Path) -> None:
    texts = _english(40)
    moved = {}
    for mix in ("en_x", "en_x_distill"):
        recipe = make_recipe(mlm_model_dir, tmp_path / mix, mix, steps=15, lr=3e-3)
        result = train(recipe, progress=False)
        assert result.checkpoint is not None
        base = TransformersEncoder(mlm_model_dir, text_prefix="query: ").encode(texts)
        after = TransformersEncoder(result.checkpoint, text_prefix="query: ").encode(texts)
        moved[mix] = float(np.mean(1 - np.sum(base * after, axis=1)))  # mean cosine distance to the base
    assert moved["en_x"] > 0.01  # ranking alone really moves the English side of the tiny model
    assert moved["en_x_distill"] < 0.5 * moved["en_x"], moved
