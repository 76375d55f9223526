"""A transformers BERT encoder cut in two: the frozen bottom (embeddings + first layers) and the trained top.

``bottom_states`` runs the embeddings and the first ``frozen`` layers; ``top_states`` runs the remaining
layers on given token states. Both build the attention mask as ``BertModel.forward`` does
(``create_bidirectional_mask``), so ``top_states(bottom_states(x))`` is ``model(x).last_hidden_state``. Padded
positions are keys nobody attends to, so a real token's state does not depend on how much padding its batch
has: states computed for a sentence alone can be padded into any batch.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn
from transformers.masking_utils import create_bidirectional_mask


def encoder_layers(model: Any) -> nn.ModuleList:
    """The encoder layers of a transformers BERT model (``model.encoder.layer``)."""
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    if not isinstance(layers, nn.ModuleList):
        raise TypeError(f"{type(model).__name__} has no encoder.layer list: not a BERT-like encoder")
    return layers


def run_layers(model: Any, states: Tensor, mask: Tensor, layers: slice) -> Tensor:
    """``states`` (N, S, H) through ``model.encoder.layer[layers]`` with padding ``mask`` (N, S) -> (N, S, H)."""
    attention = create_bidirectional_mask(config=model.config, inputs_embeds=states, attention_mask=mask)
    for layer in encoder_layers(model)[layers]:
        states = layer(states, attention)
    return states


def bottom_states(model: Any, ids: Tensor, mask: Tensor, frozen: int) -> Tensor:
    """Token states (N, S, H) after the embeddings and the first ``frozen`` layers of token ``ids`` (N, S)."""
    embedded: Tensor = model.embeddings(input_ids=ids)
    return run_layers(model, embedded, mask, slice(0, frozen))


def top_states(model: Any, states: Tensor, mask: Tensor, frozen: int) -> Tensor:
    """The last-layer token states (N, S, H) from the states (N, S, H) that the first ``frozen`` layers gave."""
    return run_layers(model, states, mask, slice(frozen, None))
