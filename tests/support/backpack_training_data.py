"""Shared pieces of the Backpack trainer tests: the test data folder, its texts and a tiny model."""

from __future__ import annotations

from pathlib import Path

import torch

from xalign.training.models.backpack import Backpack, BackpackConfig

DATA = Path(__file__).resolve().parents[1] / "data" / "backpack_training"


def tiny_texts() -> list[str]:
    """The 80 en/de Multi30k train lines of the test data."""
    return [line for lang in ("en", "de") for line in (DATA / "multi30k" / f"train.{lang}").read_text().splitlines()]


def tiny_model(vocab_size: int, seed: int = 0) -> Backpack:
    """d 16, k 4, 2 layers, no dropout (deterministic steps)."""
    torch.manual_seed(seed)
    config = BackpackConfig(
        vocab_size=vocab_size, n_embd=16, n_senses=4, n_layer=2, n_head=2, max_positions=32, sense_hidden=32,
        dropout=0.0,
    )  # fmt: skip
    return Backpack(config)
