"""The frozen layers' output of a batch's texts, computed once per text and then read from the disk cache.

With ``train_top_layers`` N of L layers the embeddings and the first L - N layers never change, so their output
for a text is a constant: ``FrozenStates`` computes it the first time a text is seen (in eval mode, without
gradients, for the text's own tokens) and stores it in a ``StateCache`` (``frozen_cache.py``); a step then runs
only the top N layers (``training/models/bert_split.py``). The cache folder is named by the sha256 of the frozen
weights and the model's config, the tokenizer, the frozen depth, the training data files, the length limit
and the prefix: another model or other data gets another folder.

Frozen layers run without dropout here (one stored output per text), unlike an uncached run in train mode.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from xalign.training.data.corpus import Corpus
from xalign.training.models.bert_split import bottom_states
from xalign.training.trainer.batches import TextTokenizer, Tokenized
from xalign.training.trainer.frozen_cache import StateCache, cache_key, text_key

# Config keys that record where and by which library version a model was saved, not what its layers compute: a
# checkpoint saved by the trainer differs from its base there, and must still find the base's states.
PROVENANCE_KEYS = ("_name_or_path", "architectures", "transformers_version", "dtype", "torch_dtype")
# Keys of a fast tokenizer's JSON that a call sets (truncation and padding for that call's length): a tokenizer
# saved after use carries them, the same vocabulary and rules without. TextTokenizer passes its own on each call.
CALL_STATE_KEYS = ("truncation", "padding")


def frozen_weights_sha256(model: Any, frozen: int) -> str:
    """sha256 of the config (less ``PROVENANCE_KEYS``) and of every parameter and buffer of the embeddings and
    the first ``frozen`` layers."""
    config = {k: v for k, v in model.config.to_dict().items() if k not in PROVENANCE_KEYS}
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode("utf-8"))
    prefixes = ("embeddings.", *(f"encoder.layer.{i}." for i in range(frozen)))
    tensors = [*model.named_parameters(), *model.named_buffers()]
    for name, tensor in sorted(tensors, key=lambda item: item[0]):
        if name.startswith(prefixes):
            digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def tokenizer_sha256(tokenizer: Any) -> str:
    """sha256 of a fast tokenizer's JSON (its vocabulary and rules, without the state its last call left)."""
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    rules = {k: v for k, v in spec.items() if k not in CALL_STATE_KEYS}
    return hashlib.sha256(json.dumps(rules, sort_keys=True).encode("utf-8")).hexdigest()


def data_sha256(corpora: Sequence[Corpus]) -> str:
    """sha256 over the sha256 of every training file, in path order."""
    lines = sorted(f"{f.path}:{f.sha256}" for corpus in corpora for f in corpus.files)
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def cache_folder(root: Path, model: Any, tokenizer: TextTokenizer, frozen: int, corpora: Sequence[Corpus]) -> Path:
    """The cache folder under ``root`` for this model, tokenizer, depth, data, length limit and prefix."""
    key = cache_key({
        "model": frozen_weights_sha256(model, frozen),
        "tokenizer": tokenizer_sha256(tokenizer.tokenizer),
        "frozen_layers": frozen,
        "data": data_sha256(corpora),
        "max_length": tokenizer.max_length,
        "prefix": tokenizer.prefix,
    })  # fmt: skip
    return Path(root) / key


class FrozenStates:
    """Padded frozen-layer states of a batch's text table (the ``Collator``'s ``frozen_states``)."""

    def __init__(self, cache: StateCache, model: Any, tokenizer: TextTokenizer, frozen: int, batch_size: int = 64):
        self.cache = cache
        self.model = model
        self.tokenizer = tokenizer
        self.frozen = frozen
        self.batch_size = batch_size

    def __call__(self, texts: Sequence[str], tokens: Tokenized) -> Tensor:
        """States (N, S, H) of ``texts`` tokenized as ``tokens`` (N, S), zero at padded positions."""
        keys = [text_key(text) for text in texts]
        missing = list(dict.fromkeys(text for text, key in zip(texts, keys, strict=True) if key not in self.cache))
        for start in range(0, len(missing), self.batch_size):
            self._compute(missing[start : start + self.batch_size])
        lengths = tokens.mask.sum(dim=1).tolist()
        out = torch.zeros(*tokens.ids.shape, self.cache.hidden)
        for row, (key, length) in enumerate(zip(keys, lengths, strict=True)):
            states = self.cache.get(key)
            if len(states) != length:
                raise RuntimeError(f"frozen cache entry {key} has {len(states)} tokens, the batch {length}")
            out[row, :length] = torch.from_numpy(np.array(states))
        return out

    def _compute(self, texts: list[str]) -> None:
        device = next(self.model.parameters()).device
        tokens = self.tokenizer(texts).to(device)
        was_training = self.model.training
        self.model.eval()  # no dropout: the stored output is the frozen layers' one answer for the text
        try:
            with torch.no_grad():
                states = bottom_states(self.model, tokens.ids, tokens.mask, self.frozen).float().cpu()  # (n, S, H)
        finally:
            self.model.train(was_training)
        for text, row, length in zip(texts, states, tokens.mask.sum(dim=1).tolist(), strict=True):
            self.cache.put(text_key(text), row[:length].numpy())
