"""The senses of one text computed from its graph outputs with numpy: per-token senses, and a next-word logit
split into the (position, sense) terms that make it (records of ``results.py``).

A Backpack's output at the last position i is o_i = sum_j sum_l alpha[l, i, j] * C(x_j)[l], and its logits are
o_i @ E^T with no LayerNorm in between, so the logit of word w is exactly the sum over (j, l) of
alpha[l, i, j] * C(x_j)[l]·E_w. The logit reported is computed from the graph's ``contextual`` output (o),
independently of the terms, so a client (and the tests) can check that the terms add up to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from xalign.modelstore.artifacts import SenseTable
from xalign.runtime.senses.results import Contribution, NextWord, Sense, TokenSenses


@dataclass(frozen=True)
class SenseArrays:
    """The graph's outputs for one text, padding removed."""

    ids: npt.NDArray[np.int64]  # (seq,)
    contextual: npt.NDArray[np.float32]  # (seq, d): o, the sense-weighted sums
    senses: npt.NDArray[np.float32]  # (seq, k, d): C(x_j)
    alpha: npt.NDArray[np.float32]  # (k, seq, seq): alpha[l, i, j], zero for j > i

    @property
    def length(self) -> int:
        """Tokens in the text."""
        return int(self.ids.shape[0])


def last_weights(arrays: SenseArrays) -> npt.NDArray[np.float64]:
    """What the last position draws from each (position j, sense l): alpha[l, last, j] as (seq, k)."""
    return np.asarray(arrays.alpha[:, -1, :].T, dtype=np.float64)


def token_senses(arrays: SenseArrays, table: SenseTable, words: Sequence[str], top_words: int) -> list[TokenSenses]:
    """Every token with its k senses (norm, weight at the last position, top words) and its alpha rows."""
    norms = np.linalg.norm(arrays.senses.astype(np.float64), axis=-1)  # (seq, k)
    weights = last_weights(arrays)  # (seq, k)
    tops = table.top_ids[arrays.ids, :, :top_words]  # (seq, k, top_words)
    tokens = []
    for i, token_id in enumerate(arrays.ids.tolist()):
        senses = [
            Sense(
                sense=sense,
                norm=float(norms[i, sense]),
                weight=float(weights[i, sense]),
                top_words=[words[w] for w in tops[i, sense].tolist()],
            )
            for sense in range(table.n_senses)
        ]
        alpha = arrays.alpha[:, i, : i + 1].astype(np.float64).tolist()  # k lists over positions 0..i
        tokens.append(TokenSenses(position=i, id=token_id, text=words[token_id], senses=senses, alpha=alpha))
    return tokens


def contribution_values(arrays: SenseArrays, word_vector: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """alpha[l, last, j] * C(x_j)[l]·E_w for every (j, l): (seq, k); the terms sum to o_last·E_w."""
    per_sense = arrays.senses.astype(np.float64) @ word_vector.astype(np.float64)  # (seq, k)
    return last_weights(arrays) * per_sense


def next_word(
    arrays: SenseArrays, table: SenseTable, words: Sequence[str], token_id: int, top_contributions: int
) -> NextWord:
    """The logit of ``token_id`` at the last position and its ``top_contributions`` largest terms (by |value|)."""
    word_vector = table.output_embedding[token_id]  # (d,)
    values = contribution_values(arrays, word_vector)  # (seq, k)
    logit = float(arrays.contextual[-1].astype(np.float64) @ word_vector.astype(np.float64))
    # Stable sort on -|value|: ties keep (position, sense) order, so responses are reproducible.
    order = np.argsort(-np.abs(values), axis=None, kind="stable")[:top_contributions]
    positions, senses = np.unravel_index(order, values.shape)
    contributions = [
        Contribution(position=j, token=words[int(arrays.ids[j])], sense=sense, value=float(values[j, sense]))
        for j, sense in zip(positions.tolist(), senses.tolist(), strict=True)
    ]
    return NextWord(word=words[token_id], token_id=token_id, logit=logit, contributions=contributions)
