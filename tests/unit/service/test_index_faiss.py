"""The FAISS index kinds against a numpy brute-force reference: flat is exact, IVF is exact before training
and with every list probed, and deterministic; HNSW finds nearly all true neighbours; every kind gives its
vectors back and restores from its FAISS file."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from xalign.runtime.margin import l2_normalize
from xalign.service.search.faiss_index import VectorIndex, validate_params

DIM = 16


def _data(n: int, seed: int = 0) -> np.ndarray:
    return l2_normalize(np.random.default_rng(seed).standard_normal((n, DIM)))


def _reference(base: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    sims = queries @ base.T  # (q, n) cosines
    ids = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, ids, axis=1), ids


def test_flat_is_exact_and_on_the_cpu_without_a_gpu() -> None:
    base, queries = _data(300), _data(20, seed=1)
    index = VectorIndex(DIM, "flat", {}, use_gpu=False)
    index.add(base[:100])
    index.add(base[100:])
    scores, ids = index.search(queries, 5)
    ref_scores, ref_ids = _reference(base, queries, 5)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)
    assert index.device == "cpu"


def test_k_beyond_the_count_gives_every_row() -> None:
    index = VectorIndex(DIM, "flat", {}, use_gpu=False)
    assert index.search(_data(2), 3)[1].shape == (2, 0)
    index.add(_data(3))
    assert index.search(_data(2), 10)[1].shape == (2, 3)


def test_ivf_trains_once_it_has_enough_vectors_and_is_deterministic() -> None:
    base, queries = _data(400), _data(10, seed=1)
    params = validate_params("ivf", {"nlist": 4, "nprobe": 4, "train_size": 100})
    index = VectorIndex(DIM, "ivf", params, use_gpu=False)
    index.add(base[:99])
    assert not index.trained
    np.testing.assert_array_equal(index.search(queries, 5)[1], _reference(base[:99], queries, 5)[1])
    index.add(base[99:250])
    index.add(base[250:])
    assert index.trained and index.ntotal == 400
    # nprobe = nlist: every list is searched, so the result is exact.
    np.testing.assert_array_equal(index.search(queries, 5)[1], _reference(base, queries, 5)[1])
    # A replay in other batch sizes (as after a restart) trains on the same first 100 vectors.
    replayed = VectorIndex(DIM, "ivf", {**params, "nprobe": 1}, use_gpu=False)
    index_one_probe = VectorIndex(DIM, "ivf", {**params, "nprobe": 1}, use_gpu=False)
    replayed.add(base)
    for start in range(0, 400, 37):
        index_one_probe.add(base[start : start + 37])
    np.testing.assert_array_equal(replayed.search(queries, 5)[1], index_one_probe.search(queries, 5)[1])


def test_hnsw_recall() -> None:
    base, queries = _data(1000), _data(50, seed=1)
    index = VectorIndex(DIM, "hnsw", validate_params("hnsw", {"m": 16, "ef_search": 128}), use_gpu=False)
    index.add(base)
    _, ids = index.search(queries, 10)
    _, ref = _reference(base, queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, ref, strict=True)])
    assert recall >= 0.95


def test_params_are_validated_per_kind() -> None:
    assert validate_params("flat", None) == {}
    assert validate_params("ivf", {"nlist": 8}) == {"nlist": 8, "nprobe": 8}
    assert validate_params("hnsw", {}) == {"m": 32, "ef_construction": 40, "ef_search": 64}
    with pytest.raises(ValueError, match="nlist"):
        validate_params("flat", {"nlist": 8})
    with pytest.raises(ValueError, match="m"):
        validate_params("hnsw", {"m": 1})


@pytest.mark.parametrize(
    ("kind", "params"), [("flat", {}), ("ivf", {"nlist": 4, "train_size": 100}), ("hnsw", {"m": 8})]
)
@pytest.mark.parametrize("n", [50, 300])
def test_vectors_are_read_back_out_of_faiss_and_an_index_restores_from_its_file(
    kind: str, params: dict[str, int], n: int, tmp_path: Path
) -> None:
    base, queries = _data(n), _data(10, seed=1)
    full = validate_params(kind, params)  # type: ignore[arg-type]
    index = VectorIndex(DIM, kind, full, use_gpu=False)  # type: ignore[arg-type]
    index.add(base)
    assert index.trained == (kind != "ivf" or n >= 100)
    np.testing.assert_array_equal(index.vectors(0, n), base)  # the only copy is FAISS's
    np.testing.assert_array_equal(index.vectors(n - 3, n), base[n - 3 :])
    assert index.vectors(5, 5).shape == (0, DIM)
    faiss.write_index(index.cpu_index(), str(tmp_path / "index.faiss"))
    stored = faiss.read_index(str(tmp_path / "index.faiss"))
    restored = VectorIndex.restore(DIM, kind, full, stored, use_gpu=False)  # type: ignore[arg-type]
    assert restored.trained == index.trained
    for got, want in zip(restored.search(queries, 5), index.search(queries, 5), strict=True):
        np.testing.assert_array_equal(got, want)
    restored.add(_data(5, seed=2))
    assert restored.ntotal == n + 5


def test_restore_refuses_another_kind_or_dim() -> None:
    flat = faiss.IndexFlatIP(DIM)
    with pytest.raises(ValueError, match="not a hnsw index"):
        VectorIndex.restore(DIM, "hnsw", validate_params("hnsw", {}), flat, use_gpu=False)
    with pytest.raises(ValueError, match="of dim 8"):
        VectorIndex.restore(8, "flat", {}, flat, use_gpu=False)
    staging = faiss.IndexFlatIP(DIM)
    staging.add(_data(500))  # an IVF still untrained past its training size cannot come from this code
    with pytest.raises(ValueError, match="untrained"):
        VectorIndex.restore(DIM, "ivf", validate_params("ivf", {"nlist": 4}), staging, use_gpu=False)
