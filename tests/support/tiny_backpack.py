"""A tiny random Backpack LM (d 16, k 4, 2 layers) with a byte-level BPE tokenizer, built locally.

``build_backpack_dir`` writes a checkpoint folder (``backpack_config.json``, ``model.safetensors``,
``tokenizer.json``); ``publish_tiny_backpack`` exports it to ONNX, builds ``senses.npz`` and publishes it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from xalign.export.backpack import BACKPACK, BackpackExportConfig
from xalign.export.pipeline import export_and_publish
from xalign.modelstore import Manifest
from xalign.training.models.backpack import Backpack, BackpackConfig, save_backpack
from xalign.training.models.backpack_tokenizer import train_tokenizer

DATA = Path(__file__).resolve().parents[1] / "data" / "backpack" / "lines.txt"
DIM = 16
SENSES = 4
MAX_LEN = 64
VOCAB = 400


def tiny_texts() -> list[str]:
    """The 100 en/de lines the tiny tokenizer is trained on."""
    return [line for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]


def tiny_config(vocab_size: int, n_layer: int = 2) -> BackpackConfig:
    """The tiny model's sizes (no dropout, so training steps in tests are deterministic)."""
    return BackpackConfig(
        vocab_size=vocab_size,
        n_embd=DIM,
        n_senses=SENSES,
        n_layer=n_layer,
        n_head=2,
        max_positions=MAX_LEN,
        sense_hidden=32,
        dropout=0.0,
    )


def build_backpack_dir(folder: Path, seed: int) -> Path:
    """Save a random tiny Backpack and its tokenizer (trained on ``tests/data/backpack``) into ``folder``."""
    tokenizer = train_tokenizer(tiny_texts(), vocab_size=VOCAB)
    torch.manual_seed(seed)
    model = Backpack(tiny_config(tokenizer.get_vocab_size()))
    return save_backpack(model, tokenizer, Path(folder))


def publish_tiny_backpack(model_dir: Path, store: Path, name: str = "tiny-backpack") -> Manifest:
    """Export the tiny Backpack (fp32 ONNX, ``senses.npz``) and publish it as the next version of ``name``."""
    config = BackpackExportConfig(
        model_dir=Path(model_dir),
        store=Path(store),
        name=name,
        base_model="tiny random Backpack (tests)",
        max_seq_length=MAX_LEN,
        languages=("en", "de"),
        n_top=5,
    )
    return export_and_publish(config, BACKPACK)
