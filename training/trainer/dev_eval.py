"""Periodic dev evaluation: Tatoeba accuracy of the model being trained, for monitoring only.

Tatoeba is never trained on; these figures only show whether alignment improves during a run. The first
``max_lines`` pairs of each language are read once; the live encoder embeds them in eval mode and returns
to train mode, without touching any random state the training uses.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from xalign.training.evaluate.encoder import Pooling, pool
from xalign.training.evaluate.report import tatoeba_evaluation
from xalign.training.evaluate.tatoeba import TatoebaPair, evaluate_pair, read_tatoeba
from xalign.training.recipes.recipe import DevEval
from xalign.training.trainer.batches import TextTokenizer


class LiveEncoder:
    """The ``Encoder`` protocol over an in-memory transformers model (pooling + L2 normalisation)."""

    def __init__(self, model: nn.Module, tokenizer: TextTokenizer, pooling: Pooling, batch_size: int = 64) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.pooling: Pooling = pooling
        self.batch_size = batch_size

    @property
    def name(self) -> str:
        """A fixed name: the model in training."""
        return "model in training"

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """(len(texts), dim) float32 unit vectors, in input order.

        Batches are cut from the texts sorted by length, so that a batch pads little (mining embeds a corpus of
        very unequal sentences); rows are put back in input order.
        """
        was_training = self.model.training
        device = next(self.model.parameters()).device
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), 0), dtype=np.float32)
        self.model.eval()
        try:
            with torch.inference_mode():
                for start in range(0, len(texts), self.batch_size):
                    rows = order[start : start + self.batch_size]
                    tokens = self.tokenizer([texts[i] for i in rows]).to(device)
                    states = self.model(input_ids=tokens.ids, attention_mask=tokens.mask).last_hidden_state
                    pooled = pool(states, tokens.mask, self.pooling)  # (batch, dim)
                    if out.shape[1] == 0:
                        out = np.zeros((len(texts), pooled.shape[1]), dtype=np.float32)
                    out[rows] = torch.nn.functional.normalize(pooled.float(), dim=1).cpu().numpy()
        finally:
            self.model.train(was_training)
        return out


def load_dev_pairs(dev: DevEval) -> list[TatoebaPair]:
    """The Tatoeba pairs of ``dev.langs``, cut to the first ``dev.max_lines`` lines each."""
    pairs = []
    for lang in dev.langs:
        pair = read_tatoeba(dev.tatoeba_dir, lang)
        limit = dev.max_lines or len(pair.src)
        pairs.append(TatoebaPair(lang, pair.src[:limit], pair.eng[:limit]))
    return pairs


def evaluate_dev(encoder: LiveEncoder, pairs: Sequence[TatoebaPair]) -> dict[str, float]:
    """``{"deu-eng": acc, "eng-deu": acc, ..., "mean": ...}`` in percent (the store's tatoeba metrics)."""
    return tatoeba_evaluation([evaluate_pair(encoder, pair) for pair in pairs])
