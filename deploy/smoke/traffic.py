"""What the smoke asks of a running api: the routes a user starts with, and a client streaming throughout.

``check_routes`` uses the OpenAI client for embeddings (the service is OpenAI-compatible) and plain HTTP for
the rest; ``Stream`` alternates embedding and index-search requests until stopped and records every answer,
so a swap, a restart of the trainer or a rollback that fails one request shows up as a failure.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from openai import OpenAI

from engine import StepError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "support"))
from streaming_client import StreamingClient

E5 = "xalign-e5-small"
BACKPACK = "xalign-backpack-sensia"
EN = ["a dog runs in the park", "the train is late", "I like green tea"]
DE = ["Ich mag grünen Tee", "ein Hund rennt im Park", "der Zug hat Verspätung"]


def expect(ok: bool, what: str, answer: Any) -> None:
    """Fail the step with ``what`` and the answer unless ``ok``."""
    if not ok:
        raise StepError(f"{what}: {str(answer)[:1500]}")


def post(base_url: str, path: str, body: dict[str, Any], status: int = 200) -> Any:
    """POST ``body``; the JSON answer, which must have ``status``."""
    response = httpx.post(base_url + path, json=body, timeout=120)
    expect(response.status_code == status, f"POST {path} answered {response.status_code}", response.text)
    return response.json()


def check_routes(base_url: str) -> dict[str, str]:
    """Embeddings (OpenAI client), a bitext mine, /v1/senses, an index created, filled and searched."""
    client = OpenAI(base_url=f"{base_url}/v1", api_key="not-needed", max_retries=0, timeout=120)
    embedded = client.embeddings.create(model=E5, input=EN)
    dims = {len(item.embedding) for item in embedded.data}
    expect(len(embedded.data) == 3 and dims == {384}, "embeddings: 3 vectors of 384", embedded)
    mined = post(base_url, "/v1/bitext/mine", {"src": {"texts": EN}, "tgt": {"texts": DE}, "model": E5})
    pairs = {(pair["src_id"], pair["tgt_id"]) for pair in mined["pairs"]}
    expect(pairs == {(0, 1), (1, 2), (2, 0)}, "mining pairs each sentence with its translation", mined)
    senses = post(base_url, "/v1/senses", {"model": BACKPACK, "input": "Die Bank am Fluss", "next_word": "Wasser"})
    expect(bool(senses.get("tokens")), "/v1/senses: tokens with senses", senses)
    post(base_url, "/v1/indexes", {"name": "docs", "model": E5}, status=201)
    post(base_url, "/v1/indexes/docs/texts", {"texts": EN + DE})
    return {"embeddings": "3 x 384 (openai client)", "mine": f"{len(pairs)} pairs", "search": search_top(base_url)}


def search_top(base_url: str) -> str:
    """The top hit of a search of the ``docs`` index, which must be one of the two dog sentences."""
    hits = post(base_url, "/v1/indexes/docs/search", {"query": "Hund", "k": 2})["data"][0]["matches"]
    expect(bool(hits) and hits[0]["text"] in {EN[0], DE[1]}, "search for 'Hund' finds a dog sentence first", hits)
    return str(hits[0]["text"])


def served_version(base_url: str, name: str) -> int | None:
    """The version of ``name`` the api serves now, or None."""
    cards = httpx.get(f"{base_url}/v1/models", timeout=30).json()["data"]
    return next((int(card["version"]) for card in cards if card["name"] == name), None)


class Stream(StreamingClient):
    """Alternates embeddings of ``model`` and searches of ``docs`` until stopped: (route, status, model) each."""

    def __init__(self, base_url: str, model: str) -> None:
        requests: list[tuple[str, dict[str, Any]]] = [
            ("/v1/embeddings", {"input": DE[:2], "model": model}),
            ("/v1/indexes/docs/search", {"query": "Zug"}),
        ]
        super().__init__(base_url, requests)

    def models(self) -> list[str]:
        """The model of every embedding answer so far."""
        return self.embedding_models()


def wait_for(probe: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``probe`` until true; the seconds it took, or a StepError after ``timeout``."""
    start = time.monotonic()
    while not probe():
        if time.monotonic() - start > timeout:
            raise StepError(f"{what}: not seen within {timeout:.0f} s")
        time.sleep(0.5)
    return time.monotonic() - start
