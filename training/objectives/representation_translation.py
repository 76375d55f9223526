"""Representation translation learning (RTL), the token-level objective of DAP.

Paper: Li et al. 2023, "Dual-Alignment Pre-training for Cross-lingual Sentence Embedding" (ACL). DAP adds to
translation ranking a token-level task: a shallow transformer head gets the contextual token representations
of one side of a parallel pair from the encoder and must reconstruct the whole translation from them, so the
token representations (and through them the pooled sentence embedding) have to carry what is needed to produce
the translation. The head is used only in training and thrown away afterwards.

Inputs (one direction, ``forward``):

- ``src_hidden`` (B, S, H): last-layer token states of the source sentences from the encoder (gradients flow
  back into the encoder through them);
- ``src_mask`` (B, S): 1 for real tokens, 0 for padding;
- ``tgt_ids`` (B, T): token ids of the translations (the encoder's vocabulary);
- ``tgt_mask`` (B, T): 1 for real target tokens, 0 for padding;
- optional ``predict`` (B, T) bool: which real target positions are scored (default all of ``tgt_mask``), so
  that a caller can leave out ``<s>``, ``</s>`` or the ``"query: "`` prefix while keeping their placeholders.

The head runs over the concatenation ``[src_hidden ; p_1 .. p_T]`` (B, S + T, H), where each placeholder
``p_t = LayerNorm(mask_embedding + position_embedding[t])``. Attention is bidirectional over the whole
sequence; padding of either side is masked as attention keys. The head's outputs at the placeholder positions
are scored against the tied output embedding (the encoder's word-embedding matrix, vocab x H): logits =
``out @ E.T`` (+ an optional vocab bias), and the loss is the mean cross-entropy over the scored positions
(a scalar). ``bidirectional(a, b)`` takes two ``TokenSide`` tuples and averages both directions.

What follows DAP (the method section recalled from the paper, which was not at hand; the abstract and the
authors' README, github.com/ChillingDream/DAP, were checked): a shallow (2-layer) bidirectional transformer head
over source token states followed by [MASK] placeholders with position embeddings, predicting every target token
at once (non-autoregressively) through the tied word embeddings; the head is discarded after training. The
README's recipe reconstructs only the English side (``--rlm_pattern target --rlm_probability 1.0``: every target
token masked) and restricts the softmax to English token ids for speed, with ``--temp 0.05 --ams_margin 0`` for
translation ranking.
What was chosen here: ``forward`` is one direction (the released recipe's X->English is ``forward`` with English
as the target); ``bidirectional`` applies both directions, averaged, for the all-pairs recipes; the softmax runs
over the whole vocabulary; a LayerNorm on the placeholder inputs, because the encoder's post-LayerNorm token
states are unit-scale and raw 0.02-scale embeddings would be swamped; no vocab bias by default, so the head adds
no vocab-sized parameters; the post-LayerNorm ``nn.TransformerEncoderLayer`` with GELU and a 4H feed-forward
(BERT's layer shape); the loss weight 0.1 (``DEFAULT_WEIGHT``) is this project's default, applied by the
trainer, not a value from the paper.

The tied embedding is referenced, not owned: it is not a parameter of this module, so an optimiser built over
encoder + head sees it once and the head's state_dict stays small.
"""

from __future__ import annotations

from typing import Final, NamedTuple

import torch
import torch.nn.functional as F  # noqa: N812 - the usual torch alias
from torch import Tensor, nn

DEFAULT_WEIGHT: Final = 0.1
INIT_STD: Final = 0.02  # BERT's initializer_range


class TokenSide(NamedTuple):
    """One side of a batch of parallel pairs, as the encoder saw it.

    ``hidden`` (B, S, H) last-layer token states; ``mask`` (B, S) 1 = real token; ``ids`` (B, S) token ids;
    ``predict`` (B, S) bool or None: positions scored when this side is the target (None: all real tokens).
    """

    hidden: Tensor
    mask: Tensor
    ids: Tensor
    predict: Tensor | None = None


class RepresentationTranslation(nn.Module):
    """DAP's RTL head: reconstruct the translation from the source side's token states (see the module doc)."""

    def __init__(
        self,
        hidden: int,
        *,
        num_layers: int = 2,
        num_heads: int = 12,
        max_positions: int = 512,
        output_embedding: nn.Embedding | None = None,
        ffn_size: int | None = None,
        dropout: float = 0.1,
        output_bias: bool = False,
        layer_norm_eps: float = 1e-12,
    ) -> None:
        super().__init__()
        if hidden % num_heads:
            raise ValueError(f"hidden ({hidden}) must be divisible by num_heads ({num_heads})")
        self.hidden = hidden
        self.max_positions = max_positions
        self.mask_embedding = nn.Parameter(torch.randn(hidden) * INIT_STD)  # (H,)
        self.position_embedding = nn.Embedding(max_positions, hidden)
        nn.init.normal_(self.position_embedding.weight, std=INIT_STD)
        self.placeholder_norm = nn.LayerNorm(hidden, eps=layer_norm_eps)
        layer = nn.TransformerEncoderLayer(
            hidden,
            num_heads,
            dim_feedforward=ffn_size or 4 * hidden,
            dropout=dropout,
            activation="gelu",
            layer_norm_eps=layer_norm_eps,
            batch_first=True,
        )
        # Nested tensors would turn padded outputs into zeros and change numerics between train and eval.
        self.layers = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self._tied: tuple[nn.Embedding, ...] = ()
        self.bias: nn.Parameter | None = None
        if output_embedding is not None:
            self.tie(output_embedding)
            if output_bias:
                self.bias = nn.Parameter(torch.zeros(output_embedding.num_embeddings))  # (vocab,)
        elif output_bias:
            raise ValueError("output_bias needs output_embedding (its size is the vocabulary's)")

    def tie(self, embedding: nn.Embedding) -> None:
        """Score placeholder outputs against ``embedding`` (vocab x H), referenced, not registered."""
        if embedding.embedding_dim != self.hidden:
            raise ValueError(f"embedding dim {embedding.embedding_dim} != hidden {self.hidden}")
        self._tied = (embedding,)

    @property
    def output_embedding(self) -> nn.Embedding:
        """The tied word embedding; RuntimeError if none was given."""
        if not self._tied:
            raise RuntimeError("no output embedding: pass output_embedding= or call tie(encoder_embedding)")
        return self._tied[0]

    def placeholders(self, batch: int, length: int) -> Tensor:
        """Mask placeholder inputs for ``length`` target positions: (batch, length, H)."""
        if length > self.max_positions:
            raise ValueError(f"target length {length} exceeds max_positions {self.max_positions}")
        positions = torch.arange(length, device=self.mask_embedding.device)
        inputs: Tensor = self.placeholder_norm(self.mask_embedding + self.position_embedding(positions))  # (T, H)
        return inputs.unsqueeze(0).expand(batch, length, self.hidden)

    def logits(self, states: Tensor) -> Tensor:
        """Tied-embedding scores of head outputs (..., H) -> (..., vocab)."""
        logits = states @ self.output_embedding.weight.T
        return logits if self.bias is None else logits + self.bias

    def forward(
        self, src_hidden: Tensor, src_mask: Tensor, tgt_ids: Tensor, tgt_mask: Tensor, predict: Tensor | None = None
    ) -> Tensor:
        """Mean cross-entropy of predicting ``tgt_ids`` (B, T) from ``src_hidden`` (B, S, H); a scalar."""
        batch, src_len, _ = src_hidden.shape
        if tgt_ids.shape != tgt_mask.shape or src_mask.shape != (batch, src_len) or tgt_ids.shape[0] != batch:
            raise ValueError(
                f"shape mismatch: src_hidden {tuple(src_hidden.shape)}, src_mask {tuple(src_mask.shape)}, "
                f"tgt_ids {tuple(tgt_ids.shape)}, tgt_mask {tuple(tgt_mask.shape)}"
            )
        placeholders = self.placeholders(batch, tgt_ids.shape[1]).to(src_hidden.dtype)  # (B, T, H)
        inputs = torch.cat([src_hidden, placeholders], dim=1)  # (B, S + T, H)
        ignore = torch.cat([~src_mask.bool(), ~tgt_mask.bool()], dim=1)  # (B, S + T) True = padding
        outputs = self.layers(inputs, src_key_padding_mask=ignore)[:, src_len:]  # (B, T, H)
        scored = tgt_mask.bool() if predict is None else predict.bool() & tgt_mask.bool()  # (B, T)
        # Vocab-sized logits only where a token is scored: (N, vocab) instead of (B, T, vocab).
        logits = self.logits(outputs[scored]).float()
        total = F.cross_entropy(logits, tgt_ids[scored], reduction="sum")
        return total / scored.sum().clamp(min=1)

    def bidirectional(self, a: TokenSide, b: TokenSide) -> Tensor:
        """RTL a->b and b->a averaged (each side of the pairs is the source once); a scalar."""
        a_to_b: Tensor = self(a.hidden, a.mask, b.ids, b.mask, b.predict)
        b_to_a: Tensor = self(b.hidden, b.mask, a.ids, a.mask, a.predict)
        return (a_to_b + b_to_a) / 2
