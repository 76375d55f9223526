"""A tiny random BERT with a character WordPiece tokenizer, built locally (no model hub)."""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import transformers
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

from xalign.export.dual_encoder import DUAL_ENCODER, DualEncoder
from xalign.export.dual_encoder_config import ExportConfig
from xalign.export.pipeline import export_and_publish
from xalign.modelstore import Manifest

HIDDEN = 32
MAX_LEN = 64


def build_tokenizer() -> Tokenizer:
    """WordPiece over single characters: Latin text gets varied ids, other scripts map to [UNK]."""
    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3}
    for char in string.ascii_lowercase + string.digits + ".,!?'":
        vocab[char] = len(vocab)
        vocab[f"##{char}"] = len(vocab)
    unk = "[UNK]"
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token=unk, max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return tokenizer


def build_model_dir(folder: Path, seed: int) -> Path:
    """Save a random 2-layer BERT (hidden 32, 64 positions) and its tokenizer.json into ``folder``."""
    config = transformers.BertConfig(
        vocab_size=120,
        hidden_size=HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=MAX_LEN,
    )
    torch.manual_seed(seed)
    transformers.BertModel(config).save_pretrained(folder)
    # Saved as a fast tokenizer so AutoTokenizer loads the folder too (tokenizer.json + tokenizer_config.json).
    specials = {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]"}
    transformers.PreTrainedTokenizerFast(tokenizer_object=build_tokenizer(), **specials).save_pretrained(folder)
    return folder


def publish_tiny(model_dir: Path, store: Path, name: str = "tiny", **overrides: Any) -> Manifest:
    """Export the tiny model to ONNX (fp32 + int8) and publish it as the next version of ``name``."""
    config = ExportConfig(
        model_dir=model_dir,
        store=store,
        name=name,
        base_model="tiny random BERT (tests)",
        max_seq_length=MAX_LEN,
        text_prefix="query: ",
        languages=("en", "de"),
        **overrides,
    )
    return export_and_publish(config, DUAL_ENCODER)


@dataclass(frozen=True)
class Exported:
    """The tiny model's module and its ONNX variants."""

    module: DualEncoder
    fp32: Path
    int8: Path
    fp16: Path
