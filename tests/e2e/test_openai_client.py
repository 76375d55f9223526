"""The official ``openai`` client against a real ``xalign-serve`` on 127.0.0.1, over a copy of the tiny store."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from processes import free_port, running, wait_ready

openai = pytest.importorskip("openai", reason="the openai client is a dev dependency")

TEXTS = ["hello world", "Hallo Welt", "the cat sat on the mat"]
KEY = "sk-test-read"


@pytest.fixture(scope="module")
def server(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a live server with a read key configured."""
    root = tmp_path_factory.mktemp("openai")
    store = root / "store"
    shutil.copytree(tiny_store, store)
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("xalign-serve")),
        *("--store", str(store), "--port", str(port), "--threads", "1"),
        *("--poll-interval-s", "0", "--data-dir", str(root / "data")),
    ]
    log = root / "serve.log"
    with running(command, log, env={"XALIGN_API_KEYS": f'["{KEY}"]'}) as proc:
        base_url = f"http://127.0.0.1:{port}"
        wait_ready(base_url, proc, log, timeout=120)
        yield base_url


def _service_floats(base_url: str) -> np.ndarray:
    response = httpx.post(
        f"{base_url}/v1/embeddings",
        json={"model": "tiny", "input": TEXTS},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return np.array([d["embedding"] for d in response.json()["data"]], dtype=np.float32)


def test_client_floats_and_base64_equal_the_service(server: str) -> None:
    client = openai.OpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0)
    expected = _service_floats(server)
    as_float = client.embeddings.create(model="tiny", input=TEXTS, encoding_format="float")
    # Without encoding_format the client asks for base64 and decodes it itself.
    as_default = client.embeddings.create(model="tiny", input=TEXTS)
    for result in (as_float, as_default):
        vectors = np.array([d.embedding for d in result.data], dtype=np.float32)
        np.testing.assert_array_equal(vectors, expected)
        assert [d.index for d in result.data] == [0, 1, 2]
        assert result.model == "tiny:1"
        assert result.usage.prompt_tokens == result.usage.total_tokens > 0
    single = client.embeddings.create(model="tiny", input=TEXTS[0])
    # Alone it is padded differently than in the batch of three: equal up to float rounding.
    np.testing.assert_allclose(np.array(single.data[0].embedding, dtype=np.float32), expected[0], atol=1e-6)


def test_client_errors(server: str) -> None:
    wrong = openai.OpenAI(base_url=f"{server}/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.embeddings.create(model="tiny", input=TEXTS)
    client = openai.OpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0)
    with pytest.raises(openai.NotFoundError) as missing:
        client.embeddings.create(model="no-such-model", input=TEXTS)
    assert missing.value.body["type"] == "not_found_error"
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="tiny", input=[""])
    assert [m.id for m in client.models.list().data] == ["tiny:1"]
