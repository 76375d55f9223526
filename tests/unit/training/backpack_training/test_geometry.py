"""Sense-geometry metrics on hand-made spaces, and the benchmark's LM / retrieval measurements on a tiny model."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from backpack_training_data import tiny_model
from tokenizers import Tokenizer

from benchmarks.backpack.geometry import (
    compare_spaces,
    distance_correlation,
    knn_overlap,
    procrustes_residual,
    sense_space,
    single_token_pairs,
)
from benchmarks.backpack.lm_eval import perplexity, retrieval_accuracy, sentence_embeddings
from xalign.training.data.muse import read_muse
from xalign.training.data.records import WordPair


def _space(seed: int, n: int = 40, dim: int = 12) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim))


def _rotation(dim: int, seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(dim, dim)))
    return np.asarray(q * np.sign(np.diag(r)))


def test_identical_spaces_score_perfectly() -> None:
    x = _space(0)
    scores = compare_spaces(x, x.copy(), k=5)
    assert scores.knn_overlap == 1.0
    assert scores.distance_correlation == pytest.approx(1.0)
    assert scores.procrustes_residual == pytest.approx(0.0, abs=1e-6)


def test_a_random_rotation_changes_nothing_that_should_stay() -> None:
    x = _space(1)
    rotated = x @ _rotation(x.shape[1], seed=2)
    assert not np.allclose(rotated, x)
    assert knn_overlap(x, rotated, k=5) == 1.0  # cosine neighbours survive any rotation
    assert distance_correlation(x, rotated) == pytest.approx(1.0)
    assert procrustes_residual(x, rotated) == pytest.approx(0.0, abs=1e-6)
    scaled = 3.0 * rotated + 0.5  # a global scale and shift are normalised away by the Procrustes fit
    assert procrustes_residual(x, scaled) == pytest.approx(0.0, abs=1e-6)


def test_a_non_orthogonal_map_keeps_no_zero_residual() -> None:
    x = _space(3)
    stretched = x * np.linspace(0.1, 3.0, x.shape[1])  # an anisotropic linear map: not a rotation
    assert procrustes_residual(x, stretched) > 0.2
    assert knn_overlap(x, stretched, k=5) < 1.0
    assert distance_correlation(x, stretched) < 0.99


def test_unrelated_spaces_score_near_chance() -> None:
    x, y = _space(4, n=200), _space(5, n=200)
    assert knn_overlap(x, y, k=10) < 0.15  # chance is 10 / 199
    assert abs(distance_correlation(x, y)) < 0.1
    assert procrustes_residual(x, y) > 0.8
    shuffled = x[np.random.default_rng(6).permutation(len(x))]  # same points, broken pairing
    assert procrustes_residual(x, shuffled) > 0.8


def test_the_residual_matches_an_explicit_procrustes_fit() -> None:
    x, y = _space(7, n=30, dim=5), _space(8, n=30, dim=5)
    a = (x - x.mean(0)) / np.linalg.norm(x - x.mean(0))
    b = (y - y.mean(0)) / np.linalg.norm(y - y.mean(0))
    u, _, vt = np.linalg.svd(a.T @ b)
    explicit = float(np.linalg.norm(a @ (u @ vt) - b))
    assert procrustes_residual(x, y) == pytest.approx(explicit, rel=1e-6)


def test_mismatched_spaces_are_refused() -> None:
    with pytest.raises(ValueError, match="same rows"):
        knn_overlap(_space(0, n=20), _space(1, n=21))
    with pytest.raises(ValueError, match="at least 6 rows"):
        knn_overlap(_space(0, n=5), _space(1, n=5), k=5)


def test_single_token_pairs_are_one_to_one_and_distinct(tokenizer: Tokenizer, data_root: Path) -> None:
    entries = [
        WordPair("man", "Mann", "en", "de"),
        WordPair("man", "Männer", "en", "de"),  # second translation of "man": dropped
        WordPair("a", "ein", "en", "de"),
        WordPair("in", "in", "en", "de"),  # the same token on both sides: dropped
        WordPair("xylophonist", "Xylophonist", "en", "de"),  # not single tokens: dropped
    ]
    pairs = single_token_pairs(tokenizer, entries)
    assert [(p.src, p.tgt) for p in pairs] == [("man", "Mann"), ("a", "ein")]
    assert tokenizer.decode([pairs[0].src_id]).strip() == "man"
    dictionary = read_muse(data_root / "muse" / "en-de.0-5000.txt", "en", "de")
    assert [(p.src, p.tgt) for p in single_token_pairs(tokenizer, dictionary)][:1] == [("the", "die")]


def test_sense_space_rows_average_per_sense_cosines(tokenizer: Tokenizer) -> None:
    model = tiny_model(tokenizer.get_vocab_size())
    space = sense_space(model, [10, 11, 12])
    assert space.shape == (3, 4 * 16)
    np.testing.assert_allclose(np.linalg.norm(space, axis=1), 1.0, rtol=1e-6)


def test_perplexity_and_retrieval_on_a_tiny_model(tokenizer: Tokenizer) -> None:
    model = tiny_model(tokenizer.get_vocab_size())
    texts = ["A man is sleeping.", "Two dogs run in the park."]
    value = perplexity(model, tokenizer, texts)
    assert 1.0 < value < 2 * tokenizer.get_vocab_size()  # an untrained model is near uniform
    assert math.isfinite(value)
    emb = sentence_embeddings(model, tokenizer, texts)
    assert emb.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    assert retrieval_accuracy(emb, emb) == 1.0
    assert retrieval_accuracy(emb, emb[::-1]) == 0.0
