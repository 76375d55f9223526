"""The Backpack language model (Hewitt, Thickstun, Manning and Liang, "Backpack Language Models", ACL 2023).

Every vocabulary word x has k *sense vectors* C(x) computed by a non-contextual network from its word
embedding alone; a small causal transformer only decides how to *weigh* them. The output at position i is a
weighted sum of the sense vectors of the tokens so far:

    o_i = sum_{j <= i} sum_{l < k} alpha[l, i, j] * C(x_j)[l]
    logits_i = o_i @ E^T                      (E tied: the input word embedding is the output embedding)

Shapes for a batch of ``batch`` right-padded texts of ``seq`` tokens, d = ``n_embd``, k = ``n_senses``:

    input_ids, attention_mask   (batch, seq)          int64; 1 marks real tokens
    E[x]                        (batch, seq, d)       word embeddings
    senses   C(x)               (batch, seq, k, d)    FF(E[x]) reshaped; never sees the context
    h                           (batch, seq, d)       causal transformer over E[x] + positions
    alpha                       (batch, k, seq, seq)  one attention head per sense over h, softmax over
                                                      j <= i; 0 for j > i and for padded j
    contextual  o               (batch, seq, d)
    logits                      (batch, seq, vocab)

No LayerNorm sits between o and the tied projection (the paper's choice): logits are then *exactly* linear in
the sense vectors, so the contribution of (position j, sense l) to the logit of word w at position i is
alpha[l, i, j] * C(x_j)[l] . E_w and these contributions sum to the logit. That exact decomposition is what the
service's ``/v1/senses`` shows; a final LayerNorm would make it an approximation.

A Backpack checkpoint is a folder holding ``backpack_config.json``, ``model.safetensors`` and
``tokenizer.json`` (``save_backpack`` / ``load_backpack``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from safetensors.torch import load_model, save_model
from tokenizers import Tokenizer
from torch import nn
from torch.nn import functional

CONFIG_FILE = "backpack_config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
# Label value that cross-entropy skips (padding targets).
IGNORE_INDEX = -100


@dataclass(frozen=True)
class BackpackConfig:
    """Sizes of a Backpack LM; ``sense_hidden`` 0 means 4 * ``n_embd``."""

    vocab_size: int
    n_embd: int = 256
    n_senses: int = 16
    n_layer: int = 4
    n_head: int = 4
    max_positions: int = 128
    sense_hidden: int = 0
    dropout: float = 0.1
    pad_id: int = 0

    def __post_init__(self) -> None:
        if self.sense_hidden == 0:
            object.__setattr__(self, "sense_hidden", 4 * self.n_embd)
        if min(self.vocab_size, self.n_embd, self.n_senses, self.n_layer, self.n_head, self.max_positions) < 1:
            raise ValueError(f"every size must be positive: {self}")
        if self.n_embd % self.n_senses or self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} must divide by n_senses {self.n_senses} and n_head {self.n_head}")
        if not 0 <= self.pad_id < self.vocab_size or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"pad_id must be a vocabulary id and dropout in [0, 1): {self}")

    def to_json(self) -> str:
        """The config as stable JSON (``backpack_config.json``)."""
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, raw: str) -> BackpackConfig:
        """Parse ``to_json`` output; unknown keys are refused."""
        data: dict[str, Any] = json.loads(raw)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown Backpack config keys: {unknown}")
        return cls(**data)


class BackpackOutput(NamedTuple):
    """What ``Backpack.forward`` returns (shapes in the module docstring)."""

    logits: torch.Tensor  # (batch, seq, vocab)
    contextual: torch.Tensor  # (batch, seq, d)
    senses: torch.Tensor  # (batch, seq, k, d)
    alpha: torch.Tensor  # (batch, k, seq, seq)


def allowed_pairs(attention_mask: torch.Tensor) -> torch.Tensor:
    """Which (i, j) may attend: j <= i and j a real token. (batch, seq) -> (batch, 1, seq, seq) bool."""
    seq = attention_mask.shape[1]
    causal = torch.ones(seq, seq, dtype=torch.bool, device=attention_mask.device).tril()  # (seq, seq)
    keys = attention_mask.bool()[:, None, None, :]  # (batch, 1, 1, seq)
    return causal[None, None] & keys


def masked_softmax(scores: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis restricted to ``allowed``; exact zeros elsewhere, and a row with no
    allowed entry (a padded first token) is all zeros instead of NaN."""
    lowest = torch.finfo(scores.dtype).min
    weights = torch.softmax(scores.masked_fill(~allowed, lowest), dim=-1)
    return weights * allowed.to(weights.dtype)


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(batch, seq, d) -> (batch, heads, seq, d / heads)."""
    batch, seq, dim = x.shape
    return x.view(batch, seq, heads, dim // heads).transpose(1, 2)


class SelfAttention(nn.Module):
    """Causal multi-head self-attention that also ignores padded keys."""

    def __init__(self, config: BackpackConfig) -> None:
        super().__init__()
        self.heads = config.n_head
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.out = nn.Linear(config.n_embd, config.n_embd)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """(batch, seq, d), allowed (batch, 1, seq, seq) -> (batch, seq, d)."""
        q, k, v = (split_heads(part, self.heads) for part in self.qkv(x).chunk(3, dim=-1))  # (b, h, s, d/h)
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (batch, heads, seq, seq)
        weights = self.drop(masked_softmax(scores, allowed))
        mixed = (weights @ v).transpose(1, 2).flatten(2)  # (batch, seq, d)
        out: torch.Tensor = self.drop(self.out(mixed))
        return out


def feed_forward(dim: int, hidden: int, dropout: float) -> nn.Sequential:
    """dim -> hidden -> dim with GELU (GPT-2's MLP)."""
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim), nn.Dropout(dropout))


class Block(nn.Module):
    """A pre-LayerNorm transformer block (GPT-2 layout)."""

    def __init__(self, config: BackpackConfig) -> None:
        super().__init__()
        self.ln_attn = nn.LayerNorm(config.n_embd)
        self.attn = SelfAttention(config)
        self.ln_mlp = nn.LayerNorm(config.n_embd)
        self.mlp = feed_forward(config.n_embd, 4 * config.n_embd, config.dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """(batch, seq, d) -> (batch, seq, d)."""
        x = x + self.attn(self.ln_attn(x), allowed)
        out: torch.Tensor = x + self.mlp(self.ln_mlp(x))
        return out


class SenseNetwork(nn.Module):
    """C(x): k sense vectors per token from its word embedding only (a residual MLP, then d -> k*d)."""

    def __init__(self, config: BackpackConfig) -> None:
        super().__init__()
        self.n_senses = config.n_senses
        self.ln_in = nn.LayerNorm(config.n_embd)
        self.mlp = feed_forward(config.n_embd, config.sense_hidden, config.dropout)
        self.ln_out = nn.LayerNorm(config.n_embd)
        self.to_senses = nn.Linear(config.n_embd, config.n_senses * config.n_embd)

    def forward(self, embedded: torch.Tensor) -> torch.Tensor:
        """(..., d) word embeddings -> (..., k, d) sense vectors."""
        hidden = embedded + self.mlp(self.ln_in(embedded))
        senses: torch.Tensor = self.to_senses(self.ln_out(hidden))  # (..., k*d)
        return senses.view(*senses.shape[:-1], self.n_senses, embedded.shape[-1])


class SenseWeights(nn.Module):
    """alpha: one attention head per sense over the contextual states, (batch, k, seq, seq)."""

    def __init__(self, config: BackpackConfig) -> None:
        super().__init__()
        self.n_senses = config.n_senses
        self.query = nn.Linear(config.n_embd, config.n_embd)
        self.key = nn.Linear(config.n_embd, config.n_embd)

    def forward(self, hidden: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """hidden (batch, seq, d), allowed (batch, 1, seq, seq) -> alpha (batch, k, seq, seq)."""
        q = split_heads(self.query(hidden), self.n_senses)  # (batch, k, seq, d/k)
        k = split_heads(self.key(hidden), self.n_senses)  # (batch, k, seq, d/k)
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (batch, k, seq, seq)
        return masked_softmax(scores, allowed)


class Backpack(nn.Module):
    """The Backpack LM: sense network, causal contextualisation, sense-weighted sum, tied output."""

    def __init__(self, config: BackpackConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.n_embd)
        self.positions = nn.Embedding(config.max_positions, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.sense_net = SenseNetwork(config)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_context = nn.LayerNorm(config.n_embd)
        self.sense_weights = SenseWeights(config)
        self.apply(_init_weights)

    def senses(self, input_ids: torch.Tensor) -> torch.Tensor:
        """C(x) for any shape of ids: (...) -> (..., k, d)."""
        out: torch.Tensor = self.sense_net(self.embed(input_ids))
        return out

    def contextualize(self, input_ids: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """The causal transformer's states h: (batch, seq) -> (batch, seq, d)."""
        seq = input_ids.shape[1]
        if seq > self.config.max_positions:
            raise ValueError(f"{seq} tokens exceed the model's {self.config.max_positions} positions")
        positions = torch.arange(seq, device=input_ids.device)  # (seq,)
        hidden = self.drop(self.embed(input_ids) + self.positions(positions)[None])
        for block in self.blocks:
            hidden = block(hidden, allowed)
        out: torch.Tensor = self.ln_context(hidden)
        return out

    def represent(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Everything but the logits: (contextual o, senses C(x), alpha), shapes as in the module docstring."""
        allowed = allowed_pairs(attention_mask)  # (batch, 1, seq, seq)
        senses = self.senses(input_ids)  # (batch, seq, k, d)
        alpha = self.sense_weights(self.contextualize(input_ids, allowed), allowed)  # (batch, k, seq, seq)
        # o_i = sum_j sum_l alpha[l, i, j] * C(x_j)[l]
        contextual = torch.einsum("blij,bjld->bid", alpha, senses)  # (batch, seq, d)
        return contextual, senses, alpha

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> BackpackOutput:
        """Ids and mask (batch, seq) int64 -> ``BackpackOutput``; mask None means no padding."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        contextual, senses, alpha = self.represent(input_ids, attention_mask)
        logits = contextual @ self.embed.weight.T  # (batch, seq, vocab), tied to the input embedding
        return BackpackOutput(logits=logits, contextual=contextual, senses=senses, alpha=alpha)


def _init_weights(module: nn.Module) -> None:
    """GPT-2 initialisation: normal(0, 0.02) weights, zero biases."""
    if isinstance(module, nn.Linear | nn.Embedding):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


def lm_loss(logits: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy: position i predicts token i+1; padded targets are skipped."""
    targets = input_ids[:, 1:].masked_fill(attention_mask[:, 1:] == 0, IGNORE_INDEX)  # (batch, seq-1)
    predictions = logits[:, :-1]  # (batch, seq-1, vocab)
    return functional.cross_entropy(predictions.flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX)


def save_backpack(model: Backpack, tokenizer: Tokenizer, folder: Path) -> Path:
    """Write ``backpack_config.json``, ``model.safetensors`` and ``tokenizer.json`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).write_text(model.config.to_json(), encoding="utf-8")
    save_model(model, str(folder / WEIGHTS_FILE))
    tokenizer.save(str(folder / TOKENIZER_FILE))
    return folder


def load_backpack(folder: Path) -> Backpack:
    """Load a checkpoint folder written by ``save_backpack`` as a float32 model in eval mode."""
    folder = Path(folder)
    config = BackpackConfig.from_json((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    model = Backpack(config)
    load_model(model, str(folder / WEIGHTS_FILE))
    model.eval()
    return model
