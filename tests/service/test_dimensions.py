"""``dimensions`` (Matryoshka truncation): served only where the manifest allows it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from error_body import assert_error
from fastapi.testclient import TestClient
from tiny_models import publish_tiny

from xalign.service.app import create_app
from xalign.service.settings import Settings


@pytest.fixture(scope="module")
def client(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    store = tmp_path_factory.mktemp("matryoshka-store")
    publish_tiny(tiny_model_dir, store, name="mrl", allowed_dimensions=(8, 16))
    with TestClient(create_app(Settings(store=store, threads=1, poll_interval_s=0))) as test_client:
        yield test_client


def _embed(client: TestClient, **extra: object) -> np.ndarray:
    response = client.post("/v1/embeddings", json={"model": "mrl", "input": ["hello world", "a cat"], **extra})
    assert response.status_code == 200, response.text
    return np.array([row["embedding"] for row in response.json()["data"]], dtype=np.float32)


@pytest.mark.parametrize("dimensions", [8, 16])
def test_allowed_dimensions_truncate_and_renormalise(client: TestClient, dimensions: int) -> None:
    full = _embed(client)
    short = _embed(client, dimensions=dimensions)
    assert short.shape == (2, dimensions)
    expected = full[:, :dimensions] / np.linalg.norm(full[:, :dimensions], axis=1, keepdims=True)
    np.testing.assert_allclose(short, expected, atol=1e-6)
    assert not np.allclose(full[:, :dimensions], short, atol=1e-3)  # renormalised, not just cut


def test_other_dimensions_are_refused(client: TestClient) -> None:
    full = _embed(client)
    assert full.shape[1] not in (8, 16, 12)
    assert_error(
        client.post("/v1/embeddings", json={"model": "mrl", "input": "x", "dimensions": 12}),
        422,
        "validation_error",
        "dimensions",
    )
    # The model's own size is always fine: nothing to truncate.
    assert _embed(client, dimensions=full.shape[1]).shape == full.shape
