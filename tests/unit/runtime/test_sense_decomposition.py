"""The senses response built from hand-made Backpack arrays: token senses, alpha rows, next-word terms."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from xalign.modelstore.artifacts import SenseTable
from xalign.runtime.senses.decomposition import SenseArrays, contribution_values, next_word, token_senses

VOCAB, K, D, N_TOP = 7, 3, 4, 4
WORDS = [f"w{i}" for i in range(VOCAB)]


def causal_alpha(rng: np.random.Generator, seq: int) -> npt.NDArray[np.float32]:
    """Random alpha (k, seq, seq): each row a softmax over j <= i, zero above the diagonal."""
    scores = rng.normal(size=(K, seq, seq))
    scores[:, np.triu_indices(seq, 1)[0], np.triu_indices(seq, 1)[1]] = -np.inf
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return np.asarray(weights / weights.sum(axis=-1, keepdims=True), dtype=np.float32)


def make_arrays(seed: int = 0, ids: tuple[int, ...] = (2, 5, 1, 5)) -> SenseArrays:
    """A Backpack forward pass done by hand: o_i = sum_j sum_l alpha[l, i, j] C(x_j)[l]."""
    rng = np.random.default_rng(seed)
    token_ids = np.array(ids, dtype=np.int64)
    per_word = rng.normal(size=(VOCAB, K, D)).astype(np.float32)  # C(t) for every word
    senses = per_word[token_ids]  # (seq, k, d)
    alpha = causal_alpha(rng, len(ids))  # (k, seq, seq)
    contextual = np.einsum("lij,jld->id", alpha, senses).astype(np.float32)  # (seq, d)
    return SenseArrays(ids=token_ids, contextual=contextual, senses=senses, alpha=alpha)


def make_table(seed: int = 1) -> SenseTable:
    rng = np.random.default_rng(seed)
    top_ids = np.stack([rng.permutation(VOCAB)[:N_TOP] for _ in range(VOCAB * K)]).reshape(VOCAB, K, N_TOP)
    return SenseTable(
        top_ids=top_ids.astype(np.int32),
        top_scores=np.sort(rng.normal(size=(VOCAB, K, N_TOP)), axis=-1)[..., ::-1].astype(np.float32),
        output_embedding=rng.normal(size=(VOCAB, D)).astype(np.float32),
    )


def test_every_token_has_k_senses_with_norms_weights_and_table_words() -> None:
    arrays, table = make_arrays(), make_table()
    tokens = token_senses(arrays, table, WORDS, top_words=3)
    assert [t.position for t in tokens] == [0, 1, 2, 3]
    assert [t.id for t in tokens] == [2, 5, 1, 5]
    assert [t.text for t in tokens] == ["w2", "w5", "w1", "w5"]
    for i, token in enumerate(tokens):
        assert [s.sense for s in token.senses] == list(range(K))
        for s in token.senses:
            assert s.norm == pytest.approx(float(np.linalg.norm(arrays.senses[i, s.sense])), rel=1e-6)
            assert s.weight == pytest.approx(float(arrays.alpha[s.sense, -1, i]), rel=1e-6)
            assert s.top_words == [WORDS[w] for w in table.top_ids[token.id, s.sense, :3]]


def test_alpha_rows_cover_earlier_positions_and_sum_to_one() -> None:
    tokens = token_senses(make_arrays(seed=3), make_table(), WORDS, top_words=1)
    for token in tokens:
        assert len(token.alpha) == K
        for row in token.alpha:
            assert len(row) == token.position + 1
            assert sum(row) == pytest.approx(1.0, abs=1e-5)
    # Weights at the last position are its alpha rows: the last token's rows equal every token's ``weight``.
    last = tokens[-1]
    for sense in range(K):
        assert [t.senses[sense].weight for t in tokens] == pytest.approx(last.alpha[sense], abs=1e-7)


def test_next_word_contributions_sum_to_the_logit_of_the_contextual_output() -> None:
    arrays, table = make_arrays(seed=5), make_table()
    result = next_word(arrays, table, WORDS, token_id=4, top_contributions=100)
    assert (result.word, result.token_id) == ("w4", 4)
    assert len(result.contributions) == arrays.length * K  # every (position, sense) once
    assert {(c.position, c.sense) for c in result.contributions} == {(j, s) for j in range(4) for s in range(K)}
    expected_logit = float(arrays.contextual[-1] @ table.output_embedding[4])
    assert result.logit == pytest.approx(expected_logit, rel=1e-5)
    assert sum(c.value for c in result.contributions) == pytest.approx(result.logit, rel=1e-4, abs=1e-5)


def test_contributions_are_ranked_by_magnitude_and_cut() -> None:
    arrays, table = make_arrays(seed=7), make_table()
    result = next_word(arrays, table, WORDS, token_id=2, top_contributions=5)
    magnitudes = [abs(c.value) for c in result.contributions]
    assert len(magnitudes) == 5
    assert magnitudes == sorted(magnitudes, reverse=True)
    everything = np.abs(contribution_values(arrays, table.output_embedding[2]))
    assert magnitudes[0] == pytest.approx(float(everything.max()), rel=1e-6)
    for c in result.contributions:
        assert c.token == WORDS[int(arrays.ids[c.position])]


def test_one_contribution_by_hand() -> None:
    """seq 2, k 1: the last position mixes C(x_0) and C(x_1) with weights 0.25 and 0.75."""
    senses = np.array([[[1.0, 0.0]], [[0.0, 2.0]]], dtype=np.float32)  # (seq 2, k 1, d 2)
    alpha = np.array([[[1.0, 0.0], [0.25, 0.75]]], dtype=np.float32)  # (k 1, seq 2, seq 2)
    contextual = np.array([[1.0, 0.0], [0.25, 1.5]], dtype=np.float32)
    arrays = SenseArrays(ids=np.array([0, 1]), contextual=contextual, senses=senses, alpha=alpha)
    table = SenseTable(
        top_ids=np.zeros((2, 1, 1), dtype=np.int32),
        top_scores=np.zeros((2, 1, 1), dtype=np.float32),
        output_embedding=np.array([[4.0, 1.0], [0.0, 0.0]], dtype=np.float32),
    )
    result = next_word(arrays, table, ["a", "b"], token_id=0, top_contributions=2)
    # position 0: 0.25 * (1, 0)·(4, 1) = 1.0; position 1: 0.75 * (0, 2)·(4, 1) = 1.5; logit 0.25*4 + 1.5*1 = 2.5.
    assert [(c.position, c.token, c.value) for c in result.contributions] == [(1, "b", 1.5), (0, "a", 1.0)]
    assert result.logit == pytest.approx(2.5)
