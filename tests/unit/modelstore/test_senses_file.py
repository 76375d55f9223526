"""``senses.npz`` read into a ``SenseTable``: arrays kept, inconsistent files refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xalign.modelstore.artifacts import SenseTableError, read_senses


def arrays(vocab: int = 6, k: int = 2, n_top: int = 3, d: int = 4) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return {
        "top_ids": rng.integers(0, vocab, size=(vocab, k, n_top)).astype(np.int32),
        "top_scores": rng.normal(size=(vocab, k, n_top)).astype(np.float32),
        "output_embedding": rng.normal(size=(vocab, d)).astype(np.float32),
        "n_senses": np.int64(k),
        "n_top": np.int64(n_top),
    }


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "senses.npz"
    np.savez(path, **data)
    return path


def test_load_keeps_every_array(tmp_path: Path) -> None:
    data = arrays()
    table = read_senses(write(tmp_path, data))
    assert (table.vocab_size, table.n_senses, table.n_top, table.dim) == (6, 2, 3, 4)
    np.testing.assert_array_equal(table.top_ids, data["top_ids"])
    np.testing.assert_array_equal(table.output_embedding, data["output_embedding"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"n_top": np.int64(5)}, "the file says"),
        ({"top_scores": np.zeros((6, 2, 2), dtype=np.float32)}, "top_scores"),
        ({"output_embedding": np.zeros((5, 4), dtype=np.float32)}, "output_embedding"),
        ({"top_ids": np.full((6, 2, 3), 6, dtype=np.int32)}, "outside the vocabulary"),
    ],
)
def test_inconsistent_files_are_refused(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    with pytest.raises(SenseTableError, match=message):
        read_senses(write(tmp_path, arrays() | change))


def test_missing_array_is_named(tmp_path: Path) -> None:
    data = arrays()
    del data["output_embedding"]
    with pytest.raises(SenseTableError, match="output_embedding"):
        read_senses(write(tmp_path, data))
